"""Any raster layer as the orthophoto: the windows around the priors read through QGIS's own provider (the
loopback WMTS and XYZ servers of ``servers.py`` added as QGIS layers, and a local GeoTIFF), written as
GeoTIFFs (or a VRT of several) that the engine reads like the local file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from qgis.core import QgsProject, QgsRasterLayer
from qgis_helpers import qgis_app
from server_fixtures import city_fixture, server_fixture  # noqa: F401 - the module's fixtures
from servers import qgis_wmts_uri

qgis_app()

from loc2.core.inputs.ortho import Orthophoto  # noqa: E402  (the test's side: the engine reading the window)
from loc2.core.types import MODEL_DEMO, aerial_crop  # noqa: E402
from loc2.ui.ortho_window import (  # noqa: E402
    Prior,
    WindowError,
    needs_window,
    plan_windows,
    snapshot,
    window_half_m,
    write_windows,
)

FOOTPRINT_M, MODEL_M_PER_PX = aerial_crop(MODEL_DEMO)


def _priors(city: Path) -> list[Prior]:
    import csv

    with open(city / "city" / "truth.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [Prior(float(r["prior_lon"]), float(r["prior_lat"]), 10.0) for r in rows]


def _context():
    return QgsProject.instance().transformContext()


def _crop(path: str | Path, prior: Prior) -> np.ndarray:
    with Orthophoto.open(path) as ortho:
        crop = ortho.crop(ortho.lonlat_to_crs(prior.lon, prior.lat), FOOTPRINT_M, 256, up_heading_deg=30.0)
    assert crop.valid.all()
    return crop.image.astype(float)


def test_a_local_gdal_file_goes_to_the_engine_as_it_is_and_a_service_does_not(city, server):
    local = QgsRasterLayer(str(city / "city" / "ortho.tif"), "ortho")
    wmts = QgsRasterLayer(qgis_wmts_uri(server), "wmts", "wms")
    assert local.isValid() and wmts.isValid(), wmts.error().summary()
    assert not needs_window(local) and needs_window(wmts)


def test_windows_cover_the_search_and_sit_on_one_grid(city, server):
    layer = QgsRasterLayer(qgis_wmts_uri(server), "wmts", "wms")
    priors = _priors(city)
    grid, windows = plan_windows(snapshot(layer, _context()), priors, MODEL_DEMO)
    lat = priors[0].lat
    # Web Mercator: one unit is cos(lat) ground metres; half the model's 0.28 m pixel
    assert grid.res_x == pytest.approx(MODEL_M_PER_PX / 2 / math.cos(math.radians(lat)), rel=2e-3)
    half_m = window_half_m(10.0, MODEL_DEMO)
    assert half_m == pytest.approx(10.0 + 36.0 * math.sqrt(2) + 8.0)
    for _, _, cols, rows in windows:
        assert cols * MODEL_M_PER_PX / 2 == pytest.approx(2 * half_m, abs=1.0) and rows == pytest.approx(
            cols, abs=2
        )
    with pytest.raises(WindowError, match="no photo prior"):
        plan_windows(snapshot(layer, _context()), [], MODEL_DEMO)


@pytest.mark.parametrize("kind", ["wmts", "xyz"])
def test_a_web_layer_window_gives_the_engine_the_crop_of_the_local_file(city, server, tmp_path, kind):
    uri = {
        "wmts": qgis_wmts_uri(server),
        "xyz": f"type=xyz&url={server.url}/xyz/%7Bz%7D/%7Bx%7D/%7By%7D.png&zmax=19&zmin=0",
    }[kind]
    layer = QgsRasterLayer(uri, kind, "wms")
    assert layer.isValid(), layer.error().summary()
    prior = _priors(city)[0 if kind == "wmts" else 2]
    server.reset_log()
    path = write_windows(snapshot(layer, _context()), [prior], MODEL_DEMO, tmp_path / "windows")
    assert path.suffix == ".tif" and path.is_file()
    requests, _ = server.fetched("/xyz/")
    # the tiles around one photo, not the city's (QGIS's network cache may hold some already)
    assert requests <= 40 and (requests > 0 or kind != "wmts"), requests
    difference = np.abs(_crop(path, prior) - _crop(city / "city" / "ortho.tif", prior))
    assert difference.mean() < 10.0, difference.mean()


def test_several_priors_make_a_mosaic_the_engine_reads(city, tmp_path):
    layer = QgsRasterLayer(f"/vsicurl-not-a-file/{city}/city/ortho.tif", "not a file")  # invalid: no provider
    assert needs_window(layer)
    # a GDAL layer read through QGIS (the same path a file-less provider takes), several priors
    layer = QgsRasterLayer(str(city / "city" / "ortho.tif"), "ortho")
    priors = _priors(city)
    path = write_windows(snapshot(layer, _context()), priors, MODEL_DEMO, tmp_path / "windows")
    assert path.suffix == ".vrt" and len(list((tmp_path / "windows").glob("window_*.tif"))) == len(priors)
    for prior in priors:
        difference = np.abs(_crop(path, prior) - _crop(city / "city" / "ortho.tif", prior))
        assert difference.mean() < 3.0, difference.mean()
