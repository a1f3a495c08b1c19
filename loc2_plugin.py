"""The QGIS plugin object: toolbar button and menu entry for the dialog, and the Processing provider.

The plugin imports only QGIS, Qt (through ``qgis.PyQt``) and the standard library: the engine runs in its
own process and Python environment (``ui/engine``), so the plugin loads, and says what to do, whether or
not the engine is installed.
"""

from __future__ import annotations

from qgis.core import Qgis, QgsApplication
from qgis.PyQt.QtWidgets import QAction

from .ui.engine.client import shutdown_shared_worker
from .ui.engine.environment import find_engine
from .ui.icon import plugin_icon
from .ui.processing.provider import Loc2Provider

MENU = "Loc2"


class Loc2Plugin:
    """Created by ``classFactory(iface)``; QGIS calls ``initGui`` and ``unload``."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.provider: Loc2Provider | None = None
        self.action: QAction | None = None
        self.dialog = None

    def initProcessing(self) -> None:  # noqa: N802 - QGIS API
        """Register the "Loc2" Processing provider (also called by QGIS without a GUI)."""
        if self.provider is None:
            self.provider = Loc2Provider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 - QGIS API
        self.initProcessing()
        self.action = QAction(plugin_icon(), "Localize a photo (Loc2)…", self.iface.mainWindow())
        self.action.setObjectName("loc2LocalizePhoto")
        self.action.setToolTip("Loc2: correct a street-level photo's position and heading on an orthophoto")
        self.action.triggered.connect(self.show_dialog)
        self.iface.addToolBarIcon(self.action)
        self.iface.addPluginToRasterMenu(MENU, self.action)
        if find_engine() is None:
            self.iface.messageBar().pushMessage(
                "Loc2",
                "The Loc2 engine is not installed yet: open the Loc2 dialog and click Engine → Install engine.",
                Qgis.MessageLevel.Info,
                15,
            )

    def show_dialog(self) -> None:
        """Open (or raise) the single-photo dialog."""
        from .ui.dialog import Loc2Dialog

        if self.dialog is None:
            self.dialog = Loc2Dialog(self.iface, parent=self.iface.mainWindow())
        self.dialog.show()
        self.dialog.raise_()
        self.dialog.activateWindow()

    def unload(self) -> None:
        if self.dialog is not None:
            self.dialog.shutdown()
            self.dialog.deleteLater()
            self.dialog = None
        if self.action is not None:
            self.iface.removePluginRasterMenu(MENU, self.action)
            self.iface.removeToolBarIcon(self.action)
            self.action.deleteLater()
            self.action = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        shutdown_shared_worker()
