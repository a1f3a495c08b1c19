"""Which Python packages Loc2 needs that QGIS's Python lacks, and how to install them.

Only :func:`importlib.util.find_spec` is used: nothing is imported, so this runs at plugin load time even
where torch is missing. The install command targets QGIS's own Python and pins numpy to the major version
QGIS already uses (``numpy<2`` when numpy 1 or none is installed): QGIS's GDAL bindings are built against it.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

from ..core.errors import Loc2Error

# (module imported by Loc2, pip distribution that provides it), in install order.
REQUIRED: tuple[tuple[str, str], ...] = (
    ("numpy", "numpy"),
    ("torch", "torch"),
    ("cv2", "opencv-python-headless"),
    ("rasterio", "rasterio"),
    ("affine", "affine"),
    ("shapely", "shapely"),
    ("pyproj", "pyproj"),
    ("pandas", "pandas"),
    ("geopandas", "geopandas"),
    ("pyogrio", "pyogrio"),
    ("PIL", "Pillow"),
)
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

FindSpec = Callable[[str], object]


def _default_find_spec(module: str) -> object:
    """``importlib.util.find_spec`` (a module-level hook so tests can pretend a package is missing)."""
    return importlib.util.find_spec(module)


class DependencyError(Loc2Error):
    """Packages Loc2 needs are not installed in QGIS's Python."""


def _find(module: str, find_spec: FindSpec) -> bool:
    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):  # a broken or half-installed package
        return False


def missing_packages(find_spec: FindSpec | None = None) -> list[tuple[str, str]]:
    """The ``(module, pip distribution)`` pairs of :data:`REQUIRED` that cannot be imported."""
    find_spec = find_spec or _default_find_spec
    return [(module, dist) for module, dist in REQUIRED if not _find(module, find_spec)]


def numpy_constraint(find_spec: FindSpec | None = None) -> str:
    """A pip requirement that keeps numpy's installed major version (``numpy<2`` if numpy is absent)."""
    find_spec = find_spec or _default_find_spec
    if _find("numpy", find_spec):
        try:
            from importlib.metadata import version

            major = int(version("numpy").split(".")[0])
        except (ImportError, ValueError, LookupError):
            major = 1
        if major >= 2:
            return f"numpy>={major},<{major + 1}"
    return "numpy<2"


def qgis_python() -> str:
    """The Python interpreter QGIS runs (``sys.executable`` is the QGIS binary inside QGIS)."""
    exe = Path(sys.executable)
    if exe.name.lower().startswith("python"):
        return str(exe)
    prefix = Path(sys.exec_prefix)
    candidates = (
        [prefix / "python.exe", prefix / "python3.exe"]
        if os.name == "nt"
        else [
            prefix / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}",
            prefix / "bin" / "python3",
        ]
    )
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    return "python3"


def install_command(missing: list[tuple[str, str]], find_spec: FindSpec | None = None) -> list[str]:
    """The pip command (argument list) that installs ``missing`` into QGIS's Python, numpy pinned."""
    dists = [dist for _, dist in missing if dist != "numpy"]
    return [qgis_python(), "-m", "pip", "install", "--user", *dists, numpy_constraint(find_spec)]


def format_command(args: list[str]) -> str:
    """A command line to paste into a terminal (quoted for the platform's shell)."""
    if os.name == "nt":
        return " ".join(f'"{a}"' if any(c in a for c in ' <>|&^"') else a for a in args)
    return " ".join(shlex.quote(a) for a in args)


def missing_message(missing: list[tuple[str, str]], find_spec: FindSpec | None = None) -> str:
    """What is missing and the exact command that installs it; empty when nothing is missing."""
    if not missing:
        return ""
    names = ", ".join(dist for _, dist in missing)
    lines = [
        f"Loc2 needs Python packages that QGIS's Python does not have: {names}.",
        "Install them into QGIS's Python (then restart QGIS):",
        "    " + format_command(install_command(missing, find_spec)),
    ]
    if any(module == "torch" for module, _ in missing):
        lines.append(
            "Without an NVIDIA GPU the CPU build of PyTorch is smaller: add "
            f"--index-url {TORCH_CPU_INDEX} --extra-index-url https://pypi.org/simple"
        )
    lines.append(
        "On Windows run it from the OSGeo4W Shell; the numpy requirement keeps the numpy version QGIS was built with."
    )
    return "\n".join(lines)


def require(find_spec: FindSpec | None = None) -> None:
    """Raise :class:`DependencyError` with :func:`missing_message` when a required package is missing."""
    missing = missing_packages(find_spec)
    if missing:
        raise DependencyError(missing_message(missing, find_spec))
