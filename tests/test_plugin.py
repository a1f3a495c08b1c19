"""The plugin against a real QGIS: loading through classFactory, GUI entries, provider, missing packages."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys

import pytest
from qgis.core import QgsApplication, QgsProcessingAlgorithm
from qgis_helpers import ROOT, StubIface, class_factory, qgis_app

qgis_app()

from loc2.ui import dependencies  # noqa: E402


@pytest.fixture
def iface():
    return StubIface()


def test_load_and_unload_through_class_factory(iface):
    registry = QgsApplication.processingRegistry()
    plugin = class_factory()(iface)
    plugin.initGui()
    try:
        assert len(iface.toolbar_actions) == 1
        assert [menu for menu, _ in iface.raster_menu] == ["Loc2"]
        action = iface.toolbar_actions[0]
        assert iface.raster_menu[0][1] is action and not action.icon().isNull()
        provider = registry.providerById("loc2")
        assert provider is not None and provider.name() == "Loc2"
        alg = registry.algorithmById("loc2:localizeimages")
        assert isinstance(alg, QgsProcessingAlgorithm)
        assert alg.displayName() and alg.shortHelpString() and alg.group()
    finally:
        plugin.unload()
    assert iface.toolbar_actions == [] and iface.raster_menu == []
    assert registry.providerById("loc2") is None
    assert registry.algorithmById("loc2:localizeimages") is None


def test_toolbar_action_opens_the_dialog_and_unload_closes_it(iface):
    plugin = class_factory()(iface)
    plugin.initGui()
    try:
        iface.toolbar_actions[0].trigger()
        assert plugin.dialog is not None and plugin.dialog.isVisible()
        assert plugin.dialog.parent() is iface.mainWindow()
    finally:
        plugin.unload()
    assert plugin.dialog is None and plugin.action is None


def test_init_processing_twice_registers_one_provider(iface):
    plugin = class_factory()(iface)
    plugin.initProcessing()
    plugin.initGui()  # calls initProcessing again
    try:
        ids = [p.id() for p in QgsApplication.processingRegistry().providers()]
        assert ids.count("loc2") == 1
    finally:
        plugin.unload()


def test_algorithm_parameters_and_outputs():
    from loc2.ui.algorithm import LocalizeImagesAlgorithm

    alg = LocalizeImagesAlgorithm()
    alg.initAlgorithm()
    params = {p.name(): p for p in alg.parameterDefinitions()}
    for name in (
        "ORTHOPHOTO",
        "PHOTOS",
        "PHOTO_LAYER",
        "PHOTO_FIELD",
        "HEADING_FIELD",
        "MODEL",
        "CHECKPOINT",
    ):
        assert name in params
    for name in (
        "DEPTH",
        "DEPTH_FOLDER",
        "SEARCH_RADIUS",
        "DEVICE",
        "POSES",
        "INLIERS",
        "OUTLINES",
        "SHIFTS",
    ):
        assert name in params
    assert params["PHOTO_FIELD"].defaultValue() == "photo"
    assert params["HEADING_FIELD"].defaultValue() == "direction"
    assert params["MODEL"].options()[0].startswith("Demo")
    assert [o.split()[0] for o in params["DEVICE"].options()] == ["Auto", "CUDA", "CPU"]
    assert params["PHOTOS"].flags() & params["PHOTOS"].FlagOptional
    assert params["FAILED"].flags() & params["FAILED"].FlagOptional
    assert alg.name() == "localizeimages"


def _run_offscreen(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python with QGIS offscreen (from the repository root, 120 s at most)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_plugin_load_imports_no_torch():
    """Loading the plugin (classFactory, initGui, Processing provider) must not import torch."""
    code = (
        "import sys; sys.path.insert(0, 'tests');"
        "from qgis_helpers import StubIface, class_factory, qgis_app; qgis_app();"
        "p = class_factory()(StubIface()); p.initGui();"
        "from qgis.core import QgsApplication;"
        "assert QgsApplication.processingRegistry().algorithmById('loc2:localizeimages') is not None;"
        "p.unload(); print('torch' in sys.modules, 'cv2' in sys.modules)"
    )
    out = _run_offscreen(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["False", "False"]


def _pretend_missing(*names):
    real = dependencies._default_find_spec

    def find_spec(module):
        return None if module in names else real(module)

    return find_spec


def test_missing_packages_message_names_them_and_keeps_numpy(monkeypatch):
    monkeypatch.setattr(dependencies, "_default_find_spec", _pretend_missing("torch", "cv2"))
    missing = dependencies.missing_packages()
    assert missing == [("torch", "torch"), ("cv2", "opencv-python-headless")]
    message = dependencies.missing_message(missing)
    assert "torch, opencv-python-headless" in message
    command = dependencies.install_command(missing)
    assert command[1:4] == ["-m", "pip", "install"]
    assert "torch" in command and "opencv-python-headless" in command
    assert command[-1] == "numpy<2"  # numpy 1.x is installed: never upgrade it to 2
    assert "'numpy<2'" in message  # quoted for the shell
    with pytest.raises(dependencies.DependencyError, match="torch"):
        dependencies.require()


def test_nothing_missing_here():
    assert dependencies.missing_packages() == []
    assert dependencies.missing_message([]) == ""
    dependencies.require()


def test_plugin_loads_and_warns_when_torch_is_missing(iface, monkeypatch):
    monkeypatch.setattr(dependencies, "_default_find_spec", _pretend_missing("torch"))
    plugin = class_factory()(iface)
    plugin.initGui()
    try:
        assert QgsApplication.processingRegistry().algorithmById("loc2:localizeimages") is not None
        assert iface.messages and "torch" in iface.messages[-1][1]
    finally:
        plugin.unload()


def test_metadata_is_complete():
    meta = configparser.ConfigParser()
    meta.read(ROOT / "metadata.txt", encoding="utf-8")
    general = meta["general"]
    required = (
        "name", "qgisMinimumVersion", "description", "about", "version", "author", "email", "repository",
        "tracker", "homepage", "tags", "icon", "category", "changelog", "hasProcessingProvider", "supportsQt6",
    )  # fmt: skip
    for key in required:
        assert general.get(key, "").strip(), key
    assert general["name"] == "Loc2" and general["qgisMinimumVersion"] == "3.22"
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'version = "{general["version"]}"' in pyproject and general["category"] == "Raster"
    assert general["changelog"].split()[0] == general["version"]  # the changelog starts with this version
    assert general["hasProcessingProvider"] == "yes" and general["supportsQt6"] == "True"
    assert (ROOT / general["icon"]).is_file()
    text = (ROOT / "metadata.txt").read_text(encoding="utf-8")
    assert "<" not in text.replace("numpy<2", "") and "href" not in text  # no HTML


def test_pyproj_work_in_successive_qgs_tasks_does_not_crash():
    """pyproj ≥ 3.7 frees a pooled thread's PROJ context with each task's Python thread state; without
    ``finish_worker_job`` the second task on the same thread crashes (run in a subprocess: a crash is a
    non-zero exit, not a dead test session)."""
    code = (
        "import sys; sys.path.insert(0, 'tests');"
        "from qgis_helpers import qgis_app, process_events_until; qgis_app();"
        "import pyproj; from qgis.core import QgsApplication, QgsTask;"
        "from loc2.ui.threads import finish_worker_job;\n"
        "def work(task=None):\n"
        "    try:\n"
        "        for _ in range(3):\n"
        "            pyproj.Transformer.from_crs('EPSG:32632', 'EPSG:4326', always_xy=True).transform(1, 2)\n"
        "    finally:\n"
        "        finish_worker_job()\n"
        "    return True\n"
        "for i in range(8):\n"
        "    done = []\n"
        "    task = QgsTask.fromFunction('t', work, on_finished=lambda e, r: done.append((e, r)))\n"
        "    QgsApplication.taskManager().addTask(task)\n"
        "    assert process_events_until(lambda: done, 60) and done[0] == (None, True), done\n"
        "print('ok')\n"
    )
    out = _run_offscreen(code)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]
