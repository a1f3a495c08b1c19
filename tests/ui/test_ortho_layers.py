"""The dialog and Processing on a web-service orthophoto: the loopback WMTS of ``servers.py`` added as a QGIS
layer (provider ``wms``), its windows around the priors read through QGIS and localized by a real worker
with the shipped demo model. The poses are compared with the engine's on the local GeoTIFF."""

from __future__ import annotations

import csv
from pathlib import Path

import pyproj
import pytest
from qgis.core import Qgis, QgsProject, QgsRasterLayer
from qgis_helpers import StubIface, clear_project, loc2_processing_provider, process_events_until, qgis_app
from server_fixtures import city_fixture, server_fixture  # noqa: F401 - the module's fixtures
from servers import qgis_wmts_uri

qgis_app()

import processing  # noqa: E402

from loc2.core.types import DEMO_CHECKPOINT  # noqa: E402
from loc2.ui.dialog import Loc2Dialog  # noqa: E402

pytestmark = pytest.mark.slow  # a worker runs the demo model: 20-60 s each
ALG = "loc2:localizeimages"
_GEOD = pyproj.Geod(ellps="WGS84")
TOLERANCE_M = 1.5  # from the truth: the demo model on this city is 0.2-1.2 m off from the local GeoTIFF


@pytest.fixture
def wmts(server):
    clear_project()
    layer = QgsRasterLayer(qgis_wmts_uri(server), "Loopback WMTS", "wms")
    assert layer.isValid(), layer.error().summary()
    QgsProject.instance().addMapLayer(layer)
    yield layer
    clear_project()


@pytest.fixture(scope="module", autouse=True)
def provider():
    with loc2_processing_provider():
        yield


def _truth(city: Path) -> dict[str, dict]:
    with open(city / "city" / "truth.csv", newline="") as fh:
        return {Path(row["photo"]).name: row for row in csv.DictReader(fh)}


def _error_m(truth: dict, lon: float, lat: float) -> float:
    return float(_GEOD.inv(float(truth["lon"]), float(truth["lat"]), lon, lat)[2])


def test_processing_localizes_a_folder_on_a_wmts_layer(city, server, wmts):
    server.reset_log()
    results = processing.run(
        ALG,
        {
            "ORTHOPHOTO": wmts,
            "PHOTOS": str(city / "city" / "photos"),
            "CHECKPOINT": str(DEMO_CHECKPOINT),
            "DEVICE": 2,  # CPU
            "POSES": "TEMPORARY_OUTPUT",
        },
    )
    truth = _truth(city)
    poses = {Path(f["photo"]).name: f for f in results["POSES"].getFeatures()}
    assert set(poses) == set(truth) and results["LOCALIZED_COUNT"] == len(truth)
    for name, feature in poses.items():
        assert feature["status"] == "ok", feature["message"]
        assert _error_m(truth[name], feature["lon"], feature["lat"]) < TOLERANCE_M, name
    requests, _ = server.fetched("/xyz/")
    assert 0 < requests < 150  # the tiles around three photos (cached ones are not fetched again)


def test_a_broken_engine_on_a_wmts_layer_is_named_not_taken_for_photos_without_gps(
    city, server, wmts, monkeypatch
):
    """The priors of a web layer's windows come from the engine's ``inspect``: an engine that cannot start
    must fail the run with its own message (it once read as "no photo prior to read a window around")."""
    from loc2.ui.engine.client import shutdown_shared_worker

    monkeypatch.setenv("LOC2_ENGINE_PYTHON", "/usr/bin/python3")  # QGIS's Python: no torch
    shutdown_shared_worker()
    params = {"ORTHOPHOTO": wmts, "PHOTOS": str(city / "city" / "photos"), "POSES": "TEMPORARY_OUTPUT"}
    try:
        with pytest.raises(Exception) as raised:  # noqa: PT011 - QgsProcessingException or processing's own
            processing.run(ALG, {**params, "CHECKPOINT": str(DEMO_CHECKPOINT), "DEVICE": 2})
    finally:
        shutdown_shared_worker()
    message = str(raised.value)
    assert "The Loc2 engine could not read" in message and "/usr/bin/python3" in message, message
    assert "no photo prior" not in message


def test_the_dialog_localizes_a_photo_on_a_wmts_layer(city, server, wmts, tmp_path):
    dlg = Loc2Dialog(StubIface())
    dlg.inputs.ortho_combo.setLayer(wmts)
    photo = city / "city" / "photos" / "pano_001.jpg"
    dlg.inputs.photo_widget.setFilePath(str(photo))
    dlg.model.model_combo.setCurrentIndex(dlg.model.model_combo.findData("checkpoint"))
    dlg.model.checkpoint_widget.setFilePath(str(DEMO_CHECKPOINT))
    dlg.model.device_combo.setCurrentIndex(2)  # CPU
    dlg.model.results_widget.setFilePath(str(tmp_path / "runs"))
    process_events_until(lambda: dlg.inputs.photo_info.text() != "Reading the photo…", 60)
    task = dlg.start()
    assert task is not None, dlg.last_message
    assert process_events_until(lambda: dlg.task is None, timeout_s=300), "the task did not finish"
    level, text = dlg.last_message
    assert level == Qgis.Success, text
    windows = list((Path(task.job.workdir) / "orthophoto").glob("window_*.tif"))
    assert len(windows) == 1  # the window around the photo, read through QGIS
    result = dlg.last_outcome.results[0]
    error = _error_m(_truth(city)["pano_001.jpg"], result["lon"], result["lat"])
    assert error < TOLERANCE_M, (error, result)
