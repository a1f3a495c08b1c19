"""Shared helpers for the plugin tests: one real QGIS application per pytest session and a stub iface.

``qgis_app()`` starts QGIS once (offscreen, GUI enabled so dialogs can be built, QgsSettings in a
throw-away folder so the user's are never touched) and initialises Processing; calling it again returns
the same application. Only ``iface`` is faked, since no QGIS desktop runs in tests.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PROFILE = tempfile.mkdtemp(prefix="loc2_qgis_profile_")
atexit.register(shutil.rmtree, _PROFILE, True)  # registered first, so it runs after QGIS has exited
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("XDG_RUNTIME_DIR", _PROFILE)
os.environ["XDG_CONFIG_HOME"] = _PROFILE  # QgsSettings (QSettings) write here, never to the user's config
# QGIS's own temporary folders (one per start, Processing's outputs) go there too, so none outlives the run;
# Python's tempfile has already fixed its folder above, so pytest's tmp_path is unaffected
os.environ["TMPDIR"] = _PROFILE
# The plugin's engine: this interpreter (the project's .venv has the engine's packages) unless one is named.
os.environ.setdefault("LOC2_ENGINE_PYTHON", sys.executable)
PROCESSING_PLUGINS = "/usr/share/qgis/python/plugins"
if os.path.isdir(PROCESSING_PLUGINS) and PROCESSING_PLUGINS not in sys.path:
    sys.path.append(PROCESSING_PLUGINS)

from qgis.core import QgsApplication, QgsCoordinateReferenceSystem, QgsProject  # noqa: E402
from qgis.gui import QgsMapCanvas, QgsMessageBar  # noqa: E402
from qgis.PyQt.QtWidgets import QMainWindow  # noqa: E402

_APP: QgsApplication | None = None


def qgis_app() -> QgsApplication:
    """The session's QgsApplication (started on the first call), Processing ready.

    Started through ``qgis.testing.start_app`` so that every test module of the session, ours or not, shares
    one application (a second QgsApplication breaks Processing and crashes at exit).
    """
    global _APP
    if _APP is None:
        from qgis.testing import start_app

        QgsApplication.setOrganizationName("Loc2Tests")
        QgsApplication.setApplicationName("Loc2Tests")
        _APP = start_app()
        from processing.core.Processing import Processing

        Processing.initialize()
    return _APP


def class_factory():
    """``classFactory`` of the plugin's ``__init__.py``, loaded from the file as QGIS loads a plugin.

    (In the editable install ``import loc2`` gives a namespace package, so the file is run here directly,
    as a sub-module of ``loc2`` so that its relative import of ``loc2_plugin`` resolves.)
    """
    spec = importlib.util.spec_from_file_location(
        "loc2._plugin_entry", ROOT / "__init__.py", submodule_search_locations=None
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.classFactory


def process_events_until(done: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    """Run the Qt event loop until ``done()`` is true or ``timeout_s`` passes; returns ``done()``."""
    app = qgis_app()
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    app.processEvents()
    return done()


def clear_project() -> None:
    """Remove every layer and group from the project."""
    project = QgsProject.instance()
    project.removeAllMapLayers()
    project.layerTreeRoot().removeAllChildren()


class StubIface:
    """The part of QgisInterface the plugin uses: toolbar, raster menu, main window, message bar, canvas."""

    def __init__(self) -> None:
        qgis_app()
        self.window = QMainWindow()
        self.canvas = QgsMapCanvas(self.window)
        self.canvas.setDestinationCrs(QgsCoordinateReferenceSystem("EPSG:3857"))  # a web-map project
        self.bar = QgsMessageBar(self.window)
        self.toolbar_actions: list = []
        self.raster_menu: list[tuple[str, object]] = []

    @property
    def messages(self) -> list[tuple[str, str]]:
        """(title, text) of the messages in the message bar."""
        return [(item.title(), item.text()) for item in self.bar.items()]

    def mainWindow(self):  # noqa: N802 - QgisInterface API
        return self.window

    def messageBar(self):  # noqa: N802
        return self.bar

    def mapCanvas(self):  # noqa: N802
        return self.canvas

    def addToolBarIcon(self, action) -> None:  # noqa: N802
        self.toolbar_actions.append(action)

    def removeToolBarIcon(self, action) -> None:  # noqa: N802
        self.toolbar_actions.remove(action)

    def addPluginToRasterMenu(self, menu: str, action) -> None:  # noqa: N802
        self.raster_menu.append((menu, action))

    def removePluginRasterMenu(self, menu: str, action) -> None:  # noqa: N802
        self.raster_menu.remove((menu, action))


@contextlib.contextmanager
def loc2_processing_provider():
    """The plugin's Processing provider registered for the block (unless it already is), removed after."""
    from loc2.ui.processing.provider import Loc2Provider

    registry = QgsApplication.processingRegistry()
    own = None
    if registry.providerById("loc2") is None:
        own = Loc2Provider()
        registry.addProvider(own)
    try:
        yield
    finally:
        if own is not None:
            registry.removeProvider(own)
