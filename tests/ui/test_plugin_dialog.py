"""The single-photo dialog in a real (offscreen) QGIS, its engine a real worker process: runs, cancel,
export, bad input, no engine and a broken engine.

The model is the shipped demo checkpoint, chosen as a checkpoint file. The desktop application itself is
exercised in tests/app; these tests reach the dialog's corners quickly. A screenshot of the dialog after a
run is saved to ``tests/artifacts/dialog.png`` for review.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cpu import cpu_has_bf16_instructions
from plugin_fixtures import CRS, lonlat_at, make_city, write_ortho
from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsSettings,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import Qt
from qgis_helpers import StubIface, clear_project, process_events_until, qgis_app

qgis_app()

from loc2.core.types import DEMO_CHECKPOINT as SHIPPED_MODEL  # noqa: E402
from loc2.ui.dialog import (  # noqa: E402
    DEPTH_FILE,
    HEADING_TYPED,
    PRIOR_CLICKED,
    PRIOR_TYPED,
    InputError,
    Loc2Dialog,
    parse_lonlat,
)
from loc2.ui.dialog import model_box as dialog_module  # noqa: E402
from loc2.ui.engine.client import shutdown_shared_worker  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
LAYER_NAMES = [
    "Corrected pose",
    "Prior (GPS) pose",
    "Shift, prior → corrected",
    "Inlier matches",
    "Ground layout outline",
]


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return make_city(tmp_path_factory.mktemp("city"), n_panoramas=1)


@pytest.fixture
def project():
    clear_project()
    yield QgsProject.instance()
    clear_project()


@pytest.fixture
def iface():
    return StubIface()


def _dialog(iface, city, photo=None, results=None) -> Loc2Dialog:
    dlg = Loc2Dialog(iface)
    dlg.inputs.set_ortho_file(str(city.ortho))
    dlg.inputs.photo_widget.setFilePath(str(photo or city.located[0]))
    dlg.model.model_combo.setCurrentIndex(dlg.model.model_combo.findData("checkpoint"))
    dlg.model.checkpoint_widget.setFilePath(str(SHIPPED_MODEL))
    # Every choice set, since a run remembers them for the next dialog
    dlg.model.device_combo.setCurrentIndex(dlg.model.device_combo.findData("cpu"))
    dlg.model.precision_combo.setCurrentIndex(dlg.model.precision_combo.findData("auto"))
    dlg.model.solver_combo.setCurrentIndex(dlg.model.solver_combo.findData("precise"))
    dlg.model.matches_check.setChecked(False)
    dlg.model.radius_spin.setValue(1.0)
    if results is not None:
        dlg.model.results_widget.setFilePath(str(results))
    process_events_until(lambda: dlg.inputs.photo_info.text() != "Reading the photo…", 60)  # read, or why not
    return dlg


def _run(dlg, timeout_s: float = 180):
    task = dlg.start()
    assert task is not None, dlg.last_message
    assert process_events_until(lambda: dlg.task is None, timeout_s=timeout_s), "the task did not finish"
    return task


def _vector_layers(project):
    return [layer for layer in project.mapLayers().values() if isinstance(layer, QgsVectorLayer)]


def test_parse_lonlat():
    assert parse_lonlat("8.54, 47.37") == (8.54, 47.37)
    assert parse_lonlat(" 8.54 47.37 ") == (8.54, 47.37)
    for bad in ("", "8.54", "a, b", "200, 10", "8, 95"):
        with pytest.raises(InputError):
            parse_lonlat(bad)


def test_demo_checkpoint_path_matches_the_engine():
    from loc2.core.types import DEMO_CHECKPOINT

    assert dialog_module.DEMO_CHECKPOINT == DEMO_CHECKPOINT


def test_run_adds_the_group_from_the_engines_file_and_exports(iface, city, project, tmp_path):
    dlg = _dialog(iface, city, results=tmp_path / "runs")
    name = city.located[0].name
    assert "panorama" in dlg.inputs.photo_info.text() and "GPS" in dlg.inputs.photo_info.text()
    dlg.model.matches_check.setChecked(True)
    task = dlg.start()
    assert task is not None and not dlg.run_button.isEnabled() and dlg.cancel_button.isEnabled()
    assert process_events_until(lambda: dlg.task is None, timeout_s=180), "the task did not finish"
    level, text = dlg.last_message
    assert level == Qgis.Success, text
    assert "inliers" in text and "confidence" in text and dlg.progress.value() == 100
    group = project.layerTreeRoot().children()[0]
    assert group.name() == f"Loc2 — {name}"
    assert [n.name() for n in group.children()] == [*LAYER_NAMES[:3], "Top matches", *LAYER_NAMES[3:]]
    written = sorted((tmp_path / "runs").glob("*.gpkg"))
    assert len(written) == 1 and written[0].name.startswith(Path(name).stem)  # one GeoPackage per run
    for layer in _vector_layers(project):
        assert layer.providerType() == "ogr" and layer.source().startswith(str(written[0]))
    poses = dlg.layers["poses"]
    assert poses.crs() == QgsCoordinateReferenceSystem(CRS) and poses.featureCount() == 1
    pose = next(poses.getFeatures())
    assert pose["status"] == "ok" and 0 <= pose["heading"] < 360 and pose["inliers"] >= 3
    assert (pose["prior_lon"], pose["prior_lat"]) == pytest.approx(city.positions[name], abs=1e-6)
    assert pose["prior_head"] == pytest.approx(city.headings[name], abs=0.01)
    assert dlg.layers["inliers"].featureCount() == pose["inliers"]
    assert dlg.layers["outlines"].geometryType() == QgsWkbTypes.PolygonGeometry
    prior = next(dlg.layers["priors"].getFeatures())
    assert (prior.geometry().asPoint().x(), prior.geometry().asPoint().y()) == pytest.approx(
        (pose["prior_x"], pose["prior_y"])
    )
    assert not dlg.figure_label.pixmap().isNull()
    to_canvas = QgsCoordinateTransform(
        QgsCoordinateReferenceSystem(CRS), iface.canvas.mapSettings().destinationCrs(), project
    )
    assert iface.canvas.extent().contains(to_canvas.transform(pose.geometry().asPoint()))  # zoomed to it
    assert dlg.export_button.isEnabled() and dlg.run_button.isEnabled()

    dlg.export_results(str(tmp_path / "result.shp"))
    assert process_events_until(lambda: not dlg.tasks.running, timeout_s=60)
    assert dlg.last_message[0] == Qgis.Success, dlg.last_message
    for role, geometry in (
        ("poses", QgsWkbTypes.PointGeometry),
        ("priors", QgsWkbTypes.PointGeometry),
        ("outlines", QgsWkbTypes.PolygonGeometry),
        ("shifts", QgsWkbTypes.LineGeometry),
        ("matches", QgsWkbTypes.LineGeometry),
    ):
        layer = QgsVectorLayer(str(tmp_path / f"result_{role}.shp"), role, "ogr")
        assert layer.isValid() and layer.crs().authid() == CRS and layer.geometryType() == geometry
        assert (tmp_path / f"result_{role}.qml").is_file()
    poses = QgsVectorLayer(str(tmp_path / "result_poses.shp"), "poses", "ogr")
    assert "heading" in poses.fields().names() and poses.featureCount() == 1
    _screenshot(dlg)
    dlg.shutdown()


def _screenshot(dlg):
    """Save the dialog, as it looks after a run, to tests/artifacts/dialog.png for review."""
    dlg.show()
    process_events_until(lambda: "PyTorch" in dlg.engine.label.text(), timeout_s=60)
    assert "CPU" in dlg.engine.label.text()
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "dialog.png"
    assert dlg.grab().save(str(path))
    assert path.stat().st_size > 20_000  # a real picture, not an empty frame
    dlg.close()


def test_published_solver_choice_reaches_the_job(iface, city, project, tmp_path):
    dlg = _dialog(iface, city, results=tmp_path)
    dlg.model.solver_combo.setCurrentIndex(dlg.model.solver_combo.findData("published"))
    job = dlg.collect_job()
    assert job.options.solver == "published"
    _run(dlg)
    assert dlg.last_result and dlg.last_result["ok"], dlg.last_message


def test_precision_choice_reaches_the_job(iface, city, project, tmp_path):
    """bfloat16 runs on a CPU with bf16 instructions; elsewhere the engine's refusal is shown, saying why."""
    dlg = _dialog(iface, city, results=tmp_path)
    dlg.model.precision_combo.setCurrentIndex(2)
    assert dlg.collect_job().options.precision == "bfloat16"
    _run(dlg)
    if cpu_has_bf16_instructions():
        assert dlg.last_result and dlg.last_result["ok"], dlg.last_message
    else:
        assert dlg.last_message[0] == Qgis.Critical and "no bf16 instructions" in dlg.last_message[1]


