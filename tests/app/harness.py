"""Drive the real QGIS desktop (under Xvfb) and the real ``qgis_process`` from tests.

Standard library only: the same code runs under Debian 12's QGIS 3.22 (Python 3.11) and Debian 13's QGIS 3.40
(Python 3.13), where the plugin's engine packages are not importable by the test runner.

Typical use (the fixtures in ``conftest.py`` do the first three steps)::

    zip_path = build_plugin_zip()                       # dist/loc2.zip, top folder loc2/
    profile = make_profile(tmp_path)                    # throw-away profiles folder
    install_plugin_from_zip(profile, zip_path).check()  # QGIS's own "Install from ZIP", in the desktop
    run = run_qgis_script('''
        from qgis.core import QgsApplication
        results["loaded"] = "loc2" in plugins
        results["provider"] = QgsApplication.processingRegistry().providerById("loc2") is not None
        results["shot"] = screenshot("main")             # the main window, as a PNG; stats come back
    ''', profile, name="my_test", timeout=60)
    run.check()                                         # AssertionError with the whole story otherwise
    assert run.results["loaded"] and run.results["shot"]["colours"] > 1

The profile
    ``make_profile`` writes ``<root>/profiles/default/QGIS/QGIS3.ini`` with the settings that keep a first start
    quiet (no version check, no news feed, no plugin repository fetch, no "save project?" / "memory layers"
    questions on exit, English UI). The desktop gets ``--profiles-path <root> --profile default`` and
    ``qgis_process`` gets ``QGIS_CUSTOM_CONFIG_PATH=<root>`` (it then uses the profile ``default``). Both also
    get ``XDG_CONFIG_HOME``/``XDG_DATA_HOME``/``XDG_CACHE_HOME``/``XDG_RUNTIME_DIR`` inside ``<root>/xdg``, so
    nothing is written to the user's ``~/.config``, ``~/.local/share/QGIS`` or ``~/.cache``.

Scripts run in the desktop
    ``run_qgis_script`` starts ``qgis ... --code scripts/qgis_runner.py``; the runner executes the test script
    once the event loop runs, with ``iface``, ``plugins``, ``results``, ``wait_until``, ``wait``,
    ``screenshot``, ``image_stats``, ``install_plugin_from_zip``, ``log`` and ``modal_guard`` predefined (see
    the runner's docstring), writes a JSON report and quits QGIS (exit 0 through ``iface.actionExit()``; 1 when
    the script raised; 3 when a dialog blocked the exit). Modal dialogs that pop up unasked are recorded,
    screenshotted and rejected, and fail the run.

Environment knobs: ``LOC2_QGIS`` / ``LOC2_QGIS_PROCESS`` (executables), ``LOC2_APP_PLUGIN_ZIP`` (test a
given zip instead of building one; read by conftest), ``LOC2_APP_KEEP_PYTHONPATH=1`` (pass the caller's
``PYTHONPATH`` to QGIS; by default QGIS gets the environment a user's session would have, without it).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess  # nosec B404 - fixed programs with argument lists
import sys
import tempfile
import textwrap
import time
import zipfile
from configparser import RawConfigParser
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

APP_DIR = Path(__file__).resolve().parent
REPO_ROOT = APP_DIR.parents[1]
SCRIPTS_DIR = APP_DIR / "scripts"
RUNNER = SCRIPTS_DIR / "qgis_runner.py"
ARTIFACTS = REPO_ROOT / "tests" / "artifacts" / "app"
PLUGIN_NAME = "loc2"
PROFILE_NAME = "default"
XVFB_SCREEN = "1600x1000x24"

# Settings of a fresh profile (QSettings ini: section -> key -> value; "\\" separates key groups).
QUIET_SETTINGS: dict[str, dict[str, str]] = {
    "qgis": {
        "checkVersion": "false",  # no "a new version is available" check (also --noversioncheck)
        "askToSaveProjectChanges": "false",  # exit without "save the project?"
        "showTips": "false",  # QGIS 2.x tips dialog; harmless in 3.x
    },
    "core": {
        # The welcome page's news feed (QgsNewsFeedParser::keyForFeed("https://feed.qgis.org")).
        "NewsFeed\\httpsfeedqgisorg\\disabled": "true",
    },
    "app": {
        "askToSaveMemoryLayers": "false",  # exit without "temporary scratch layers will be lost"
        "plugin_installer\\checkOnStart": "false",  # no plugin repository fetch at start
        "plugin_installer\\allowExperimental": "true",  # loc2 is flagged experimental
    },
    "locale": {"overrideFlag": "true", "userLocale": "en_US"},  # stable, English screenshots
}


class HarnessError(RuntimeError):
    """The harness could not do its job (missing program, bad zip, ...): not a verdict on the plugin."""


# --------------------------------------------------------------------------------------------- programs
def find_qgis() -> str | None:
    """The desktop executable (``LOC2_QGIS`` or ``qgis`` on PATH), or None."""
    return os.environ.get("LOC2_QGIS") or shutil.which("qgis")


@lru_cache(maxsize=1)
def find_qgis_process() -> str | None:
    """The ``qgis_process`` executable to use, or None.

    Debian 12's ``/usr/bin/qgis_process`` is a shell wrapper that adds ``$QGIS_OPTS`` from /etc/default/qgis
    (``--noversioncheck``, meant for the desktop); QGIS 3.22's qgis_process answers every command with
    "Command --noversioncheck not known!" and exit status 1 (https://github.com/qgis/QGIS/issues/57683).
    When the wrapper is broken that way and ``qgis_process.bin`` sits beside it, the binary is used."""
    override = os.environ.get("LOC2_QGIS_PROCESS")
    if override:
        return override
    wrapper = shutil.which("qgis_process")
    if wrapper is None:
        return shutil.which("qgis_process.bin")
    binary = Path(wrapper).with_name("qgis_process.bin")
    if binary.is_file() and os.access(binary, os.X_OK):
        with tempfile.TemporaryDirectory(prefix="loc2-qgis-probe-") as tmp:
            probe = subprocess.run(  # nosec B603
                [wrapper, "list"],
                env=_isolated_env(Path(tmp), {"QT_QPA_PLATFORM": "offscreen"}),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        if "not known!" in probe.stdout + probe.stderr:
            return str(binary)
    return wrapper


# --------------------------------------------------------------------------------------------- profiles
def profile_dir(profile: Path, name: str = PROFILE_NAME) -> Path:
    """The folder of profile ``name`` inside a profiles root made by ``make_profile``."""
    return Path(profile) / "profiles" / name


def settings_path(profile: Path, name: str = PROFILE_NAME) -> Path:
    """The profile's QSettings file (``QGIS/QGIS3.ini``)."""
    return profile_dir(profile, name) / "QGIS" / "QGIS3.ini"


def plugins_path(profile: Path, name: str = PROFILE_NAME) -> Path:
    """Where the profile's user plugins live (``python/plugins``)."""
    return profile_dir(profile, name) / "python" / "plugins"


def _read_ini(path: Path) -> RawConfigParser:
    ini = RawConfigParser(interpolation=None, strict=False, delimiters=("=",))
    ini.optionxform = str  # QSettings keys are case-sensitive
    if path.is_file():
        ini.read(path, encoding="utf-8")
    return ini


def update_settings(profile: Path, values: dict[str, dict[str, str]], name: str = PROFILE_NAME) -> None:
    """Merge ``{section: {key: value}}`` into the profile's QGIS3.ini (QGIS must not be running on it)."""
    path = settings_path(profile, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    ini = _read_ini(path)
    for section, entries in values.items():
        if not ini.has_section(section):
            ini.add_section(section)
        for key, value in entries.items():
            ini.set(section, key, value)
    with open(path, "w", encoding="utf-8") as f:
        ini.write(f, space_around_delimiters=False)


def read_settings(profile: Path, name: str = PROFILE_NAME) -> dict[str, dict[str, str]]:
    """The profile's QGIS3.ini as ``{section: {key: value}}`` (raw strings)."""
    ini = _read_ini(settings_path(profile, name))
    return {section: dict(ini.items(section)) for section in ini.sections()}


def make_profile(tmp_path: Path, name: str = PROFILE_NAME, settings: dict | None = None) -> Path:
    """Create a throw-away QGIS profiles root under ``tmp_path`` and return it.

    Layout: ``<root>/profiles/profiles.ini`` (default profile), ``<root>/profiles/<name>/QGIS/QGIS3.ini`` with
    ``QUIET_SETTINGS`` (plus ``settings``), ``<root>/profiles/<name>/python/plugins/`` and ``<root>/xdg/``
    (config, data, cache and runtime folders given to QGIS instead of the user's)."""
    root = Path(tmp_path) / "qgis-profiles"
    (root / "profiles").mkdir(parents=True, exist_ok=True)
    (root / "profiles" / "profiles.ini").write_text(f"[core]\ndefaultProfile={name}\n", encoding="utf-8")
    plugins_path(root, name).mkdir(parents=True, exist_ok=True)
    for sub in ("config", "data", "cache"):
        (root / "xdg" / sub).mkdir(parents=True, exist_ok=True)
    (root / "xdg" / "runtime").mkdir(mode=0o700, parents=True, exist_ok=True)
    update_settings(root, QUIET_SETTINGS, name)
    if settings:
        update_settings(root, settings, name)
    return root


def copy_profile(profile: Path, tmp_path: Path) -> Path:
    """A copy of a profiles root (e.g. of one where the plugin was installed once per session)."""
    target = Path(tmp_path) / "qgis-profiles"
    shutil.copytree(profile, target, symlinks=True)
    return target


def enable_plugin(profile: Path, plugin: str = PLUGIN_NAME, enabled: bool = True, name: str = PROFILE_NAME):
    """Mark a plugin enabled in the profile's settings (``[PythonPlugins] <plugin>=true``)."""
    update_settings(profile, {"PythonPlugins": {plugin: "true" if enabled else "false"}}, name)


def extract_plugin_zip(profile: Path, zip_path: Path, name: str = PROFILE_NAME) -> Path:
    """Fallback install without the desktop: unzip into ``python/plugins`` and enable it in the ini.

    ``install_plugin_from_zip`` (QGIS's own installer) is the faithful path; this one is for qgis_process-only
    tests or for checking a zip's layout. Returns the plugin folder."""
    with zipfile.ZipFile(zip_path) as zf:
        tops = {n.split("/", 1)[0] for n in zf.namelist()}
        if len(tops) != 1:
            raise HarnessError(f"{zip_path}: expected one top folder, found {sorted(tops)}")
        top = tops.pop()
        target = plugins_path(profile, name)
        shutil.rmtree(target / top, ignore_errors=True)
        zf.extractall(target)  # nosec B202 - our own zip
    enable_plugin(profile, top, True, name)
    return target / top


# --------------------------------------------------------------------------------------------- environment
def _isolated_env(profile: Path, extra: dict | None = None) -> dict[str, str]:
    """The caller's environment with QGIS's user folders redirected into the profile root."""
    env = dict(os.environ)
    if os.environ.get("LOC2_APP_KEEP_PYTHONPATH") != "1":
        # pytest may run in a virtual environment; a user's QGIS does not see it.
        for key in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"):
            env.pop(key, None)
    xdg = Path(profile) / "xdg"
    for key, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
        ("XDG_RUNTIME_DIR", "runtime"),
    ):
        (xdg / sub).mkdir(parents=True, exist_ok=True)
        env[key] = str(xdg / sub)
    os.chmod(xdg / "runtime", 0o700)
    env["QGIS_CUSTOM_CONFIG_PATH"] = str(profile)
    env["PYTHONFAULTHANDLER"] = "1"  # a Python stack on stderr if QGIS's Python crashes
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


class Xvfb:
    """An Xvfb server started by the harness (when no DISPLAY is set). ``stop()`` ends it."""

    def __init__(self, screen: str = XVFB_SCREEN):
        exe = shutil.which("Xvfb")
        if exe is None:
            raise HarnessError("no DISPLAY and no Xvfb (Debian: apt install xvfb)")
        read_fd, write_fd = os.pipe()
        self.process = subprocess.Popen(  # nosec B603
            [exe, "-displayfd", str(write_fd), "-screen", "0", screen, "-nolisten", "tcp", "-noreset"],
            pass_fds=(write_fd,),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(write_fd)
        number = b""
        deadline = time.monotonic() + 30
        with os.fdopen(read_fd, "rb") as pipe:
            while time.monotonic() < deadline and not number.endswith(b"\n"):
                chunk = pipe.read(1)
                if not chunk:
                    break
                number += chunk
        if not number.strip():
            self.stop()
            raise HarnessError("Xvfb did not report a display number")
        self.display = ":" + number.decode().strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_xvfb(screen: str = XVFB_SCREEN) -> Xvfb:
    """Start a private Xvfb (``-displayfd`` picks a free display); the caller stops it."""
    return Xvfb(screen)


@lru_cache(maxsize=1)
def _shared_xvfb() -> Xvfb:
    """One Xvfb for this Python process when neither ``display`` nor $DISPLAY is given; stopped at exit."""
    server = start_xvfb()
    atexit.register(server.stop)
    return server


# --------------------------------------------------------------------------------------------- results
@dataclass
class ProcessRun:
    """How a QGIS program ended. ``returncode`` is Popen's (negative: killed by that signal)."""

    args: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    timeout_s: float | None = None
    json: object = None

    @property
    def signal(self) -> int | None:
        """The signal that ended the process: -rc, or rc-128 for a shell-style status 129..159 (134 = SIGABRT,
        139 = SIGSEGV); None for a normal exit."""
        rc = self.returncode
        if rc is None:
            return None
        if rc < 0:
            return -rc
        if 128 < rc < 160:
            return rc - 128
        return None

    @property
    def signal_name(self) -> str | None:
        number = self.signal
        if number is None:
            return None
        try:
            return signal.Signals(number).name
        except ValueError:
            return f"signal {number}"

    @property
    def crashed(self) -> bool:
        """Ended by a signal it did not get from the harness' timeout (SIGABRT, SIGSEGV, ...)."""
        return self.signal is not None and not self.timed_out

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def describe(self) -> str:
        """A readable account of the run, for assertion messages."""
        lines = [f"command: {' '.join(self.args)}"]
        if self.timed_out:
            lines.append(f"TIMED OUT after {self.timeout_s} s: the process group was killed by the harness")
        elif self.crashed:
            lines.append(f"CRASHED: exit status {self.returncode} ({self.signal_name})")
        else:
            lines.append(f"exit status {self.returncode} after {self.duration_s:.1f} s")
        lines += _tail("stdout", self.stdout) + _tail("stderr", self.stderr)
        return "\n".join(lines)

    def check(self) -> ProcessRun:
        """Return self when ``ok``; raise AssertionError with ``describe()`` otherwise."""
        if not self.ok:
            raise AssertionError(self.describe())
        return self


@dataclass
class QgisRun(ProcessRun):
    """A desktop run: the process facts plus the runner's report (None if it never wrote one)."""

    report: dict | None = None
    run_dir: Path | None = None
    screenshots: list[Path] = field(default_factory=list)
    startup_s: float | None = None
    tracebacks: str = ""

    @property
    def status(self) -> str:
        """The script's outcome: passed, failed, runner-error, or missing/running when QGIS died first."""
        return (self.report or {}).get("status", "missing")

    @property
    def results(self) -> dict:
        """What the script put in ``results``."""
        return (self.report or {}).get("results", {})

    @property
    def modal_dialogs(self) -> list[dict]:
        return (self.report or {}).get("modal_dialogs", [])

    @property
    def python_errors(self) -> list[str]:
        """Messages QGIS logged under "Python error" while the script ran (uncaught exceptions in slots)."""
        log = (self.report or {}).get("message_log", [])
        return [m["message"] for m in log if m.get("tag") == "Python error"]

    @property
    def ok(self) -> bool:
        """Exit status 0, the script passed, no unexpected modal dialog and no Python error logged."""
        return super().ok and self.status == "passed" and not self.modal_dialogs and not self.python_errors

    def describe(self) -> str:
        lines = [super().describe(), f"script status: {self.status} (run folder {self.run_dir})"]
        report = self.report or {}
        if report.get("error"):
            lines.append("script error:\n" + report["error"])
        for modal in self.modal_dialogs:
            lines.append(f"unexpected modal dialog (rejected): {modal}")
        for error in self.python_errors:
            lines.append("Python error logged by QGIS:\n" + error)
        if report.get("tasks_left"):
            lines.append(f"tasks still running at the end (cancelled): {report['tasks_left']}")
        if self.status in ("missing", "running", "starting") and not self.timed_out:
            if "Timeout (" in self.tracebacks:
                lines.append("the script hung: the runner's deadline dumped the Python stacks and ended QGIS")
            else:
                lines.append("QGIS ended before the script finished")
        elif self.crashed:
            lines.append("the script finished; QGIS crashed afterwards (while exiting)")
        if self.tracebacks.strip():
            lines.append("faulthandler (crash or in-script deadline):\n" + self.tracebacks[-6000:])
        return "\n".join(lines)


def _tail(label: str, text: str, limit: int = 4000) -> list[str]:
    text = text.strip()
    if not text:
        return [f"{label}: (empty)"]
    return [f"{label} (last {min(len(text), limit)} chars):", text[-limit:]]


def _run(args: list[str], env: dict, timeout: float, cwd: Path, out_dir: Path) -> ProcessRun:
    """Run a program in its own process group; on timeout kill the group (TERM, then KILL)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = out_dir / "stdout.txt", out_dir / "stderr.txt"
    start = time.monotonic()
    timed_out = False
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(  # nosec B603
            args, env=env, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc)
    return ProcessRun(
        args=[str(a) for a in args],
        returncode=proc.returncode,
        stdout=out_path.read_text(encoding="utf-8", errors="replace"),
        stderr=err_path.read_text(encoding="utf-8", errors="replace"),
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
        timeout_s=timeout,
    )


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


# --------------------------------------------------------------------------------------------- desktop
_RUN_NUMBERS = itertools.count(1)


def run_qgis_script(
    script: str | Path,
    profile: Path,
    env: dict | None = None,
    timeout: float = 120,
    name: str | None = None,
    artifacts_dir: Path | None = None,
    display: str | None = None,
    extra_args: tuple[str, ...] = (),
    profile_name: str = PROFILE_NAME,
) -> QgisRun:
    """Run PyQGIS code in the real QGIS desktop and return what happened.

    ``script``: a ``Path`` to a file, or a string of code (dedented). It runs in the desktop once the event loop
    is running, with the names listed in the module docstring predefined; whatever it stores in ``results``
    comes back in ``QgisRun.results``; ``screenshot(name, widget)`` saves ``<run dir>/screenshots/<name>.png``.
    The run folder (``artifacts_dir``, default ``tests/artifacts/app/<name>``) keeps the script, the report,
    stdout/stderr and the screenshots. ``env`` is added to the (isolated) environment. ``display`` defaults to
    ``$DISPLAY``, else an Xvfb started once for this process; the Qt platform is xcb, so screenshots show real
    X windows, and the main window is resized to fill the screen (not with ``LOC2_APP_FILL_SCREEN=0`` in
    ``env``). After ``timeout`` seconds the process group is killed (the runner dumps every Python stack and
    exits by itself 8 s before)."""
    exe = find_qgis()
    if exe is None:
        raise HarnessError("the QGIS desktop (qgis) is not installed")
    display = display or os.environ.get("DISPLAY") or _shared_xvfb().display
    if not artifacts_dir and not name:
        name = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{next(_RUN_NUMBERS)}"
    run_dir = Path(artifacts_dir) if artifacts_dir else ARTIFACTS / name
    shutil.rmtree(run_dir, ignore_errors=True)
    (run_dir / "screenshots").mkdir(parents=True)
    if isinstance(script, Path):
        shutil.copyfile(script, run_dir / "script.py")
    else:
        (run_dir / "script.py").write_text(textwrap.dedent(script), encoding="utf-8")
    report_path = run_dir / "report.json"
    tracebacks_path = run_dir / "tracebacks.txt"
    extra = {
        "DISPLAY": display,
        "QT_QPA_PLATFORM": "xcb",
        "LOC2_APP_REPORT": str(report_path),
        "LOC2_APP_SCRIPT": str(run_dir / "script.py"),
        "LOC2_APP_SHOTS": str(run_dir / "screenshots"),
        "LOC2_APP_TRACEBACKS": str(tracebacks_path),
        "LOC2_APP_DEADLINE": str(max(1.0, timeout - 8)),
        "LOC2_APP_LAUNCH_TIME": repr(time.time()),
    }
    extra.update(env or {})
    args = [
        exe,
        "--profiles-path",
        str(profile),
        "--profile",
        profile_name,
        "--nologo",
        "--noversioncheck",
        *extra_args,
        "--code",
        str(RUNNER),
    ]
    proc = _run(args, _isolated_env(profile, extra), timeout, cwd=run_dir, out_dir=run_dir)
    report = None
    if report_path.is_file():
        try:
            report = json.loads(report_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            report = {"status": "runner-error", "error": f"unreadable report: {exc}"}
    run = QgisRun(
        **vars(proc),
        report=report,
        run_dir=run_dir,
        screenshots=sorted((run_dir / "screenshots").glob("*.png")),
        startup_s=((report or {}).get("timings") or {}).get("startup_s"),
        tracebacks=tracebacks_path.read_text(errors="replace") if tracebacks_path.is_file() else "",
    )
    return run


INSTALL_SCRIPT = """
zip_path = {zip_path!r}
results["install"] = install_plugin_from_zip(zip_path, {plugin!r})
assert results["install"]["installed"], results["install"]
assert results["install"]["loaded"], "the plugin was extracted but not loaded: " + repr(results["install"])
assert results["install"]["enabled_setting"], results["install"]
"""


def install_plugin_from_zip(
    profile: Path, zip_path: Path, plugin: str = PLUGIN_NAME, timeout: float = 120, **kwargs
) -> QgisRun:
    """Install ``zip_path`` in the profile with QGIS's own installer, in a desktop session.

    Calls ``pyplugin_installer.instance().installFromZipFile(zip)``, what Plugins > Manage and Install >
    Install from ZIP runs after its confirmation question: it extracts into the profile's
    ``python/plugins``, loads and starts the plugin and records it enabled in the profile. (On 3.22 it shows
    no dialog for a valid, unencrypted zip without plugin dependencies; any dialog would be caught by the
    runner's modal guard and fail the run.) The run fails unless the plugin ends up installed, loaded and
    enabled. ``kwargs`` go to ``run_qgis_script``."""
    kwargs.setdefault("name", "install_plugin_from_zip")
    script = INSTALL_SCRIPT.format(zip_path=str(Path(zip_path).resolve()), plugin=plugin)
    return run_qgis_script(script, profile, timeout=timeout, **kwargs)


# --------------------------------------------------------------------------------------------- qgis_process
def run_qgis_process(
    args: list[str],
    profile: Path,
    env: dict | None = None,
    timeout: float = 300,
    name: str | None = None,
    artifacts_dir: Path | None = None,
    cwd: Path | None = None,
) -> ProcessRun:
    """Run ``qgis_process <args>`` on the profile (``QGIS_CUSTOM_CONFIG_PATH``; plugins enabled in its ini are
    loaded, e.g. by ``install_plugin_from_zip`` or ``qgis_process plugins enable loc2``).

    No display is needed (``QT_QPA_PLATFORM=offscreen`` unless ``env`` says otherwise). With ``--json`` in
    ``args`` the parsed output is in ``.json`` (None if stdout is not JSON). stdout/stderr are also kept in
    ``artifacts_dir`` (default ``tests/artifacts/app/<name>``). Relative paths in ``args`` are relative to
    ``cwd`` (default: the repository root)."""
    exe = find_qgis_process()
    if exe is None:
        raise HarnessError("qgis_process is not installed")
    out_dir = Path(artifacts_dir) if artifacts_dir else ARTIFACTS / (name or "qgis_process")
    extra = {"QT_QPA_PLATFORM": "offscreen"}
    extra.update(env or {})
    cmd = [exe, *[str(a) for a in args]]
    run = _run(cmd, _isolated_env(profile, extra), timeout, cwd=Path(cwd or REPO_ROOT), out_dir=out_dir)
    if "--json" in cmd:
        run.json = _parse_json(run.stdout)
    return run


def _parse_json(text: str):
    text = text.strip()
    for candidate in (text, text[text.find("{") : text.rfind("}") + 1] if "{" in text else ""):
        if candidate:
            try:
                return json.loads(candidate)
            except ValueError:
                continue
    return None


# --------------------------------------------------------------------------------------------- the zip
def build_plugin_zip(python: str | None = None, timeout: float = 300) -> Path:
    """Build ``dist/loc2.zip`` with ``scripts/package_plugin.py`` (git + standard library) and return its path.

    ``python`` defaults to the interpreter running the tests."""
    script = REPO_ROOT / "scripts" / "package_plugin.py"
    proc = subprocess.run(  # nosec B603
        [python or sys.executable, str(script)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    target = REPO_ROOT / "dist" / f"{PLUGIN_NAME}.zip"
    if proc.returncode != 0 or not target.is_file():
        raise HarnessError(
            f"package_plugin.py failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}".strip()
        )
    return target


def zip_top_folders(zip_path: Path) -> set[str]:
    """The top-level folder names in a zip (a QGIS plugin zip has exactly one: the plugin's name)."""
    with zipfile.ZipFile(zip_path) as zf:
        return {n.split("/", 1)[0] for n in zf.namelist()}
