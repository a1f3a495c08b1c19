"""Choices the QGIS side offers and the values it remembers between sessions (QgsSettings ``loc2/…``).

Standard library and QGIS only: nothing here loads the engine.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsApplication, QgsSettings

from ..core.types import MODEL_DEMO, MODEL_KITTI, MODEL_VIGOR, MODELS, PRECISIONS

SETTINGS_PREFIX = "loc2"
MODEL_CHECKPOINT = "checkpoint"  # a Loc2 checkpoint file chosen by the user
MODEL_CHOICES = (*MODELS, MODEL_CHECKPOINT)
MODEL_LABELS = {
    MODEL_DEMO: "Demo model (synthetic cities, shipped)",
    MODEL_VIGOR: "VIGOR — panoramas (published weights)",
    MODEL_KITTI: "KITTI — pinhole photos (published weights)",
    MODEL_CHECKPOINT: "Loc2 checkpoint file",
}
DEVICE_CHOICES = ("auto", "cuda", "cpu")
DEVICE_LABELS = ("Auto (CUDA GPU if available)", "CUDA GPU", "CPU")
PRECISION_CHOICES = PRECISIONS  # the backbone's arithmetic (JobOptions.precision)
PRECISION_LABELS = (  # short enough for the dialog's combo; PRECISION_HELP says the rest
    "Auto (float32 CPU, float16 GPU)",
    "float32 (exact)",
    "bfloat16 (3× faster on AMX CPUs)",
)
PRECISION_HELP = (
    "The backbone's arithmetic. float32 gives the same poses on the CPU at any thread count. bfloat16 runs "
    "about three times faster on CPUs with AMX (recent Intel Xeon) and on GPUs; its poses then depend on the "
    "machine and the thread count. A CPU without bf16 instructions refuses it."
)
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
