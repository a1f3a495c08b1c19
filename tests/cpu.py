"""What this machine's CPU offers, for tests that expect different outcomes by it. Standard library only:
the real-QGIS tests import it in a Python that has neither torch nor rasterio (``tests/app``)."""

from __future__ import annotations

from pathlib import Path


def cpu_has_bf16_instructions() -> bool:
    """Whether this CPU has AMX or AVX512-BF16 (Linux: /proc/cpuinfo's flags), as the engine judges the
    ``bfloat16`` precision (``model/runtime.cpu_has_native_bf16``), without importing torch."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "amx_tile" in flags or "avx512_bf16" in flags
