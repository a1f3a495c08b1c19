"""Which Python runs the Loc2 engine, and the environment it runs with.

The engine (torch, rasterio, pyproj, shapely, geopandas, OpenCV) never loads inside QGIS: several copies of
GDAL, GEOS, PROJ or OpenMP in one process crash QGIS. It runs in its own Python, in this order:

1. the interpreter named by the environment variable ``LOC2_ENGINE_PYTHON`` (scripts, CI);
2. the interpreter chosen in the plugin's settings (``loc2/engine/python``: a conda env, a project venv);
3. the plugin's own managed environment in the QGIS profile folder, made by "Install engine"
   (``ui/engine/installer.py``).

Standard library and QGIS only.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from qgis.core import QgsApplication, QgsSettings

ENV_VARIABLE = "LOC2_ENGINE_PYTHON"
SETTINGS_KEY = "loc2/engine/python"
MANAGED_FOLDER = "loc2-engine"  # in the QGIS profile folder
PLUGIN_DIR = Path(__file__).resolve().parents[2]
ENGINE_MAIN = PLUGIN_DIR / "core" / "__main__.py"  # ``loc2 COMMAND`` from the plugin folder

SOURCE_ENVIRONMENT = "environment variable LOC2_ENGINE_PYTHON"
SOURCE_SETTINGS = "the Loc2 settings"
SOURCE_MANAGED = "the managed engine environment"

# QGIS's own Python and library settings: the engine's Python must not see them (its packages bring their
# own GDAL, PROJ and data; QGIS's PROJ data with pyproj's PROJ gives "no database" errors).
_DROPPED_VARIABLES = (
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONEXECUTABLE",
    "GDAL_DATA",
    "GDAL_DRIVER_PATH",
    "PROJ_LIB",
    "PROJ_DATA",
    "GEOTIFF_CSV",
    "QGIS_PREFIX_PATH",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
)


@dataclass(frozen=True)
class EngineLocation:
    """An engine interpreter and where the choice came from (``SOURCE_*``)."""

    python: Path
    source: str

    def problem(self) -> str:
        """What is wrong with the interpreter's path, for people ('' when it is an executable file)."""
        if not self.python.exists():
            return f"{self.python} (from {self.source}) does not exist"
        if not self.python.is_file() or not os.access(self.python, os.X_OK):
            return f"{self.python} (from {self.source}) is not an executable Python interpreter"
        return ""


def managed_dir() -> Path:
    """The managed engine environment's folder (a venv) in the active QGIS profile."""
    return Path(QgsApplication.qgisSettingsDirPath()) / MANAGED_FOLDER


def venv_python(venv: Path) -> Path:
    """The interpreter of a virtual environment on this platform."""
    if sys.platform == "win32":
        return venv / "Scripts" / "python.exe"
    return venv / "bin" / "python"


def configured_python() -> str:
    """The interpreter chosen in the settings ('' when none)."""
    value = QgsSettings().value(SETTINGS_KEY, "")
    return "" if value is None else str(value).strip()


def set_configured_python(path: str) -> None:
    QgsSettings().setValue(SETTINGS_KEY, path.strip())


def find_engine() -> EngineLocation | None:
    """The engine interpreter to use (see the module docstring), or None when there is none yet."""
    value = os.environ.get(ENV_VARIABLE, "").strip()
    if value:
        return EngineLocation(Path(value), SOURCE_ENVIRONMENT)
    value = configured_python()
    if value:
        return EngineLocation(Path(value), SOURCE_SETTINGS)
    managed = venv_python(managed_dir())
    if managed.exists():
        return EngineLocation(managed, SOURCE_MANAGED)
    return None


def engine_environment() -> dict[str, str]:
    """The environment the engine runs with: QGIS's, less its Python and GDAL/PROJ settings, with the
    user's own site-packages off and unbuffered UTF-8 output."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_VARIABLES}
    env["PYTHONNOUSERSITE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def engine_command(python: Path | str, *arguments: str) -> list[str]:
    """The argument list that runs a ``loc2`` command with the plugin folder's own engine code.

    ``-I`` (isolated mode) keeps the script's folder off ``sys.path`` (``core/types.py`` would shadow the
    standard library's ``types``) and ignores ``PYTHON*`` variables and the user's site-packages."""
    return [str(python), "-I", str(ENGINE_MAIN), *arguments]


def worker_command(python: Path, idle_timeout_s: float) -> list[str]:
    """The argument list that starts the worker."""
    return engine_command(python, "worker", "--idle-timeout", f"{idle_timeout_s:g}")


NO_ENGINE_MESSAGE = (
    "The Loc2 engine is not installed. Click 'Install engine' in the Loc2 dialog (it makes a Python "
    "environment with PyTorch in your QGIS profile), or choose an existing Python that has the engine's "
    "packages in the dialog's engine settings, or set the environment variable LOC2_ENGINE_PYTHON."
)
