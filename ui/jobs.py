"""A QGIS background task that runs one engine job through the shared worker (``engine/client.py``).

``run()`` executes on a QGIS worker thread and only waits on the engine process (which does the work in
its own process): it touches no project, layer or widget. Progress events become ``setProgress`` (so the
task manager and the dialog's bar follow the stages), and ``finished()`` on the main thread emits
``done`` with the :class:`~loc2.ui.engine.client.JobOutcome`.
"""

from __future__ import annotations

import contextlib
from typing import Any

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from .engine.client import OUTCOME_CANCELLED, OUTCOME_FAILED, JobOutcome, shared_worker
from .engine.environment import find_engine

LOG_TAG = "Loc2"

# what the progress bar says for each stage of a job
STAGE_TEXT = {
    "model": "loading the model",
    "read": "reading the photo",
    "depth": "depth",
    "backbone": "features of the photo",
    "match": "matching with the orthophoto",
    "solve": "solving the pose",
    "figure": "drawing the match figure",
    "done": "writing the results",
}


def progress_text(event: dict[str, Any]) -> str:
    """A progress event as "photo 2 of 8: matching with the orthophoto"."""
    total = int(event.get("total") or 0)
    done = int(event.get("done") or 0)
    stage = STAGE_TEXT.get(str(event.get("stage")), str(event.get("stage")))
    if total > 1 and event.get("stage") not in ("model", "done"):
        return f"photo {min(done + 1, total)} of {total}: {stage}"
    return stage


class EngineTask(QgsTask):
    """Run ``cmd`` with ``fields`` on the engine in the background.

    Signals: ``engine_event(dict)`` for each engine event (queued to the receiver's thread), ``done(object)``
    with the JobOutcome once the task ended (main thread). ``outcome`` holds it too.
    """

    engine_event = pyqtSignal(object)
    done = pyqtSignal(object)

    def __init__(self, description: str, cmd: str, fields: dict[str, Any]) -> None:
        super().__init__(description, QgsTask.Flag.CanCancel)
        self.cmd = cmd
        self.fields = fields
        self.location = find_engine()  # here, on the main thread: QGIS's settings are not read in run()
        self.outcome: JobOutcome | None = None

    def run(self) -> bool:
        """Worker thread: wait for the engine job; never raises."""
        try:
            self.outcome = self.run_job(self.cmd, self.fields, self._on_event)
        except Exception as exc:  # noqa: BLE001 - an exception escaping run() can take QGIS down
            self.outcome = JobOutcome(OUTCOME_FAILED, f"unexpected error: {type(exc).__name__}: {exc}")
        return self.outcome.ok

    def run_job(self, cmd: str, fields: dict[str, Any], on_event=None) -> JobOutcome:
        """A job on the shared worker, cancelled with this task (worker thread)."""
        return shared_worker().run_job(self.location, cmd, fields, on_event, self.isCanceled)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "progress":
            self.setProgress(100.0 * float(event.get("fraction") or 0.0))
        self.engine_event.emit(event)

    def finished(self, ok: bool) -> None:  # noqa: FBT001 - QgsTask's signature
        """Main thread: log problems, then emit ``done``."""
        if self.outcome is None:  # cancelled before it started
            self.outcome = JobOutcome(OUTCOME_CANCELLED, "Cancelled before it started.")
        outcome = self.outcome
        if not outcome.ok and outcome.message:
            QgsMessageLog.logMessage(
                f"{self.description()}: {outcome.message}\n{outcome.detail}".strip(),
                LOG_TAG,
                Qgis.MessageLevel.Warning,
            )
        self.done.emit(outcome)


class TaskKeeper:
    """The background tasks a window started, kept alive while they run (QGIS's task manager does not
    hold the Python object) and stopped together when the window goes."""

    def __init__(self) -> None:
        self.running: list[QgsTask] = []

    def start(self, task: EngineTask, on_done) -> EngineTask:
        """Queue ``task``; ``on_done(outcome)`` runs on the main thread when it ends."""
        self.running.append(task)

        def finished(outcome: JobOutcome) -> None:
            if task in self.running:
                self.running.remove(task)
            on_done(outcome)

        task.done.connect(finished)
        QgsApplication.taskManager().addTask(task)
        return task

    @staticmethod
    def stop(tasks: list[QgsTask], wait_ms: int = 5000) -> None:
        """Cancel ``tasks`` and wait for them to end: a task thread still running while QGIS exits crashes
        it (seen with QGIS 3.40). Cancelled, a task ends within about a second."""
        for task in tasks:
            with contextlib.suppress(RuntimeError):  # already deleted by the task manager
                task.cancel()
        for task in tasks:
            with contextlib.suppress(RuntimeError):
                task.waitForFinished(wait_ms)