def test_cancel_adds_nothing(iface, city, project, tmp_path):
    dlg = _dialog(iface, city, results=tmp_path)
    before = len(_vector_layers(project))
    dlg.start()
    dlg.cancel()  # at once: the queued task ends cancelled
    assert process_events_until(lambda: dlg.task is None, timeout_s=180)
    assert dlg.last_message[0] == Qgis.Info and "Cancelled" in dlg.last_message[1]
    assert len(_vector_layers(project)) == before
    dlg.shutdown()


def _refused(dlg, project, *needles):
    before = len(_vector_layers(project))
    assert dlg.start() is None
    level, text = dlg.last_message
    assert level == Qgis.Critical
    for needle in needles:
        assert needle in text, text
    assert len(_vector_layers(project)) == before


def test_no_raster_chosen(iface, city, project):
    dlg = _dialog(iface, city)
    dlg.inputs.ortho_combo.setLayer(None)
    _refused(dlg, project, "Choose an orthophoto")


def test_raster_without_crs(iface, city, project, tmp_path):
    dlg = _dialog(iface, city)
    dlg.inputs.set_ortho_file(str(write_ortho(tmp_path / "bare.tif", crs=None)))
    _refused(dlg, project, "bare.tif", "coordinate reference system")


def test_a_file_picked_as_orthophoto_is_on_the_map_and_the_only_raster_is_preselected(iface, city, project):
    dlg = _dialog(iface, city)
    rasters = [lyr for lyr in project.mapLayers().values() if isinstance(lyr, QgsRasterLayer)]
    assert [r.source() for r in rasters] == [
        str(city.ortho)
    ] and dlg.inputs.ortho_combo.currentLayer() is rasters[0]
    again = Loc2Dialog(iface)  # a new dialog chooses the project's only raster
    assert again.inputs.ortho_combo.currentLayer() is rasters[0]


