"""The plugin in the QGIS that analysts run, its engine in its own process (issue: "The plugin works in the
QGIS that analysts run").

Each test drives the real QGIS desktop under Xvfb or the real ``qgis_process``, with the plugin installed from
its zip into a throw-away profile, and the engine found through ``LOC2_ENGINE_PYTHON``. The demo city's poses
from the engine's own command line (at one thread) are the reference: the dialog and Processing (the worker at
two threads) must give the same poses to the last bit.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
from cpu import cpu_has_bf16_instructions
from engine_fixtures import EngineMissing, engine_python, gpkg_rows, make_demo_city, poses_by_photo

ALGORITHM = "loc2:localizeimages"


@pytest.fixture(scope="session")
def engine() -> str:
    try:
        return engine_python()
    except EngineMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def demo(tmp_path_factory, engine):
    """The demo city and the CLI's results at one thread."""
    return make_demo_city(tmp_path_factory.mktemp("demo"), threads=1)


def _engine_env(engine: str, threads: int = 2, **extra) -> dict[str, str]:
    return {
        "LOC2_ENGINE_PYTHON": engine,
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        **extra,
    }


def _same_pose(a: dict, b: dict, what: str) -> None:
    assert a["status"] == b["status"], (what, a, b)
    if a["status"] == "ok":
        assert (a["x"], a["y"], a["heading"], a["inliers"]) == (b["x"], b["y"], b["heading"], b["inliers"]), (
            what,
            a,
            b,
        )


# ------------------------------------------------------------------------------------------------ qgis_process
def _localize_demo(qgis_process, demo, engine: str, threads: int, **params):
    """``qgis_process --json run loc2:localizeimages`` on the demo city with ``params``, the engine at
    ``threads`` threads."""
    argv = ["--json", "run", ALGORITHM, "--", f"ORTHOPHOTO={demo.ortho}", f"PHOTOS={demo.photos}"]
    argv += [f"{name}={value}" for name, value in params.items()]
    return qgis_process(argv, env=_engine_env(engine, threads=threads), timeout=600)


@pytest.mark.slow
def test_qgis_process_runs_the_demo_city_like_the_cli(demo, engine, qgis_process, tmp_path):
    """``qgis_process run loc2:localizeimages``: only POSES given (the other outputs are optional), then every
    output as GeoPackage and Shapefile; exit status 0 after the run; the poses are the CLI's, bit for bit."""
    only_poses = tmp_path / "only_poses.gpkg"
    run = _localize_demo(qgis_process, demo, engine, 2, POSES=only_poses, DEVICE=2)
    assert run.returncode == 0 and not run.crashed, run.describe()
    assert run.json is not None and run.json["results"]["LOCALIZED_COUNT"] == 8, run.describe()
    cli = poses_by_photo(demo.results)
    plugin = poses_by_photo(only_poses, "only_poses")
    assert set(plugin) == set(cli) and len(plugin) == 8
    for name in cli:
        _same_pose(plugin[name], cli[name], name)

    outputs = {
        "POSES": tmp_path / "poses16.gpkg",
        "INLIERS": tmp_path / "shp" / "inliers.shp",
        "OUTLINES": tmp_path / "shp" / "outlines.shp",
        "SHIFTS": tmp_path / "shifts.gpkg",
        "FAILED": tmp_path / "failed.gpkg",
    }
    (tmp_path / "shp").mkdir()
    run = _localize_demo(qgis_process, demo, engine, 16, DEVICE=2, **outputs)
    assert run.returncode == 0 and not run.crashed, run.describe()
    for name, path in outputs.items():
        assert Path(path).is_file(), (name, run.describe())
    sixteen = poses_by_photo(outputs["POSES"], "poses16")
    for name in cli:
        _same_pose(sixteen[name], cli[name], f"{name} at 16 threads")
    assert len(gpkg_rows(outputs["SHIFTS"], "shifts")) == 8
    assert len(gpkg_rows(outputs["FAILED"], "failed")) == 0
    for layer in ("inliers", "outlines"):
        for suffix in (".shp", ".dbf", ".prj"):
            assert (tmp_path / "shp" / f"{layer}{suffix}").stat().st_size > 100


