"""Install the missing Python packages into QGIS's Python in the background, from the dialog's button.

The command is :func:`dependencies.install_command` (pip into QGIS's own interpreter, ``--user``, numpy kept at
the major version QGIS already has). It runs in a ``QProcess``: QGIS stays responsive, pip's output is
streamed, and nothing is started through a shell.
"""

from __future__ import annotations

import importlib

from qgis.PyQt.QtCore import QObject, QProcess, pyqtSignal

from .dependencies import format_command, install_command, missing_packages

OUTPUT_TAIL_LINES = 12


class DependencyInstaller(QObject):
    """Runs one pip command; emits ``line`` for each output line and ``done(ok, message)`` at the end."""

    line = pyqtSignal(str)
    done = pyqtSignal(bool, str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.process: QProcess | None = None
        self.command: list[str] = []
        self.output: list[str] = []

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def start(self, command: list[str] | None = None) -> list[str]:
        """Start ``command`` (default: install what :func:`missing_packages` lists); returns the command."""
        if self.running:
            raise RuntimeError("an installation is already running")
        self.command = list(command or install_command(missing_packages()))
        self.output = []
        self.process = QProcess(self)
        self.process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        self.process.readyReadStandardOutput.connect(self._read)
        self.process.finished.connect(self._finished)
        self.process.errorOccurred.connect(self._error)
        self.process.start(self.command[0], self.command[1:])
        return self.command

    def cancel(self) -> None:
        if self.running:
            self.process.kill()

    def _read(self) -> None:
        text = bytes(self.process.readAllStandardOutput()).decode("utf-8", errors="replace")
        for line in text.splitlines():
            if line.strip():
                self.output.append(line)
                self.line.emit(line)

    def _finished(self, exit_code: int, exit_status) -> None:
        self._read()
        tail = "\n".join(self.output[-OUTPUT_TAIL_LINES:])
        if exit_status != QProcess.ExitStatus.NormalExit or exit_code != 0:
            self.done.emit(
                False,
                f"Installing failed (exit code {exit_code}) running:\n{format_command(self.command)}\n{tail}",
            )
            return
        importlib.invalidate_caches()
        still = [dist for _, dist in missing_packages()]
        if still:
            self.done.emit(False, f"pip finished but these are still missing: {', '.join(still)}\n{tail}")
        else:
            self.done.emit(True, "The packages are installed. Restart QGIS to use Loc2.")

    def _error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self.done.emit(False, f"Could not start {self.command[0]} (is it QGIS's Python?)")
