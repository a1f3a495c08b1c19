"""One loaded Localizer kept between jobs (the published model takes seconds to load), and QgsSettings.

Loading happens on whichever thread runs the job (a QgsTask or a Processing worker); a lock keeps two jobs
from loading at once. Nothing imports torch until a model is actually loaded.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any

from qgis.core import QgsSettings

SETTINGS_PREFIX = "loc2"
MODEL_CHOICES = ("demo", "vigor", "kitti", "checkpoint")
MODEL_LABELS = {
    "demo": "Demo model (synthetic cities, shipped)",
    "vigor": "VIGOR — panoramas (published weights)",
    "kitti": "KITTI — pinhole photos (published weights)",
    "checkpoint": "Loc2 checkpoint file",
}
DEVICE_CHOICES = ("auto", "cuda", "cpu")
# The same file as core.localizer.DEMO_CHECKPOINT, named here so that checking it needs no torch import.
DEMO_CHECKPOINT = Path(__file__).resolve().parent.parent / "resources" / "models" / "loc2_demo.pt"

_lock = threading.Lock()
_cached: tuple[tuple, Any] | None = None


def _stamp(path: Any) -> tuple:
    p = Path(str(path))
    try:
        stat = p.stat()
    except OSError:
        return (str(p), None)
    return (str(p.resolve()), stat.st_mtime_ns, stat.st_size)


def options_key(options: Any) -> tuple:
    """What identifies the model a ``JobOptions`` asks for (files by path, size and modification time)."""
    weights = tuple(_stamp(w) for w in options.weights) if options.weights else None
    model = options.model if options.model in ("demo", "vigor", "kitti") else _stamp(options.model)
    return (model, weights, options.device)


def cpu_threads() -> int:
    """Threads for PyTorch on the CPU: ``LOC2_CPU_THREADS`` if set, else all cores but one.

    One core is left to QGIS (map rendering, the user interface): PyTorch's OpenMP threads spin while they
    wait for each other, and when every core is also busy with something else a job slows down tenfold.
    """
    value = os.environ.get("LOC2_CPU_THREADS", "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, (os.cpu_count() or 2) - 1)


def cached_localizer(options: Any) -> Any:
    """The Localizer for ``options`` (``core.pipeline.JobOptions``), reused while the key is unchanged."""
    global _cached
    from ..core.pipeline import load_localizer

    key = options_key(options)
    with _lock:
        if _cached is None or _cached[0] != key:
            _cached = None  # free the previous model before loading the next
            _cached = (key, load_localizer(options))
        localizer = _cached[1]
    if localizer.device.type == "cpu":
        import torch

        torch.set_num_threads(cpu_threads())
    return localizer


def clear_cache() -> None:
    """Forget the cached model and free GPU memory (plugin unload)."""
    global _cached
    with _lock:
        _cached = None
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def settings_value(key: str, default: str = "") -> str:
    """A remembered value (weight paths, last choices) under ``loc2/<key>`` in QgsSettings."""
    value = QgsSettings().value(f"{SETTINGS_PREFIX}/{key}", default)
    return "" if value is None else str(value)


def set_settings_value(key: str, value: str) -> None:
    QgsSettings().setValue(f"{SETTINGS_PREFIX}/{key}", value)
