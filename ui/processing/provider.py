"""The Processing provider "Loc2" (id ``loc2``) holding ``loc2:localizeimages``."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from ..icon import plugin_icon
from .algorithm import LocalizeImagesAlgorithm


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
