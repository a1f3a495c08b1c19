"""The dialog's "Engine" box: which Python runs the engine, what it runs on, and "Install engine"."""

from __future__ import annotations

from collections.abc import Callable

from qgis.core import Qgis, QgsApplication
from qgis.gui import QgsCollapsibleGroupBox, QgsFileWidget
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QCheckBox, QFormLayout, QLabel, QMessageBox, QPlainTextEdit, QPushButton

from ...core.worker import protocol
from ..engine.client import JobOutcome, shutdown_shared_worker
from ..engine.environment import NO_ENGINE_MESSAGE, configured_python, find_engine, set_configured_python
from ..engine.installer import EngineInstallTask, InstallError, has_nvidia_gpu, make_plan
from ..jobs import EngineTask, TaskKeeper
from .widgets import widget_row


class EngineBox(QgsCollapsibleGroupBox):
    """The engine's status line, its Python, and the installer of the managed environment.

    Signals: ``message(text, level, duration_s)``; ``install_progress(percent, label)``;
    ``busy_changed()`` when an install starts or ends. ``installer`` is the running install, or None.
    """

    message = pyqtSignal(str, object, int)
    install_progress = pyqtSignal(int, str)
    busy_changed = pyqtSignal()

    def __init__(self, tasks: TaskKeeper, device: Callable[[], str], parent=None) -> None:
        super().__init__("Engine", parent)
        self.tasks = tasks
        self.device = device
        self.installer: EngineInstallTask | None = None
        self.described = False
        self.setCollapsed(find_engine() is not None)  # open where the engine still has to be installed
        self._build()
        self.python_widget.setFilePath(configured_python())
        self.python_widget.fileChanged.connect(self._python_changed)
        self.cuda_check.setChecked(has_nvidia_gpu())

    def _build(self) -> None:
        form = QFormLayout(self)
        self.label = QLabel(NO_ENGINE_MESSAGE if find_engine() is None else "Checking the engine…", self)
        self.label.setWordWrap(True)
        form.addRow("Status", self.label)
        self.python_widget = QgsFileWidget(self)
        self.python_widget.setToolTip(
            "A Python interpreter that has the engine's packages (torch, rasterio, …); empty: the managed "
            "environment that 'Install engine' makes in your QGIS profile"
        )
        form.addRow("Engine Python", self.python_widget)
        self.install_button = QPushButton("Install engine", self)
        self.install_button.setToolTip("Make a Python environment with PyTorch for Loc2 in your QGIS profile")
        self.install_button.clicked.connect(self.install)
        self.check_button = QPushButton("Check engine", self)
        self.check_button.clicked.connect(self.describe)
        self.cuda_check = QCheckBox("with CUDA (NVIDIA GPU)", self)
        form.addRow("", widget_row(self.install_button, self.cuda_check, self.check_button))
        self.install_log = QPlainTextEdit(self)
        self.install_log.setReadOnly(True)
        self.install_log.setMaximumBlockCount(2000)
        self.install_log.setFixedHeight(110)
        self.install_log.setVisible(False)
        form.addRow(self.install_log)

    def set_busy(self, busy: bool) -> None:  # noqa: FBT001 - a state, not an option
        self.install_button.setEnabled(not busy and self.installer is None)

    # ------------------------------------------------------------------ status
    def describe(self, *_args) -> None:
        """Ask the engine what it runs on (status line); says how to install it when there is none."""
        self.described = True
        location = find_engine()
        if location is None:
            self.label.setText(NO_ENGINE_MESSAGE)
            return
        self.label.setText(f"Starting the engine ({location.python})…")
        task = EngineTask("Loc2: check the engine", protocol.CMD_DESCRIBE, {"device": self.device()})
        self.tasks.start(task, self._described)

    def _described(self, outcome: JobOutcome) -> None:
        if outcome.ok:
            info = outcome.summary
            self.label.setText(
                f"Python {info.get('python')}, PyTorch {info.get('torch')}; runs on: {info.get('device')} "
                f"({info.get('executable')})"
            )
        else:
            self.label.setText(outcome.message)

    def _python_changed(self, path: str) -> None:
        set_configured_python(path)
        shutdown_shared_worker()  # the next job starts the chosen engine
        self.describe()

    # ------------------------------------------------------------------ install
    def install(self, *_args, confirm: bool = True, base_python: str = "") -> None:
        """Make the managed engine environment (asks first; ``confirm=False`` in tests)."""
        if self.installer is not None:
            return
        try:
            plan = make_plan(base_python, cuda=self.cuda_check.isChecked())
        except InstallError as exc:
            self.message.emit(str(exc), Qgis.MessageLevel.Critical, 0)
            return
        if confirm:
            answer = QMessageBox.question(
                self, "Install the Loc2 engine", plan.describe() + "\n\nInstall now?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        shutdown_shared_worker()
        task = EngineInstallTask(plan)
        task.line.connect(self.install_log.appendPlainText)
        task.step.connect(self._install_step)
        task.done.connect(self._installed)
        self.installer = task
        self.install_log.clear()
        self.install_log.setVisible(True)
        self.setCollapsed(False)
        self.message.emit(plan.describe(), Qgis.MessageLevel.Info, 0)
        self.busy_changed.emit()
        QgsApplication.taskManager().addTask(task)

    def _install_step(self, label: str, index: int, count: int) -> None:
        self.install_progress.emit(int(100 * index / count), label)
        self.label.setText(f"{label}…")

    def _installed(self, ok: bool, message: str) -> None:  # noqa: FBT001 - signal signature
        size = self.installer.downloaded_mb if self.installer is not None else 0.0
        self.installer = None
        self.install_progress.emit(100 if ok else 0, "")
        self.busy_changed.emit()
        if ok:
            downloaded = f" ({size:,.0f} MB downloaded)" if size else ""
            self.message.emit(message + downloaded, Qgis.MessageLevel.Success, 0)
            self.python_widget.setFilePath("")  # the managed environment from now on
            self.describe()
        else:
            self.message.emit(message, Qgis.MessageLevel.Critical, 0)