def test_photo_without_gps_needs_a_clicked_or_typed_prior(iface, city, project):
    dlg = _dialog(iface, city, photo=city.no_gps)
    assert "no GPS" in dlg.inputs.photo_info.text()
    _refused(dlg, project, "zz_no_gps.jpg", "no GPS position")
    dlg.inputs.prior_combo.setCurrentIndex(PRIOR_CLICKED)
    assert dlg.last_message == (None, "")  # the input changed: the message about it is gone
    _refused(dlg, project, "Click the camera")
    dlg.inputs.prior_combo.setCurrentIndex(PRIOR_TYPED)
    dlg.inputs.prior_edit.setText("not a position")
    _refused(dlg, project, "longitude, latitude")
    lon, lat = lonlat_at(60.0, 60.0)  # UTM 32N (465 060, 5 246 060) in WGS84
    dlg.inputs.start_picking()  # the map tool emits the clicked point in the canvas CRS (EPSG:3857 here)
    assert iface.canvas.mapTool() is dlg.inputs._map_tool
    to_canvas = QgsCoordinateTransform(
        QgsCoordinateReferenceSystem("EPSG:4326"), iface.canvas.mapSettings().destinationCrs(), project
    )
    dlg.inputs._map_tool.canvasClicked.emit(to_canvas.transform(QgsPointXY(lon + 0.001, lat)), Qt.LeftButton)
    assert dlg.inputs.clicked_lonlat == pytest.approx((lon + 0.001, lat), abs=1e-7)
    assert iface.canvas.mapTool() is not dlg.inputs._map_tool  # the previous tool is back
    x, y = 465_060.0, 5_246_060.0  # the same point in the orthophoto's CRS, as clicked on a UTM map
    dlg.inputs.set_clicked_prior(QgsPointXY(x, y), QgsCoordinateReferenceSystem(CRS))
    dlg.inputs.heading_combo.setCurrentIndex(HEADING_TYPED)
    dlg.inputs.heading_spin.setValue(10.0)
    job = dlg.collect_job()
    assert job.lonlat == pytest.approx((lon, lat), abs=1e-7) and job.heading_deg == pytest.approx(10.0)


