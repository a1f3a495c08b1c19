""" "Install engine": the plugin's own engine environment in the QGIS profile folder.

A virtual environment WITHOUT system site packages (nothing in it touches QGIS's numpy, GDAL or PROJ) is
made from a Python ≥ 3.10 (:func:`find_base_python`: the one the user names, else one on the PATH, else
QGIS's own), then PyTorch (the CPU build, or the CUDA build where an NVIDIA GPU is present or the user asks
for it) and the engine's packages (``core/requirements.txt``) are installed into it with pip, and the
result is checked by starting the engine once (``loc2 worker --check``).

Platforms: Debian/Ubuntu system QGIS (``/usr/bin/python3``; Debian needs its ``python3-venv`` package,
the message says so), OSGeo4W on Windows (QGIS's ``python.exe``; CUDA wheels from PyTorch's index) and the
macOS bundle (a python.org or Homebrew Python, else the bundle's). Each step runs as a subprocess (no
shell) of a QGIS background task: QGIS stays responsive, pip's log is streamed, Cancel stops it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess  # nosec B404 - argument lists only: candidate interpreters, venv, pip, the engine
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from qgis.core import QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .environment import PLUGIN_DIR, engine_command, engine_environment, managed_dir, venv_python

REQUIREMENTS = PLUGIN_DIR / "core" / "requirements.txt"
MIN_PYTHON = (3, 10)
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
CUDA_INDEX_WINDOWS = "https://download.pytorch.org/whl/cu126"
TORCH_INDEX_VARIABLE = "LOC2_TORCH_INDEX_URL"  # an index for PyTorch ('' = pip's own configuration)
# Download sizes (MB) measured for Python 3.11 on Linux x86_64 (README, "Install engine").
DOWNLOAD_MB = {"torch-cpu": 185, "torch-cuda": 3600, "others": 180}
DISK_MB = {"cpu": 1500, "cuda": 7000}
_VERSION_PROBE = "import sys, venv; print('%d.%d.%d' % sys.version_info[:3])"


class InstallError(Exception):
    """The engine cannot be installed as asked; the message says what to do."""


@dataclass
class InstallStep:
    label: str
    program: str
    arguments: list[str]


@dataclass
class InstallPlan:
    """What "Install engine" will do: from ``base_python`` into ``target``, with CUDA or not."""

    base_python: str
    base_version: str
    target: Path
    cuda: bool
    steps: list[InstallStep] = field(default_factory=list)

    @property
    def download_mb(self) -> int:
        return DOWNLOAD_MB["torch-cuda" if self.cuda else "torch-cpu"] + DOWNLOAD_MB["others"]

    @property
    def disk_mb(self) -> int:
        return DISK_MB["cuda" if self.cuda else "cpu"]

    def describe(self) -> str:
        kind = "PyTorch with CUDA (NVIDIA GPU)" if self.cuda else "PyTorch for the CPU"
        return (
            f"Install the Loc2 engine with {kind} into {self.target}, from Python {self.base_version} "
            f"({self.base_python}): about {self.download_mb:,} MB to download and {self.disk_mb:,} MB on "
            "disk; a few minutes on a fast connection."
        )


def has_nvidia_gpu() -> bool:
    """Whether an NVIDIA driver is present (``nvidia-smi`` on the PATH or the Linux driver's proc file)."""
    return shutil.which("nvidia-smi") is not None or Path("/proc/driver/nvidia/version").exists()


def python_version(python: str) -> tuple[int, ...] | None:
    """The version of an interpreter that has ``venv``, or None when it cannot run or lacks it."""
    try:
        out = subprocess.run(  # nosec B603 - argument list; the interpreter is a candidate path
            [python, "-c", _VERSION_PROBE],
            capture_output=True,
            text=True,
            timeout=20,
            env=engine_environment(),
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", out.stdout.strip())
    return tuple(int(g) for g in match.groups()) if out.returncode == 0 and match else None


def _candidates() -> list[str]:
    """Interpreters to make the engine from, best first: QGIS's own Python (Debian/Ubuntu's
    ``/usr/bin/python3``, OSGeo4W's ``python.exe``), then versions on the PATH; on macOS the PATH's
    (python.org, Homebrew) before the QGIS bundle's, whose venvs break when QGIS is updated."""
    own = (
        Path(sys.exec_prefix) / "python.exe"
        if sys.platform == "win32"
        else Path(sys.exec_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    )
    names = [f"python3.{minor}" for minor in (12, 11, 13, 10)] + ["python3", "python"]
    on_path = [shutil.which(n) for n in names]
    found = [*on_path, str(own)] if sys.platform == "darwin" else [str(own), *on_path]
    seen, out = set(), []
    for path in found:
        if path and path not in seen and Path(path).is_file():
            seen.add(path)
            out.append(path)
    return out


def find_base_python(explicit: str = "") -> tuple[str, str]:
    """(interpreter, version) to make the engine environment from: ``explicit`` if given, else the first
    candidate ≥ 3.10 with ``venv``. InstallError says what to install when there is none."""
    candidates = [explicit] if explicit else _candidates()
    tried = []
    for python in candidates:
        version = python_version(python)
        if version is not None and version[:2] >= MIN_PYTHON:
            return python, ".".join(map(str, version))
        tried.append(
            f"{python} ({'.'.join(map(str, version)) if version else 'does not run or has no venv'})"
        )
    hint = (
        "install Python 3.11 or 3.12 from python.org"
        if sys.platform in ("win32", "darwin")
        else "install python3 and python3-venv (Debian/Ubuntu: sudo apt install python3-venv)"
    )
    listed = "; ".join(tried) or "none found"
    raise InstallError(
        f"No Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer with venv to make the engine from ({listed}): {hint}, or name one."
    )


def torch_index(cuda: bool) -> str:
    """The package index for PyTorch: ``LOC2_TORCH_INDEX_URL`` when set ('' = pip's default), else the CPU
    build's index without CUDA, PyTorch's CUDA index on Windows, PyPI (CUDA builds) on Linux."""
    if TORCH_INDEX_VARIABLE in os.environ:
        return os.environ[TORCH_INDEX_VARIABLE].strip()
    if not cuda:
        return "" if sys.platform == "darwin" else CPU_INDEX  # macOS wheels on PyPI are CPU/MPS builds
    return CUDA_INDEX_WINDOWS if sys.platform == "win32" else ""


def torch_requirement() -> str:
    """The torch line of the engine's requirements."""
    for line in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        if re.match(r"torch\b", line.strip()):
            return line.strip()
    return "torch"


def make_plan(base_python: str = "", cuda: bool | None = None, target: Path | None = None) -> InstallPlan:
    """The steps of an install (InstallError when there is no usable base Python)."""
    python, version = find_base_python(base_python)
    cuda = has_nvidia_gpu() if cuda is None else cuda
    target = target or managed_dir()
    engine = str(venv_python(target))
    pip = [engine, "-m", "pip", "install", "--progress-bar", "off", "--disable-pip-version-check"]
    index = torch_index(cuda)
    torch_args = [*pip, *(["--index-url", index] if index else []), torch_requirement()]
    steps = [
        InstallStep("Creating the engine environment", python, ["-m", "venv", "--clear", str(target)]),
        InstallStep("Installing PyTorch", torch_args[0], torch_args[1:]),
        InstallStep("Installing the engine's packages", pip[0], [*pip[1:], "-r", str(REQUIREMENTS)]),
        InstallStep("Checking the engine", engine, engine_command(engine, "worker", "--check")[1:]),
    ]
    return InstallPlan(python, version, target, cuda, steps)


class EngineInstallTask(QgsTask):
    """Runs an :class:`InstallPlan` step by step in the background (QGIS's task manager shows it).

    Signals (queued to the receiver's thread): ``line(str)`` each output line; ``step(str, int, int)``
    label, index, count as each step starts; ``done(bool, str)`` at the end (main thread) with a message for
    people: where it was installed, or which step failed with pip's last lines. ``downloaded_mb`` adds up
    pip's "Downloading … (N MB)" lines.
    """

    line = pyqtSignal(str)
    step = pyqtSignal(str, int, int)
    done = pyqtSignal(bool, str)

    def __init__(self, plan: InstallPlan) -> None:
        super().__init__("Loc2: install the engine", QgsTask.Flag.CanCancel)
        self.plan = plan
        self.output: list[str] = []
        self.downloaded_mb = 0.0
        self.message = ""
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def run(self) -> bool:
        """Task thread: the steps in order, each to its end; never raises."""
        try:
            for index, step in enumerate(self.plan.steps):
                if self.isCanceled():
                    self.message = "The engine installation was cancelled."
                    return False
                self.step.emit(step.label, index, len(self.plan.steps))
                self.setProgress(100.0 * index / len(self.plan.steps))
                code = self._run_step(step)
                if self.isCanceled():
                    self.message = "The engine installation was cancelled."
                    return False
                if code != 0:
                    self.message = self._failure(step, code)
                    return False
        except Exception as exc:  # noqa: BLE001 - an exception escaping run() can take QGIS down
            self.message = f"The engine installation failed: {type(exc).__name__}: {exc}"
            return False
        self.message = f"The Loc2 engine is installed in {self.plan.target}."
        return True

    def _run_step(self, step: InstallStep) -> int:
        """Run one step, streaming its output; its exit code (127 when it cannot start)."""
        self._emit_line(f"$ {step.program} {' '.join(step.arguments)}")
        try:
            process = subprocess.Popen(  # nosec B603 - argument list: the base Python, the venv's pip
                [step.program, *step.arguments],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=engine_environment(),
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as exc:
            self._emit_line(f"could not start {step.program}: {exc}")
            return 127
        with self._lock:
            self._process = process
        assert process.stdout is not None  # nosec B101 - stdout=PIPE
        with process.stdout:
            for raw in iter(process.stdout.readline, b""):
                self._emit_line(raw.decode("utf-8", errors="replace").rstrip())
        code = process.wait()
        with self._lock:
            self._process = None
        return code

    def _emit_line(self, line: str) -> None:
        if not line.strip():
            return
        self.output.append(line)
        size = re.search(r"\(([\d.]+) (kB|MB|GB)\)", line)
        if line.lstrip().startswith("Downloading") and size:
            self.downloaded_mb += float(size.group(1)) * {"kB": 1e-3, "MB": 1.0, "GB": 1e3}[size.group(2)]
        self.line.emit(line)

    def _failure(self, step: InstallStep, code: int) -> str:
        tail = "\n".join(self.output[-12:])
        hint = ""
        if "ensurepip" in tail or "No module named venv" in tail:
            hint = " Debian/Ubuntu: sudo apt install python3-venv, then try again."
        command = f"{step.program} {' '.join(step.arguments)}"
        return f"{step.label} failed (exit code {code}).{hint}\n{command}\n{tail}"

    def cancel(self) -> None:
        """Stop the running step at once (the next install starts the environment afresh)."""
        super().cancel()
        with self._lock:
            if self._process is not None and self._process.poll() is None:
                self._process.kill()

    def finished(self, ok: bool) -> None:  # noqa: FBT001 - QgsTask's signature
        if not ok and not self.message:
            self.message = "The engine installation was cancelled."
        self.done.emit(bool(ok), self.message)
