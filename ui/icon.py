"""The plugin's icon, for the toolbar, the dialog and the Processing provider."""

from __future__ import annotations

from pathlib import Path

from qgis.PyQt.QtGui import QIcon

ICON_PATH = Path(__file__).resolve().parent.parent / "resources" / "icon.png"


def plugin_icon() -> QIcon:
    """The Loc2 icon (an empty icon if the file is missing)."""
    return QIcon(str(ICON_PATH)) if ICON_PATH.is_file() else QIcon()