def test_missing_weights(iface, city, project, tmp_path, monkeypatch):
    dlg = _dialog(iface, city)
    dlg.model.checkpoint_widget.setFilePath(str(tmp_path / "gone.pt"))
    _refused(dlg, project, "checkpoint", "gone.pt")
    dlg.model.model_combo.setCurrentIndex(dlg.model.model_combo.findData("vigor"))
    dlg.model.backbone_widget.setFilePath("")
    dlg.model.matcher_widget.setFilePath("")
    _refused(dlg, project, "VIGOR", "published weights")
    monkeypatch.setattr(dialog_module, "DEMO_CHECKPOINT", tmp_path / "loc2_demo.pt")
    dlg.model.model_combo.setCurrentIndex(dlg.model.model_combo.findData("demo"))
    _refused(dlg, project, "demo model is not installed")


def test_missing_depth_file(iface, city, project, tmp_path):
    dlg = _dialog(iface, city)
    dlg.model.depth_combo.setCurrentIndex(DEPTH_FILE)
    dlg.model.depth_widget.setFilePath(str(tmp_path / "depth.png"))
    _refused(dlg, project, "depth map", "depth.png")


def test_a_failing_photo_is_reported_not_added(iface, city, project, tmp_path):
    dlg = _dialog(iface, city, results=tmp_path)
    dlg.inputs.prior_combo.setCurrentIndex(PRIOR_TYPED)
    dlg.inputs.prior_edit.setText("9.5, 47.0")  # far outside the orthophoto
    before = len(_vector_layers(project))
    _run(dlg)
    assert dlg.last_message[0] == Qgis.Critical and "outside the orthophoto" in dlg.last_message[1]
    assert len(_vector_layers(project)) == before and not dlg.export_button.isEnabled()


def test_long_messages_are_whole_and_never_move_the_buttons(iface, city):
    dlg = _dialog(iface, city)
    dlg.show()
    process_events_until(lambda: False, timeout_s=0.2)
    y = dlg.run_button.mapTo(dlg, dlg.run_button.rect().topLeft()).y()
    text = "A long explanation. " * 40 + "The end."
    dlg.show_message(text, Qgis.MessageLevel.Critical)
    process_events_until(lambda: False, timeout_s=0.2)
    assert dlg.message_panel.text == text and dlg.message_panel.label.wordWrap()
    assert dlg.run_button.mapTo(dlg, dlg.run_button.rect().topLeft()).y() == y
    dlg.clear_message()
    assert dlg.run_button.mapTo(dlg, dlg.run_button.rect().topLeft()).y() == y
    dlg.close()


