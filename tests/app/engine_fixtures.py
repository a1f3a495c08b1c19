"""The engine side of the real-QGIS tests: its interpreter, a generated city with the CLI's own poses, and
readers for the outputs (standard library only, so the tests run under any QGIS's Python).

``LOC2_ENGINE_PYTHON`` names the engine interpreter; without it, the interpreter running the tests is used
when it has torch (the repository's ``.venv``). The city is made by the engine's own command line run from
the repository folder (``python -I core/__main__.py demo``), which also localizes it: those are the poses the plugin must
reproduce.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import subprocess  # nosec B404 - fixed commands with argument lists
import sys
from dataclasses import dataclass
from pathlib import Path

from harness import REPO_ROOT

ENGINE_MAIN = REPO_ROOT / "core" / "__main__.py"


class EngineMissing(RuntimeError):
    pass


def engine_python() -> str:
    """The engine interpreter for the tests (see the module docstring)."""
    value = os.environ.get("LOC2_ENGINE_PYTHON", "").strip()
    if value:
        return value
    if importlib.util.find_spec("torch") is not None:
        return sys.executable
    raise EngineMissing(
        "set LOC2_ENGINE_PYTHON to a Python with the engine's packages (torch, rasterio, …): the interpreter "
        f"running the tests ({sys.executable}) has no torch"
    )


def run_engine(
    args: list[str], threads: int | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """``python -I core/__main__.py <args>`` (``loc2 <args>``) with the engine interpreter (and ``threads``
    torch threads when given)."""
    env = dict(os.environ)
    for key in ("PYTHONPATH", "PYTHONHOME"):
        env.pop(key, None)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
        env["MKL_NUM_THREADS"] = str(threads)
    return subprocess.run(  # nosec B603 - argument list
        [engine_python(), "-I", str(ENGINE_MAIN), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=REPO_ROOT,
    )


@dataclass
class DemoCity:
    root: Path  # the demo's output folder
    ortho: Path
    photos: Path
    results: Path  # the CLI's GeoPackage


def make_demo_city(folder: Path, threads: int = 1) -> DemoCity:
    """``loc2 demo`` (6 panoramas, 2 pinhole photos, the demo model) at ``threads`` threads."""
    done = run_engine(["demo", "--out", str(folder), "--device", "cpu"], threads=threads)
    if done.returncode != 0:
        raise RuntimeError(f"loc2 demo failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return DemoCity(
        folder, folder / "city" / "ortho.tif", folder / "city" / "photos", folder / "results.gpkg"
    )


def gpkg_rows(path: Path, layer: str, columns: str = "*") -> list[dict]:
    """The rows of a GeoPackage layer (sqlite3; geometry left out unless named)."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(f'SELECT {columns} FROM "{layer}"')]  # nosec B608 - test names


def poses_by_photo(path: Path, layer: str = "poses") -> dict[str, dict]:
    """photo file name → its poses row (x, y, heading, status, inliers …); a Processing output's layer is
    named after its file."""
    rows = gpkg_rows(path, layer, "photo, status, x, y, heading, inliers, inl_ratio, message")
    return {Path(r["photo"]).name: r for r in rows}