@pytest.mark.slow
def test_qgis_process_runs_the_backbone_in_bfloat16(demo, engine, qgis_process, tmp_path):
    """``PRECISION=2`` (bfloat16): on a CPU with bf16 instructions all 8 photos are localized and the poses stay
    near the CLI's float32 poses (a loosely determined photo may move more); elsewhere the run fails, saying
    why, and writes nothing."""
    poses = tmp_path / "bf16.gpkg"
    run = _localize_demo(qgis_process, demo, engine, 2, POSES=poses, DEVICE=2, PRECISION=2)
    if not cpu_has_bf16_instructions():
        assert run.returncode != 0 and not run.crashed and "no bf16 instructions" in run.describe(), (
            run.describe()
        )
        return
    assert run.returncode == 0 and not run.crashed, run.describe()
    assert run.json["results"]["LOCALIZED_COUNT"] == 8, run.describe()
    cli, bf16 = poses_by_photo(demo.results), poses_by_photo(poses, "bf16")
    shifts = sorted(math.hypot(bf16[n]["x"] - cli[n]["x"], bf16[n]["y"] - cli[n]["y"]) for n in cli)
    assert shifts[0] > 0 or any(bf16[n]["inliers"] != cli[n]["inliers"] for n in cli)  # bf16 really ran
    assert shifts[len(shifts) // 2] < 0.2, shifts  # median over the 8 photos, metres


# ------------------------------------------------------------------------------------------------ the desktop
DIALOG_RUN = """
import os, time
from pathlib import Path
from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer

ortho, photo, export = {ortho!r}, {photo!r}, {export!r}
plugin = plugins["loc2"]
action = [a for a in iface.pluginToolBar().actions() if "loc2" in (a.text() + a.objectName()).lower()][0]
action.trigger()  # the user's click on the toolbar button
dlg = plugin.dialog
wait_until(lambda: dlg.isVisible(), timeout=20, message="the dialog did not open")
wait_until(lambda: "PyTorch" in dlg.engine.label.text(), timeout=90, message="engine status")
results["engine_status"] = dlg.engine.label.text()

dlg.inputs.set_ortho_file(ortho)  # as picked with the … button
results["ortho_layers"] = [l.name() for l in QgsProject.instance().mapLayers().values() if isinstance(l, QgsRasterLayer)]
results["ortho_chosen"] = dlg.inputs.ortho_combo.currentLayer().source() if dlg.inputs.ortho_combo.currentLayer() else None
dlg.inputs.photo_widget.setFilePath(photo)
wait_until(lambda: dlg.inputs.photo_meta is not None, timeout=60, message="the photo was not read")
results["photo_info"] = dlg.inputs.photo_info.text()

run_row_y = dlg.run_button.mapTo(dlg, dlg.run_button.rect().topLeft()).y()
dlg.show_message("x " * 400 + "END", 2)  # a long message: wraps, scrolls, never moves the buttons
results["long_message_whole"] = dlg.message_panel.text.endswith("END") and dlg.message_panel.label.wordWrap()
results["buttons_still"] = dlg.run_button.mapTo(dlg, dlg.run_button.rect().topLeft()).y() == run_row_y
screenshot("dialog_long_message", dlg)
dlg.inputs.photo_widget.setFilePath(photo + "")  # an input change clears an input error
dlg.clear_message()

stages, fractions = [], []
t0 = time.monotonic()
dlg.run_button.click()
task = dlg.task
assert task is not None, dlg.last_message
task.engine_event.connect(lambda e: (stages.append(e.get("stage")), fractions.append(e.get("fraction"))) if e.get("event") == "progress" else None)
wait_until(lambda: dlg.task is None, timeout=300, message="the run did not end")
results["run_s"] = time.monotonic() - t0
results["stages"] = [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s]
results["fractions"] = fractions
results["message"] = [int(dlg.last_message[0]), dlg.last_message[1]]
results["progress"] = dlg.progress.value()
root = QgsProject.instance().layerTreeRoot()
group = root.children()[0]
results["group"] = group.name()
results["layers"] = [n.name() for n in group.children()]
layers = {{l.name(): l for l in QgsProject.instance().mapLayers().values() if isinstance(l, QgsVectorLayer)}}
results["providers"] = sorted({{l.providerType() for l in layers.values()}})
pose = next(dlg.layers["poses"].getFeatures())
results["pose"] = {{"x": pose["x"], "y": pose["y"], "heading": pose["heading"], "inliers": pose["inliers"], "status": pose["status"], "confidence": pose["confidence"]}}
prior_layer = dlg.layers["priors"]
prior = next(prior_layer.getFeatures())
results["prior_fields"] = prior_layer.fields().names()
results["prior_matches"] = (abs(prior.geometry().asPoint().x() - pose["prior_x"]) < 1e-6, abs(prior.geometry().asPoint().y() - pose["prior_y"]) < 1e-6)
results["legend"] = {{}}
from qgis.core import QgsLayerTreeLayer, QgsMapLayerLegendUtils
for role, layer in dlg.layers.items():
    node = root.findLayer(layer.id())
    items = layer.legend().createLayerTreeModelLegendNodes(node) if layer.legend() else []
    results["legend"][role] = [i.data(0) for i in items]
results["figure"] = not dlg.figure_label.pixmap().isNull() if dlg.figure_label.pixmap() is not None else False
wait(0.5)
screenshot("dialog_after_run", dlg)
canvas = iface.mapCanvas()
canvas.zoomScale(500)
canvas.refresh()
wait_until(lambda: not canvas.isDrawing(), timeout=30)
wait(1.0)
results["map_shot"] = screenshot("map_1_500", canvas)

task = dlg.export_results(export)
wait_until(lambda: not dlg.tasks.running, timeout=120, message="the export did not end")
results["export_message"] = [int(dlg.last_message[0]), dlg.last_message[1]]
results["exported"] = sorted(os.listdir(Path(export).parent))

# Cancel: within a second of the click, nothing added (a 60 m search: 29 crops, long enough to cancel)
before = len(QgsProject.instance().mapLayers())
dlg.model.radius_spin.setValue(60.0)
dlg.run_button.click()
assert dlg.task is not None, dlg.last_message
started = []
dlg.task.engine_event.connect(lambda e: started.append(e.get("stage")))
wait_until(lambda: "match" in started or dlg.task is None, timeout=120)
results["cancel_stage"] = started[-1:]
t0 = time.monotonic()
dlg.cancel_button.click()
wait_until(lambda: dlg.task is None, timeout=30, message="cancel did not end the run")
results["cancel_s"] = time.monotonic() - t0
results["cancel_message"] = dlg.last_message[1]
results["layers_after_cancel"] = len(QgsProject.instance().mapLayers()) - before
"""


@pytest.mark.slow
def test_dialog_runs_one_photo_shows_layers_exports_and_cancels(demo, engine, qgis_app, tmp_path):
    photo = demo.photos / "pinhole_001.jpg"  # the photo whose pose once depended on the thread count
    export = tmp_path / "export" / "result.shp"
    export.parent.mkdir()
    run = qgis_app(
        DIALOG_RUN.format(ortho=str(demo.ortho), photo=str(photo), export=str(export)),
        env=_engine_env(engine, threads=2),
        timeout=600,
    )
    run.check()
    r = run.results
    assert "Python" in r["engine_status"] and "PyTorch" in r["engine_status"]
    assert r["ortho_layers"] == ["ortho"] and r["ortho_chosen"] == str(demo.ortho)  # the file is on the map
    assert "pinhole photo" in r["photo_info"] and "GPS" in r["photo_info"]
    assert r["long_message_whole"] and r["buttons_still"]
    assert r["message"][0] == 3 and "moved" in r["message"][1] and "confidence" in r["message"][1], r[
        "message"
    ]
    assert r["progress"] == 100
    for stage in ("model", "read", "backbone", "match", "solve", "done"):
        assert stage in r["stages"], r["stages"]
    assert r["fractions"] == sorted(r["fractions"]) and max(r["fractions"]) == 1.0  # it follows the stages
    assert r["group"] == "Loc2 — pinhole_001.jpg"
    assert r["layers"] == [
        "Corrected pose",
        "Prior (GPS) pose",
        "Shift, prior → corrected",
        "Inlier matches",
        "Ground layout outline",
    ]
    assert r["providers"] == ["ogr"]  # read from the engine's GeoPackage by QGIS's own provider
    assert r["prior_fields"][:3] == ["fid", "photo", "status"] and "prior_head" in r["prior_fields"]
    assert "inliers" not in r["prior_fields"] and all(r["prior_matches"])  # the prior's own attributes
    assert any("high confidence" in str(x) for x in r["legend"]["poses"]), r["legend"]
    assert any("matching probability P" in str(x) for x in r["legend"]["inliers"]), r["legend"]
    assert r["figure"]
    assert r["map_shot"]["colours"] > 50
    cli = poses_by_photo(demo.results)["pinhole_001.jpg"]
    _same_pose({**r["pose"], "status": r["pose"]["status"]}, cli, "dialog vs CLI")

    assert r["export_message"][0] == 3, r["export_message"]
    for layer in ("poses", "priors", "inliers", "outlines", "shifts"):
        for suffix in (".shp", ".dbf", ".prj", ".qml"):
            assert f"result_{layer}{suffix}" in r["exported"], r["exported"]

    assert r["cancel_s"] < 1.5, r["cancel_s"]  # 0.75 s of grace, then the engine is stopped
    assert "Cancelled" in r["cancel_message"] and r["layers_after_cancel"] == 0
    names = {p.name for p in run.screenshots}
    assert {"dialog_after_run.png", "map_1_500.png", "dialog_long_message.png"} <= names
    assert run.returncode == 0


PROCESSING_KILL = """
import os, signal
import processing
from qgis.core import QgsProcessingFeedback
from loc2.ui.engine.client import shared_worker

ortho, photos, kept = {ortho!r}, {photos!r}, {kept!r}

class Feedback(QgsProcessingFeedback):
    def __init__(self, kill_after=None):
        super().__init__()
        self.kill_after, self.done, self.errors = kill_after, 0, []
    def pushInfo(self, info):
        super().pushInfo(info)
        if "inliers" in info:
            self.done += 1
            if self.kill_after is not None and self.done == self.kill_after:
                os.kill(shared_worker().pid, signal.SIGKILL)  # the engine dies mid-batch
    def reportError(self, error, fatalError=False):
        self.errors.append(error)
        super().reportError(error, fatalError)

params = {{"ORTHOPHOTO": ortho, "PHOTOS": photos, "DEVICE": 2, "POSES": "TEMPORARY_OUTPUT", "ENGINE_RESULTS": kept}}
feedback = Feedback(kill_after=2)
first = processing.run("loc2:localizeimages", params, feedback=feedback)
results["first"] = {{"poses": first["POSES"].featureCount(), "localized": first["LOCALIZED_COUNT"], "errors": feedback.errors}}
feedback = Feedback()
second = processing.run("loc2:localizeimages", params, feedback=feedback)
photos_done = [f["photo"] for f in second["POSES"].getFeatures()]
results["second"] = {{"poses": len(photos_done), "distinct": len(set(photos_done)), "localized": second["LOCALIZED_COUNT"]}}

# as from the toolbox: the outputs are loaded, styled and put in one group (resumed: nothing left to do)
from qgis.core import QgsProject
processing.runAndLoadResults("loc2:localizeimages", {{**params, "INLIERS": "TEMPORARY_OUTPUT"}})
group = QgsProject.instance().layerTreeRoot().findGroup("Loc2 results")
results["group"] = [n.name() for n in group.children()] if group else None
results["styled"] = [type(l.renderer()).__name__ for l in QgsProject.instance().mapLayers().values()]
"""


@pytest.mark.slow
def test_a_worker_killed_mid_batch_is_a_message_and_resume_finishes(demo, engine, qgis_app, tmp_path):
    kept = tmp_path / "engine_results.gpkg"
    run = qgis_app(
        PROCESSING_KILL.format(ortho=str(demo.ortho), photos=str(demo.photos), kept=str(kept)),
        env=_engine_env(engine),
        timeout=600,
    )
    run.check()  # QGIS neither crashed nor showed an error dialog, and exited 0
    first, second = run.results["first"], run.results["second"]
    assert 2 <= first["poses"] < 8, first  # the photos written before the kill are kept
    assert any(
        "stopped unexpectedly" in e and "ENGINE_RESULTS" not in e and "run again" in e
        for e in first["errors"]
    ), first
    assert second == {"poses": 8, "distinct": 8, "localized": 8}, second  # resumed: every photo exactly once
    assert sorted(run.results["group"]) == ["Loc2 inliers", "Loc2 poses"], run.results["group"]
    assert sorted(run.results["styled"]) == ["QgsGraduatedSymbolRenderer", "QgsRuleBasedRenderer"]
    assert len({r["photo"] for r in gpkg_rows(kept, "poses", "photo")}) == 8


INSTALL_AND_RUN = """
import time
from qgis.core import QgsProject
plugin = plugins["loc2"]
plugin.show_dialog()
dlg = plugin.dialog
wait_until(lambda: dlg.isVisible(), timeout=20)
results["status_before"] = dlg.engine.label.text()
results["engine_box_open"] = not dlg.engine.isCollapsed()
screenshot("no_engine", dlg)
dlg.inputs.set_ortho_file({ortho!r})
dlg.inputs.photo_widget.setFilePath({photo!r})
dlg.run_button.click()
results["run_without_engine"] = dlg.last_message[1]
t0 = time.monotonic()
dlg.engine.install(confirm=False, base_python={base!r})
results["install_started"] = dlg.last_message[1]
wait_until(lambda: dlg.engine.installer is None, timeout=1500, message="the install did not end")
results["install_s"] = time.monotonic() - t0
results["install_message"] = [int(dlg.last_message[0]), dlg.last_message[1]]
results["log_tail"] = dlg.engine.install_log.toPlainText()[-3000:]
wait_until(lambda: "PyTorch" in dlg.engine.label.text(), timeout=120, message="engine status after install")
results["status_after"] = dlg.engine.label.text()
dlg.inputs.photo_widget.setFilePath({photo!r} + "")
dlg.run_button.click()
wait_until(lambda: dlg.task is None, timeout=300, message="the run did not end")
results["run_message"] = [int(dlg.last_message[0]), dlg.last_message[1]]
screenshot("after_install_and_run", dlg)
"""


@pytest.mark.slow
def test_install_engine_then_run_from_a_qgis_without_engine(demo, qgis_app, tmp_path):
    """No engine anywhere: the dialog says what to do; "Install engine" makes the managed environment in the
    profile (a venv without system site packages, PyTorch for the CPU, the engine's packages; pip from the
    package index as configured on this machine) and Run then works with it."""
    base = os.environ.get("LOC2_APP_BASE_PYTHON", "")
    env = {
        "LOC2_ENGINE_PYTHON": "",
        "PIP_CACHE_DIR": os.environ.get("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip")),
        "PIP_CONSTRAINT": str(Path(__file__).resolve().parents[2] / "constraints.txt"),
        "LOC2_TORCH_INDEX_URL": os.environ.get("LOC2_TORCH_INDEX_URL", ""),
    }
    photo = demo.photos / "pano_000.jpg"
    run = qgis_app(
        INSTALL_AND_RUN.format(ortho=str(demo.ortho), photo=str(photo), base=base), env=env, timeout=1800
    )
    run.check()
    r = run.results
    assert "not installed" in r["status_before"] and r["engine_box_open"]
    assert "Install engine" in r["run_without_engine"]
    assert "MB to download" in r["install_started"]
    assert r["install_message"][0] == 3, (r["install_message"], r["log_tail"])
    assert "loc2-engine" in r["status_after"] and "PyTorch" in r["status_after"], r["status_after"]
    assert r["run_message"][0] == 3 and "moved" in r["run_message"][1], r["run_message"]
    print(json.dumps({"install_s": round(r["install_s"], 1)}))
    assert math.isfinite(r["install_s"])
    shutil.rmtree(tmp_path, ignore_errors=True)  # the engine environment takes 1.5 GB
