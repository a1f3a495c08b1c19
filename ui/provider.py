"""The Processing provider "Loc2" (id ``loc2``) holding ``loc2:localizeimages``."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from .algorithm import LocalizeImagesAlgorithm

ICON_PATH = Path(__file__).resolve().parent.parent / "resources" / "icon.png"


def plugin_icon() -> QIcon:
    """The Loc2 icon (an empty icon if the file is missing)."""
    return QIcon(str(ICON_PATH)) if ICON_PATH.is_file() else QIcon()


class Loc2Provider(QgsProcessingProvider):
    """Registers the Loc2 algorithms with Processing."""

    def id(self) -> str:
        return "loc2"

    def name(self) -> str:
        return "Loc2"

    def longName(self) -> str:  # noqa: N802 - QGIS API
        return "Loc2 cross-view localization"

    def icon(self) -> QIcon:
        return plugin_icon()

    def loadAlgorithms(self) -> None:  # noqa: N802 - QGIS API
        self.addAlgorithm(LocalizeImagesAlgorithm())
