"""The single-photo dialog and its QgsTask in a real (offscreen) QGIS: runs, cancel, export, bad input.

The model is the shipped demo checkpoint, chosen as a checkpoint file (a randomly initialised one found a
pose only by luck); accuracy against the truth is asserted in test_plugin_processing.py. A screenshot of
the dialog after a run is saved to ``tests/artifacts/dialog.png`` for review.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from plugin_fixtures import CRS, lonlat_at, make_city, torch_threads_restored, write_ortho
from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProject,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import Qt
from qgis_helpers import StubIface, clear_project, process_events_until, qgis_app

qgis_app()

from loc2.ui import dependencies  # noqa: E402
from loc2.ui import dialog as dialog_module  # noqa: E402
from loc2.ui.dialog import (  # noqa: E402
    DEPTH_FILE,
    HEADING_TYPED,
    PRIOR_CLICKED,
    PRIOR_TYPED,
    InputError,
    Loc2Dialog,
    parse_lonlat,
)
from loc2.ui.models import DEMO_CHECKPOINT as SHIPPED_MODEL  # noqa: E402
from loc2.ui.task import LocalizeTask  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LAYER_NAMES = ["Corrected pose", "Prior pose", "Shift", "Inliers", "Ground outline"]


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_threads():
    with torch_threads_restored():
        yield


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


def _dialog(iface, city, photo=None) -> Loc2Dialog:
    dlg = Loc2Dialog(iface)
    dlg.set_ortho_file(str(city.ortho))
    dlg.photo_widget.setFilePath(str(photo or city.located[0]))
    dlg.model_combo.setCurrentIndex(dlg.model_combo.findData("checkpoint"))
    dlg.checkpoint_widget.setFilePath(str(SHIPPED_MODEL))  # trained: a random model finds a pose by luck
    dlg.device_combo.setCurrentIndex(2)  # CPU
    dlg.radius_spin.setValue(1.0)
    return dlg


def _assert_nothing_added(project):
    assert project.mapLayers() == {} and project.layerTreeRoot().children() == []


def test_parse_lonlat():
    assert parse_lonlat("8.54, 47.37") == (8.54, 47.37)
    assert parse_lonlat(" 8.54 47.37 ") == (8.54, 47.37)
    for bad in ("", "8.54", "a, b", "200, 10", "8, 95"):
        with pytest.raises(InputError):
            parse_lonlat(bad)


def test_demo_checkpoint_path_matches_the_engine():
    from loc2.core.localizer import DEMO_CHECKPOINT

    assert dialog_module.DEMO_CHECKPOINT == DEMO_CHECKPOINT


def test_task_runs_synchronously_and_finished_adds_the_group(iface, city, project):
    dlg = _dialog(iface, city)
    spec = dlg.collect_spec()
    assert spec.options["solver"] == "precise"  # the default
    name = city.located[0].name
    assert (spec.prior_lon, spec.prior_lat) == pytest.approx(city.positions[name], abs=1e-6)
    assert spec.prior_heading_deg == pytest.approx(city.headings[name], abs=0.01)
    task = LocalizeTask(spec, project=project)
    try:
        assert task.run(), task.error
        _assert_nothing_added(project)  # run() (worker thread) never touches the project
        task.finished(True)
        assert task.group is not None and task.group.name() == f"Loc2 — {name}"
        assert [n.name() for n in task.group.children()] == LAYER_NAMES
        poses = task.layers["poses"]
        assert poses.crs() == QgsCoordinateReferenceSystem(CRS) and poses.featureCount() == 1
        pose = next(poses.getFeatures())
        assert pose["status"] == "ok" and 0 <= pose["heading"] < 360 and pose["inliers"] >= 3
        assert task.layers["inliers"].featureCount() == pose["inliers"]
        assert task.layers["outlines"].geometryType() == QgsWkbTypes.PolygonGeometry
        prior = next(task.layers["priors"].getFeatures()).geometry().asPoint()
        assert (prior.x(), prior.y()) == pytest.approx((pose["prior_x"], pose["prior_y"]))
        assert task.figure_path and Path(task.figure_path).read_bytes()[:4] == b"\x89PNG"
    finally:
        task.cleanup()


def test_task_manager_run_shows_result_and_exports_shapefiles(iface, city, project, tmp_path):
    dlg = _dialog(iface, city)
    dlg.matches_check.setChecked(True)
    task = dlg.start()
    assert task is not None and not dlg.run_button.isEnabled() and dlg.cancel_button.isEnabled()
    assert process_events_until(lambda: dlg.task is None, timeout_s=180), "the task did not finish"
    level, text = dlg.last_message
    assert level == Qgis.Success, text
    assert "inliers" in text and dlg.progress.value() == 100
    group = project.layerTreeRoot().children()[0]
    assert [n.name() for n in group.children()] == [
        "Corrected pose",
        "Prior pose",
        "Shift",
        "Matches",
        "Inliers",
        "Ground outline",
    ]
    assert not dlg.figure_label.pixmap().isNull()
    pose = next(project.mapLayersByName("Corrected pose")[0].getFeatures()).geometry()
    to_canvas = QgsCoordinateTransform(
        QgsCoordinateReferenceSystem(CRS), iface.canvas.mapSettings().destinationCrs(), project
    )
    assert iface.canvas.extent().contains(to_canvas.transform(pose.asPoint()))  # zoomed to the result
    assert dlg.export_button.isEnabled() and dlg.run_button.isEnabled()

    sources = dlg.export_results(str(tmp_path / "result.shp"))
    assert set(sources) == {"poses", "inliers", "outlines", "shifts", "matches"}
    expected = {
        "poses": QgsWkbTypes.PointGeometry,
        "outlines": QgsWkbTypes.PolygonGeometry,
        "shifts": QgsWkbTypes.LineGeometry,
    }
    for name, geometry in expected.items():
        layer = QgsVectorLayer(str(tmp_path / f"result_{name}.shp"), name, "ogr")
        assert layer.isValid() and layer.crs().authid() == CRS and layer.geometryType() == geometry
    poses = QgsVectorLayer(str(tmp_path / "result_poses.shp"), "poses", "ogr")
    assert "heading" in poses.fields().names() and poses.featureCount() == 1
    _screenshot(dlg)
    dlg.shutdown()


def _screenshot(dlg):
    """Save the dialog, as it looks after a run, to tests/artifacts/dialog.png for review."""
    dlg.update_device_label()
    assert "CPU" in dlg.device_label.text()
    dlg.resize(1000, 760)
    dlg.show()
    process_events_until(lambda: False, timeout_s=0.3)
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "dialog.png"
    assert dlg.grab().save(str(path))
    assert path.stat().st_size > 20_000  # a real picture, not an empty frame
    dlg.close()


def test_published_solver_choice_reaches_the_job(iface, city, project):
    dlg = _dialog(iface, city)
    dlg.solver_combo.setCurrentIndex(dlg.solver_combo.findData("published"))
    spec = dlg.collect_spec()
    assert spec.options["solver"] == "published"
    task = LocalizeTask(spec, project=project)
    assert task.run(), task.error  # the engine takes the option
    assert task.result is not None and task.result.ok


def test_cancel_adds_nothing(iface, city, project):
    dlg = _dialog(iface, city)
    task = LocalizeTask(dlg.collect_spec(), project=project)
    task.cancel()
    assert task.run() is False
    task.finished(False)
    assert task.canceled and task.group is None
    _assert_nothing_added(project)
    task.cleanup()

    task = dlg.start()  # through the task manager, cancelled at once
    dlg.cancel()
    assert process_events_until(lambda: dlg.task is None, timeout_s=180)
    assert dlg.last_message[0] == Qgis.Info and "Cancelled" in dlg.last_message[1]
    _assert_nothing_added(project)
    dlg.shutdown()


def _refused(dlg, project, *needles):
    assert dlg.start() is None
    level, text = dlg.last_message
    assert level == Qgis.Critical
    for needle in needles:
        assert needle in text, text
    _assert_nothing_added(project)


def test_no_raster_chosen(iface, city, project):
    dlg = _dialog(iface, city)
    dlg.ortho_combo.setCurrentIndex(0)  # the empty entry
    _refused(dlg, project, "Choose an orthophoto")


def test_raster_without_crs(iface, city, project, tmp_path):
    dlg = _dialog(iface, city)
    dlg.set_ortho_file(str(write_ortho(tmp_path / "bare.tif", crs=None)))
    _refused(dlg, project, "bare.tif", "coordinate reference system")


def test_photo_without_gps_needs_a_clicked_or_typed_prior(iface, city, project):
    dlg = _dialog(iface, city, photo=city.no_gps)
    assert "no GPS" in dlg.photo_info.text()
    _refused(dlg, project, "zz_no_gps.jpg", "no GPS position")
    dlg.prior_combo.setCurrentIndex(PRIOR_CLICKED)
    _refused(dlg, project, "Click the camera")
    dlg.prior_combo.setCurrentIndex(PRIOR_TYPED)
    dlg.prior_edit.setText("not a position")
    _refused(dlg, project, "longitude, latitude")
    lon, lat = lonlat_at(60.0, 60.0)  # UTM 32N (465 060, 5 246 060) in WGS84
    dlg.start_picking()  # the map tool emits the clicked point in the canvas CRS (EPSG:3857 here)
    assert iface.canvas.mapTool() is dlg._map_tool
    to_canvas = QgsCoordinateTransform(
        QgsCoordinateReferenceSystem("EPSG:4326"), iface.canvas.mapSettings().destinationCrs(), project
    )
    dlg._map_tool.canvasClicked.emit(to_canvas.transform(QgsPointXY(lon + 0.001, lat)), Qt.LeftButton)
    assert dlg.clicked_lonlat == pytest.approx((lon + 0.001, lat), abs=1e-7)
    assert iface.canvas.mapTool() is not dlg._map_tool  # the previous tool is back
    x, y = 465_060.0, 5_246_060.0  # the same point in the orthophoto's CRS, as clicked on a UTM map
    dlg.set_clicked_prior(QgsPointXY(x, y), QgsCoordinateReferenceSystem(CRS))
    dlg.heading_combo.setCurrentIndex(HEADING_TYPED)
    dlg.heading_spin.setValue(370.0 % 360)
    spec = dlg.collect_spec()
    assert (spec.prior_lon, spec.prior_lat) == pytest.approx((lon, lat), abs=1e-7)
    assert spec.prior_heading_deg == pytest.approx(10.0)


def test_missing_weights(iface, city, project, tmp_path, monkeypatch):
    dlg = _dialog(iface, city)
    dlg.checkpoint_widget.setFilePath(str(tmp_path / "gone.pt"))
    _refused(dlg, project, "checkpoint", "gone.pt")
    dlg.model_combo.setCurrentIndex(dlg.model_combo.findData("vigor"))
    dlg.backbone_widget.setFilePath("")
    dlg.matcher_widget.setFilePath("")
    _refused(dlg, project, "VIGOR", "published weights")
    monkeypatch.setattr(dialog_module, "DEMO_CHECKPOINT", tmp_path / "loc2_demo.pt")
    dlg.model_combo.setCurrentIndex(dlg.model_combo.findData("demo"))
    _refused(dlg, project, "demo model is not installed")


def test_missing_depth_file(iface, city, project, tmp_path):
    dlg = _dialog(iface, city)
    dlg.depth_combo.setCurrentIndex(DEPTH_FILE)
    dlg.depth_widget.setFilePath(str(tmp_path / "depth.png"))
    _refused(dlg, project, "depth map", "depth.png")


def test_torch_missing(iface, city, project, monkeypatch):
    real = dependencies._default_find_spec
    monkeypatch.setattr(dependencies, "_default_find_spec", lambda m: None if m == "torch" else real(m))
    dlg = _dialog(iface, city)
    assert dlg.last_message[0] == Qgis.Critical and "torch" in dlg.last_message[1]  # said on opening
    _refused(dlg, project, "torch", "pip install", "numpy<2")
    dlg.update_device_label()
    assert "not installed" in dlg.device_label.text()


def _wait_for_install(dlg, timeout_ms=120_000):
    from qgis.PyQt.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    dlg.installer.done.connect(lambda *_: loop.quit())
    QTimer.singleShot(timeout_ms, loop.quit)
    if dlg.installer.running:
        loop.exec_()
    assert not dlg.installer.running


def test_install_button_runs_pip_in_the_background_and_reports(iface, city, monkeypatch, tmp_path):
    """The button runs pip through QProcess (real pip, offline: an unknown package fails, --version
    succeeds); the dialog stays usable, Run is disabled meanwhile, and the outcome is said."""
    from loc2.ui import installer

    real = dependencies._default_find_spec
    monkeypatch.setattr(dependencies, "_default_find_spec", lambda m: None if m == "torch" else real(m))
    dlg = _dialog(iface, city)
    assert dlg.install_button is not None and dlg.install_button.text() == "Install dependencies"

    asked = []
    monkeypatch.setattr(
        installer,
        "install_command",
        lambda missing: asked.append(missing) or [sys.executable, "-m", "pip", "--version"],
    )
    dlg.install_button.click()  # the default command: install what is missing
    assert asked == [[("torch", "torch")]] and not dlg.run_button.isEnabled()
    _wait_for_install(dlg)
    assert dlg.last_message[0] == Qgis.Critical and "still missing: torch" in dlg.last_message[1]
    assert dlg.run_button.isEnabled()

    offline = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        str(tmp_path),
        "loc2-no-such-pkg",
    ]
    dlg.install_dependencies(command=offline)
    _wait_for_install(dlg)
    level, text = dlg.last_message
    assert level == Qgis.Critical and "Installing failed" in text and "loc2-no-such-pkg" in text
    assert "No matching distribution" in text or "Could not find" in text  # pip's own words, kept

    monkeypatch.setattr(dependencies, "_default_find_spec", real)  # now nothing is missing
    dlg.install_dependencies(command=[sys.executable, "-m", "pip", "--version"])
    _wait_for_install(dlg)
    assert dlg.last_message == (Qgis.Success, "The packages are installed. Restart QGIS to use Loc2.")

    dlg.install_dependencies(command=[str(tmp_path / "no-such-python")])
    _wait_for_install(dlg)
    assert dlg.last_message[0] == Qgis.Critical and "Could not start" in dlg.last_message[1]


def test_a_failing_photo_is_reported_not_added(iface, city, project):
    dlg = _dialog(iface, city)
    dlg.prior_combo.setCurrentIndex(PRIOR_TYPED)
    dlg.prior_edit.setText("9.5, 47.0")  # far outside the orthophoto
    task = LocalizeTask(dlg.collect_spec(), project=project)
    assert task.run() is False
    task.finished(False)
    assert "outside the orthophoto" in task.error
    dlg.task = task
    dlg._task_done(False)
    assert dlg.last_message[0] == Qgis.Critical and "outside the orthophoto" in dlg.last_message[1]
    _assert_nothing_added(project)
    task.cleanup()


def test_weight_paths_are_remembered(iface, city, tmp_path):
    backbone, matcher = tmp_path / "b.pth", tmp_path / "m.pth"
    dlg = _dialog(iface, city)
    dlg.backbone_widget.setFilePath(str(backbone))
    dlg.matcher_widget.setFilePath(str(matcher))
    again = Loc2Dialog(iface)
    assert again.backbone_widget.filePath() == str(backbone)
    assert again.matcher_widget.filePath() == str(matcher)
    assert again.checkpoint_widget.filePath() == str(SHIPPED_MODEL)