def test_no_engine_says_what_to_do(iface, city, project, monkeypatch):
    monkeypatch.setenv("LOC2_ENGINE_PYTHON", "")
    shutdown_shared_worker()
    try:
        dlg = Loc2Dialog(iface)
        dlg.engine.describe()
        assert "not installed" in dlg.engine.label.text() and not dlg.engine.isCollapsed()
        dlg.inputs.set_ortho_file(str(city.ortho))
        dlg.inputs.photo_widget.setFilePath(str(city.located[0]))
        _refused(dlg, project, "Install engine", "LOC2_ENGINE_PYTHON")
    finally:
        shutdown_shared_worker()


def test_an_engine_python_that_does_not_exist_is_named(iface, city, project, monkeypatch, tmp_path):
    monkeypatch.setenv("LOC2_ENGINE_PYTHON", str(tmp_path / "no" / "python"))
    shutdown_shared_worker()
    try:
        dlg = _dialog(iface, city, results=tmp_path)
        _run(dlg)
        level, text = dlg.last_message
        assert level == Qgis.Critical and str(tmp_path / "no" / "python") in text and "does not exist" in text
    finally:
        shutdown_shared_worker()


def test_a_broken_engine_environment_is_a_message(iface, city, project, monkeypatch, tmp_path):
    """QGIS's own Python has no torch: the worker starts, and the job says which package is missing."""
    monkeypatch.setenv("LOC2_ENGINE_PYTHON", "/usr/bin/python3")
    shutdown_shared_worker()
    try:
        dlg = _dialog(iface, city, results=tmp_path)
        _run(dlg)
        level, text = dlg.last_message
        assert level == Qgis.Critical and "/usr/bin/python3" in text and "cannot import" in text, text
        assert "Install engine" in text
        dlg.engine.describe()
        assert process_events_until(lambda: "cannot import" in dlg.engine.label.text(), timeout_s=60)
    finally:
        shutdown_shared_worker()


def test_weight_paths_are_remembered(iface, city, tmp_path):
    backbone, matcher = tmp_path / "b.pth", tmp_path / "m.pth"
    dlg = _dialog(iface, city)
    dlg.model.backbone_widget.setFilePath(str(backbone))
    dlg.model.matcher_widget.setFilePath(str(matcher))
    again = Loc2Dialog(iface)
    assert again.model.backbone_widget.filePath() == str(backbone)
    assert again.model.matcher_widget.filePath() == str(matcher)
    assert again.model.checkpoint_widget.filePath() == str(SHIPPED_MODEL)


@pytest.fixture
def no_remembered_choices():
    """The run choices forgotten before and after (other tests' dialogs start from the defaults)."""
    keys = ("model", "solver", "device", "precision", "search_radius_m", "include_matches")
    for key in keys:
        QgsSettings().remove(f"loc2/{key}")
    yield
    for key in keys:
        QgsSettings().remove(f"loc2/{key}")


def test_a_runs_choices_are_the_next_dialogs(iface, city, project, tmp_path, no_remembered_choices):
    """Model, solver, device, precision, radius and the matches layer come back as the last run left them."""
    dlg = _dialog(iface, city, results=tmp_path)
    dlg.model.solver_combo.setCurrentIndex(dlg.model.solver_combo.findData("published"))
    dlg.model.precision_combo.setCurrentIndex(dlg.model.precision_combo.findData("float32"))
    dlg.model.radius_spin.setValue(7.5)
    dlg.model.matches_check.setChecked(True)
    unrun = Loc2Dialog(iface)  # choices are remembered by a run, not by touching the combos
    assert unrun.model.solver_combo.currentData() == "precise"
    _run(dlg)
    assert dlg.last_result and dlg.last_result["ok"], dlg.last_message
    again = Loc2Dialog(iface)
    options = again.model.options()
    assert (options.model, options.solver, options.device, options.precision) == (
        str(SHIPPED_MODEL),
        "published",
        "cpu",
        "float32",
    )
    assert (options.search_radius_m, options.include_matches) == (7.5, True)
    for dialog in (dlg, unrun, again):
        dialog.close()
