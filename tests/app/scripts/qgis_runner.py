"""Runs inside the QGIS desktop (``qgis --code qgis_runner.py``); started by ``harness.run_qgis_script``.

QGIS 3.22 runs a ``--code`` file with ``exec(f.read())`` in its ``__main__`` namespace: there is no
``__file__``, and an exception escaping it opens a Python error dialog, i.e. a hang under Xvfb. So this file
catches everything, reads its settings from environment variables set by the harness, and:

1. arms ``faulthandler`` (Python stacks on a crash, and a hard deadline that dumps every thread's stack and
   exits if the script hangs even with the event loop blocked);
2. starts a *modal guard*: a timer that, while the script runs and while QGIS exits, records any modal
   dialog (class, title, text, screenshot) and rejects it, so an unexpected question fails the run instead
   of blocking it; a script that drives a modal dialog itself sets ``modal_guard.enabled = False``;
3. once the event loop runs, executes the test script (``LOC2_APP_SCRIPT``) with these names predefined:
   ``iface``, ``plugins``, ``results`` (a dict, saved in the report), ``wait_until``, ``wait``,
   ``screenshot``, ``image_stats``, ``install_plugin_from_zip``, ``log``, ``modal_guard``;
4. writes the JSON report (``LOC2_APP_REPORT``) and ends QGIS: status 0 through the user's path
   (``iface.actionExit()``, with the project marked clean so there is no "save?" question), status 1 when the
   script raised (traceback in the report), 3 when a dialog blocked the exit.

Only the standard library and ``qgis`` are imported.
"""

import contextlib
import faulthandler
import json
import os
import sys
import time
import traceback

from qgis.core import Qgis, QgsApplication, QgsProject
from qgis.PyQt.QtCore import QEventLoop, QTimer
from qgis.PyQt.QtGui import QGuiApplication, QImage
from qgis.PyQt.QtWidgets import QApplication, QDialog, QLabel, QMessageBox, QPlainTextEdit, QTextEdit
from qgis.utils import iface, plugins

_LOC2_ENV = os.environ
_LOC2_ARGB32 = getattr(QImage, "Format", QImage).Format_ARGB32  # scoped in PyQt6, both in PyQt5


def _loc2_plugins_home():
    """The profile's plugins folder (``HOME_PLUGIN_PATH`` in QGIS 3.40, ``home_plugin_path`` before)."""
    import qgis.utils

    return getattr(qgis.utils, "HOME_PLUGIN_PATH", None) or qgis.utils.home_plugin_path


def _loc2_exec(obj):
    """``exec()`` of a QEventLoop/QDialog under PyQt5 (``exec_``) and PyQt6 (``exec``)."""
    return (getattr(obj, "exec_", None) or obj.exec)()


