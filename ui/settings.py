"""Choices the QGIS side offers and the values it remembers between sessions (QgsSettings ``loc2/…``).

Standard library and QGIS only: nothing here loads the engine.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication, QgsSettings

from ..core.types import MODEL_DEMO

SETTINGS_PREFIX = "loc2"
MODEL_CHOICES = (MODEL_DEMO, "vigor", "kitti", "checkpoint")
MODEL_LABELS = {
    MODEL_DEMO: "Demo model (synthetic cities, shipped)",
    "vigor": "VIGOR — panoramas (published weights)",
    "kitti": "KITTI — pinhole photos (published weights)",
    "checkpoint": "Loc2 checkpoint file",
}
DEVICE_CHOICES = ("auto", "cuda", "cpu")
DEVICE_LABELS = ("Auto (CUDA GPU if available)", "CUDA GPU", "CPU")
DEMO_CHECKPOINT = Path(__file__).resolve().parent.parent / "resources" / "models" / "loc2_demo.pt"
RESULTS_FOLDER = "loc2-results"  # default, in the QGIS profile folder


def settings_value(key: str, default: str = "") -> str:
    """A remembered value (weight paths, last choices) under ``loc2/<key>`` in QgsSettings."""
    value = QgsSettings().value(f"{SETTINGS_PREFIX}/{key}", default)
    return "" if value is None else str(value)


def set_settings_value(key: str, value: str) -> None:
    QgsSettings().setValue(f"{SETTINGS_PREFIX}/{key}", value)


def default_results_folder() -> Path:
    """Where the dialog's runs write their GeoPackages unless the user chose another folder."""
    return Path(QgsApplication.qgisSettingsDirPath()) / RESULTS_FOLDER
