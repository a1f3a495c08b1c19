"""The plugin against a real QGIS: loading through classFactory, GUI entries, provider, no engine library in
QGIS's process, metadata and Qt 6 readiness."""

from __future__ import annotations

import ast
import configparser
import os
import subprocess
import sys

import pytest
from qgis.core import QgsApplication, QgsProcessingAlgorithm
from qgis_helpers import ROOT, StubIface, class_factory, qgis_app

qgis_app()


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
    from loc2.ui.processing.algorithm import LocalizeImagesAlgorithm

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


ENGINE_LIBRARIES = ("torch", "numpy", "cv2", "rasterio", "shapely", "pyproj", "geopandas", "pyogrio", "PIL")


def test_plugin_work_loads_no_engine_library_into_qgis():
    """Loading the plugin, opening the dialog, running a photo through the worker and reading its layers
    must not load torch, GDAL's Python bindings' rivals or numpy into QGIS's process: the engine runs in its
    own process."""
    code = (
        "import sys; sys.path.insert(0, 'tests');"
        "from qgis_helpers import StubIface, class_factory, qgis_app; qgis_app();"
        "before = {m for m in " + repr(ENGINE_LIBRARIES) + " if m in sys.modules};"
        "p = class_factory()(StubIface()); p.initGui(); p.show_dialog();"
        "from loc2.ui.engine.client import shared_worker; from loc2.ui.engine.environment import find_engine;"
        "out = shared_worker().run_job(find_engine(), 'describe', {'device': 'cpu'});"
        "assert out.ok, out.message;"
        "p.unload();"
        "print(sorted({m for m in " + repr(ENGINE_LIBRARIES) + " if m in sys.modules} - before))"
    )
    out = _run_offscreen(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_qgis_side_never_imports_an_engine_library():
    """Every import in loc2_plugin.py and ui/ is QGIS, Qt through qgis.PyQt, the standard library or the
    engine's torch-free boundary modules (core.types, core.errors, core.solver.config, core.worker.protocol);
    the packages on the way there (core, core.solver, core.worker) import nothing."""
    allowed_core = {"types", "errors", "solver.config", "worker.protocol"}
    sources = [ROOT / "loc2_plugin.py", ROOT / "__init__.py", *sorted((ROOT / "ui").rglob("*.py"))]
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = ("." * node.level) + (node.module or "")
                # `from ..core.worker import protocol` imports the module core.worker.protocol
                names = [f"{module}.{a.name}" if module.lstrip(".") in ("core", "core.solver", "core.worker")
                         else module for a in node.names]  # fmt: skip
            else:
                continue
            for name in names:
                top = name.lstrip(".").split(".")[0]
                if name.startswith("."):
                    module = name.lstrip(".")
                    if module.startswith("core"):
                        assert module[len("core.") :] in allowed_core, (path, name)
                    continue
                assert top in sys.stdlib_module_names or top == "qgis", (path, name)
                assert not name.startswith(("PyQt5", "PyQt6")), (path, name)
    for package in ("core", "core/solver", "core/worker"):  # what the QGIS side loads on the way
        tree = ast.parse((ROOT / package / "__init__.py").read_text(encoding="utf-8"))
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)], package


def test_plugin_loads_and_says_so_without_an_engine(iface, monkeypatch, tmp_path):
    monkeypatch.setenv("LOC2_ENGINE_PYTHON", "")
    plugin = class_factory()(iface)
    plugin.initGui()
    try:
        assert QgsApplication.processingRegistry().algorithmById("loc2:localizeimages") is not None
        assert iface.messages and "Install engine" in iface.messages[-1][1]
    finally:
        plugin.unload()


def test_metadata_is_complete():
    meta = configparser.ConfigParser()
    meta.read(ROOT / "metadata.txt", encoding="utf-8")
    general = meta["general"]
    required = (
        "name", "qgisMinimumVersion", "qgisMaximumVersion", "description", "about", "version", "author",
        "email", "repository", "tracker", "homepage", "tags", "icon", "category", "changelog",
        "hasProcessingProvider",
    )  # fmt: skip
    for key in required:
        assert general.get(key, "").strip(), key
    assert general["name"] == "Loc2" and general["qgisMinimumVersion"] == "3.22"
    assert general["qgisMaximumVersion"] == "4.99"  # ready for QGIS 4 (QGIS no longer reads supportsQt6)
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'version = "{general["version"]}"' in pyproject and general["category"] == "Raster"
    assert general["changelog"].split()[0] == general["version"]  # the changelog starts with this version
    assert general["hasProcessingProvider"] == "yes"
    assert (ROOT / general["icon"]).is_file() and (ROOT / "LICENSE").is_file()
    for key in ("repository", "tracker", "homepage"):
        assert general[key].startswith("https://"), key
    text = (ROOT / "metadata.txt").read_text(encoding="utf-8")
    assert "<" not in text.replace("numpy<2", "") and "href" not in text  # no HTML


def test_no_qt5_only_idioms_in_the_qgis_side():
    """Ready for Qt 6: no exec_(), and QgsField made only by ui.layers.make_field (QMetaType types from
    QGIS 3.38, the deprecated QVariant ones only before)."""
    for path in [ROOT / "loc2_plugin.py", *sorted((ROOT / "ui").rglob("*.py"))]:
        text = path.read_text(encoding="utf-8")
        assert ".exec_(" not in text, path
        if path.name != "layers.py":
            assert "QVariant" not in text and "QgsField(" not in text, path