class _Loc2AppRunner:
    EXIT_PASSED = 0
    EXIT_FAILED = 1
    EXIT_RUNNER_ERROR = 2
    EXIT_BLOCKED = 3

    def __init__(self):
        self.report_path = _LOC2_ENV["LOC2_APP_REPORT"]
        self.script_path = _LOC2_ENV["LOC2_APP_SCRIPT"]
        self.shots_dir = _LOC2_ENV["LOC2_APP_SHOTS"]
        launched = float(_LOC2_ENV.get("LOC2_APP_LAUNCH_TIME", "0") or 0)
        self.results = {}
        self.report = {
            "status": "starting",
            "error": None,
            "qgis_version": Qgis.QGIS_VERSION,
            "python_version": sys.version,
            "platform": QGuiApplication.platformName(),
            "plugins_at_start": sorted(plugins),
            "results": self.results,
            "screenshots": [],
            "modal_dialogs": [],
            "message_log": [],
            "tasks_left": [],
            "windows_at_end": [],
            "exit": None,
            "timings": {"runner_start": time.time(), "launch": launched or None},
        }
        if launched:
            self.report["timings"]["startup_s"] = round(time.time() - launched, 3)
        os.makedirs(self.shots_dir, exist_ok=True)
        self.modal_guard = _Loc2ModalGuard(self)
        QgsApplication.messageLog().messageReceived.connect(self._log_message)

    # ------------------------------------------------------------ report
    def write_report(self):
        tmp = self.report_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.report, f, indent=1, default=repr)
        os.replace(tmp, self.report_path)

    def _log_message(self, message, tag, level):
        if len(self.report["message_log"]) < 500:
            self.report["message_log"].append({"tag": tag, "level": int(level), "message": message})

    # ------------------------------------------------------------ helpers given to scripts
    def wait(self, seconds):
        """Keep the event loop running for ``seconds`` (timers, queued signals and tasks go on)."""
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        _loc2_exec(loop)

    def wait_until(self, condition, timeout=30.0, interval=0.05, message=None):
        """Process events until ``condition()`` is truthy; return its value. Raise TimeoutError otherwise."""
        end = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= end:
                raise TimeoutError(message or f"condition not met within {timeout} s: {condition!r}")
            self.wait(interval)

    def screenshot(self, name, widget=None, whole_screen=False):
        """Save a PNG of ``widget`` (default: the main window) or of the whole X screen; return its stats.

        The dict returned (also listed in the report) has ``path``, ``width``, ``height``, ``colours`` (number
        of distinct colours) and ``dominant_fraction`` (share of the commonest colour)."""
        QgsApplication.processEvents()
        path = os.path.join(self.shots_dir, name if name.endswith(".png") else name + ".png")
        if whole_screen:
            pixmap = QGuiApplication.primaryScreen().grabWindow(0)
        else:
            pixmap = (widget if widget is not None else iface.mainWindow()).grab()
        if not pixmap.save(path, "PNG"):
            raise RuntimeError(f"could not save the screenshot {path}")
        stats = dict(self.image_stats(path), name=name)
        self.report["screenshots"].append(stats)
        return stats

    @staticmethod
    def image_stats(path):
        """Size and colour counts of an image file (QImage): tells a real picture from a blank one."""
        image = QImage(path)
        if image.isNull():
            return {"path": path, "width": 0, "height": 0, "colours": 0, "dominant_fraction": 1.0}
        image = image.convertToFormat(_LOC2_ARGB32)
        ptr = image.constBits()
        ptr.setsize(image.sizeInBytes() if hasattr(image, "sizeInBytes") else image.byteCount())
        pixels = memoryview(bytes(ptr)).cast("I")
        counts = {}
        for value in pixels[:: max(1, len(pixels) // 200000)]:
            counts[value] = counts.get(value, 0) + 1
        sampled = sum(counts.values())
        return {
            "path": path,
            "width": image.width(),
            "height": image.height(),
            "colours": len(set(pixels)),
            "dominant_fraction": round(max(counts.values()) / sampled, 4) if sampled else 1.0,
        }

    def install_plugin_from_zip(self, zip_path, name=None):
        """Install a plugin zip the way Plugin Manager > Install from ZIP does (QGIS's own installer)."""
        import pyplugin_installer
        import qgis.utils

        pyplugin_installer.instance().installFromZipFile(zip_path)
        QgsApplication.processEvents()
        if name is None:
            return None
        from qgis.core import QgsSettings

        return {
            "plugin_dir": os.path.join(_loc2_plugins_home(), name),
            "installed": os.path.isfile(
                os.path.join(
                    (getattr(qgis.utils, "HOME_PLUGIN_PATH", None) or qgis.utils.home_plugin_path),
                    name,
                    "metadata.txt",
                )
            ),
            "loaded": name in qgis.utils.plugins,
            "active": name in qgis.utils.active_plugins,
            "enabled_setting": QgsSettings().value("PythonPlugins/" + name, False, type=bool),
        }

    @staticmethod
    def log(*args):
        print("[loc2-app]", *args, flush=True)

    # ------------------------------------------------------------ the run
    def script_namespace(self):
        return {
            "__name__": "__loc2_app_script__",
            "__file__": self.script_path,
            "iface": iface,
            "plugins": plugins,
            "results": self.results,
            "wait": self.wait,
            "wait_until": self.wait_until,
            "screenshot": self.screenshot,
            "image_stats": self.image_stats,
            "install_plugin_from_zip": self.install_plugin_from_zip,
            "log": self.log,
            "modal_guard": self.modal_guard,
        }

    def fill_screen(self):
        """Give the main window the whole screen (no window manager under Xvfb: maximizing does nothing), so
        toolbars and screenshots do not depend on QGIS's first-start window size."""
        window = iface.mainWindow()
        window.setGeometry(window.screen().availableGeometry())
        self.wait(0.2)
        self.report["main_window"] = [window.x(), window.y(), window.width(), window.height()]

    def run(self):
        if _LOC2_ENV.get("LOC2_APP_FILL_SCREEN", "1") == "1":
            try:
                self.fill_screen()
            except BaseException:  # noqa: B036 - cosmetic; the script decides
                self.report["fill_screen_error"] = traceback.format_exc()
        self.report["status"] = "running"
        self.report["timings"]["script_start"] = time.time()
        self.write_report()
        status, code = "passed", self.EXIT_PASSED
        try:
            with open(self.script_path, encoding="utf-8") as f:
                source = f.read()
            exec(compile(source, self.script_path, "exec"), self.script_namespace())  # noqa: S102
        except BaseException:  # noqa: B036 - SystemExit and KeyboardInterrupt too: the run must end
            status, code = "failed", self.EXIT_FAILED
            self.report["error"] = traceback.format_exc()
            sys.stderr.write(self.report["error"])
        self.report["timings"]["script_s"] = round(time.time() - self.report["timings"]["script_start"], 3)
        self.finish(status, code)

    def finish(self, status, code):
        self.report["status"] = status
        try:
            manager = QgsApplication.taskManager()
            left = [t.description() for t in manager.activeTasks()]
            if left:
                self.report["tasks_left"] = left
                manager.cancelAll()
                with contextlib.suppress(TimeoutError):
                    self.wait_until(lambda: manager.countActiveTasks() == 0, timeout=10)
            # The script decides what the project holds; quitting must not ask to save it.
            QgsProject.instance().setDirty(False)
            self.report["windows_at_end"] = [
                {"class": w.metaObject().className(), "title": w.windowTitle(), "name": w.objectName()}
                for w in QApplication.topLevelWidgets()
                if w.isVisible()
            ]
        except BaseException:  # noqa: B036
            self.report["finish_error"] = traceback.format_exc()
        modals_before = len(self.report["modal_dialogs"])
        if code == self.EXIT_PASSED:
            self.report["exit"] = "iface.actionExit"
            self.write_report()
            iface.actionExit().trigger()  # QgisApp::fileExit: the user's File > Exit, exits with 0
            if len(self.report["modal_dialogs"]) > modals_before:
                # A question (rejected by the guard) cancelled the exit: fail, and quit anyway.
                self.report["exit"] = "blocked by a dialog, then QgsApplication.exit(3)"
                self.report["status"] = "failed"
                self.report["error"] = "QGIS asked a question on exit: " + json.dumps(
                    self.report["modal_dialogs"][modals_before:]
                )
                self.write_report()
                QgsApplication.exit(self.EXIT_BLOCKED)
        else:
            self.report["exit"] = f"QgsApplication.exit({code})"
            self.write_report()
            QgsApplication.exit(code)


def _loc2_widget_text(widget, limit=4000):
    """The text a dialog shows: a message box's text, else its labels and text views (e.g. QgsMessageViewer
    with a plugin's load error)."""
    if isinstance(widget, QMessageBox):
        parts = [widget.text(), widget.informativeText(), widget.detailedText()]
    else:
        parts = [label.text() for label in widget.findChildren(QLabel) if label.isVisible()]
        parts += [view.toPlainText() for view in widget.findChildren(QTextEdit)]
        parts += [view.toPlainText() for view in widget.findChildren(QPlainTextEdit)]
    text = "\n".join(p for p in parts if p and p.strip())
    return text if len(text) <= limit else text[:limit] + " [...]"


class _Loc2ModalGuard:
    """Records and rejects modal dialogs (a timer keeps firing inside their nested event loops)."""

    def __init__(self, runner):
        self.runner = runner
        self.enabled = True
        self.busy = False
        self.timer = QTimer()
        self.timer.setInterval(200)
        self.timer.timeout.connect(self._check)
        self.timer.start()

    def _check(self):
        if not self.enabled or self.busy:
            return
        widget = QApplication.activeModalWidget()
        if widget is None:
            return
        self.busy = True  # the screenshot processes events: this timer must not re-enter
        try:
            self._reject(widget)
        finally:
            self.busy = False

    def _reject(self, widget):
        entry = {
            "class": widget.metaObject().className(),
            "title": widget.windowTitle(),
            "text": _loc2_widget_text(widget),
            "time": time.time(),
        }
        try:
            n = len(self.runner.report["modal_dialogs"])
            entry["screenshot"] = self.runner.screenshot(f"modal_{n:02d}", widget)["path"]
        except BaseException:  # noqa: B036
            entry["screenshot"] = None
        self.runner.report["modal_dialogs"].append(entry)
        sys.stderr.write(f"[loc2-app] modal dialog rejected: {entry}\n")
        if isinstance(widget, QDialog):
            widget.reject()
        else:
            widget.close()


def _loc2_app_start():
    tracebacks = _LOC2_ENV.get("LOC2_APP_TRACEBACKS")
    if tracebacks:
        # Kept open for the life of the process: faulthandler writes to its descriptor on a crash/deadline.
        _loc2_app_start.tb_file = open(tracebacks, "w")  # noqa: SIM115
        faulthandler.enable(file=_loc2_app_start.tb_file, all_threads=True)
        deadline = float(_LOC2_ENV.get("LOC2_APP_DEADLINE", "0") or 0)
        if deadline > 0:
            faulthandler.dump_traceback_later(deadline, exit=True, file=_loc2_app_start.tb_file)
    runner = _Loc2AppRunner()
    _loc2_app_start.runner = runner  # keep it (and its timer) alive
    runner.write_report()
    QTimer.singleShot(0, runner.run)  # runs once QGIS's event loop is running


try:
    _loc2_app_start()
except BaseException:  # noqa: B036 - never let QGIS show an error dialog and wait for a click
    _loc2_err = traceback.format_exc()
    sys.stderr.write(_loc2_err)
    try:
        with open(os.environ["LOC2_APP_REPORT"], "w", encoding="utf-8") as _f:
            json.dump({"status": "runner-error", "error": _loc2_err}, _f)
    finally:
        os._exit(2)
