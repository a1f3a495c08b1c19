"""Small widgets the dialog is built from: the message panel and a row of widgets."""

from __future__ import annotations

from typing import Any

from qgis.core import Qgis
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtWidgets import QFrame, QHBoxLayout, QLabel, QScrollArea, QSizePolicy, QWidget

MESSAGE_LINES = 5  # the message panel's height, in lines of text; longer messages scroll
LEVEL_COLOURS = {
    Qgis.MessageLevel.Info: "#e8f0fe",
    Qgis.MessageLevel.Success: "#e3f4e1",
    Qgis.MessageLevel.Warning: "#fff4ce",
    Qgis.MessageLevel.Critical: "#fde2e1",
}


def widget_row(*widgets: QWidget) -> QWidget:
    """The widgets side by side, the first one taking the spare width."""
    row = QWidget()
    box = QHBoxLayout(row)
    box.setContentsMargins(0, 0, 0, 0)
    for i, widget in enumerate(widgets):
        box.addWidget(widget, 1 if i == 0 else 0)
    return row


class MessagePanel(QScrollArea):
    """A fixed-height, word-wrapped, selectable message area: long messages scroll instead of being cut,
    and showing or clearing one never moves the widgets around it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("", self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.label.setContentsMargins(6, 4, 6, 4)
        self.setWidget(self.label)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        height = self.fontMetrics().lineSpacing() * MESSAGE_LINES + 12
        self.setFixedHeight(height)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.level: Any = None

    @property
    def text(self) -> str:
        return self.label.text()

    def show_message(self, text: str, level: Any) -> None:
        self.level = level
        self.label.setText(text)
        colour = LEVEL_COLOURS.get(level, "#ffffff")
        self.label.setStyleSheet(f"QLabel {{ background-color: {colour}; color: #202020; }}")

    def clear_message(self) -> None:
        self.level = None
        self.label.setText("")
        self.label.setStyleSheet("")
