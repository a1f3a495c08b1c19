"""The plugin's side of the worker protocol (``core/worker/protocol.py``): start, talk to, stop the engine.

:class:`EngineWorker` owns one worker process. It is thread-safe and blocking by design: the dialog's
background task and a Processing algorithm (on its own thread, or on the main thread in ``qgis_process``)
both call :meth:`EngineWorker.run_job`, which sends a request and returns when the job has ended, passing
each event to a callback on the caller's thread. The process stays alive between jobs, so the model is
loaded once; it exits with QGIS (its stdin closes), after its idle timeout, or at plugin unload.

Faults are messages, never a QGIS crash: an engine that cannot start, a broken engine environment, a
worker that dies mid-job (results already written stay in the output file) and a cancel the engine does
not honour within a second (the worker is then stopped) all end the job with a :class:`JobOutcome` that
says what happened and what to do.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import queue
import subprocess  # nosec B404 - the engine is started with an argument list, never a shell
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...core.worker import protocol as p
from .environment import NO_ENGINE_MESSAGE, EngineLocation, engine_environment, worker_command

START_TIMEOUT_S = 60.0  # from start to the worker's "ready"
CANCEL_GRACE_S = 0.75  # a job not ended this long after cancel: the worker is stopped
IDLE_TIMEOUT_S = 900.0
STDERR_LINES = 200

OUTCOME_DONE = "done"
OUTCOME_CANCELLED = "cancelled"
OUTCOME_FAILED = "failed"  # the engine refused the job: bad input, busy, a bug
OUTCOME_NO_ENGINE = "no_engine"  # no engine interpreter, it could not start, or it lacks a package
OUTCOME_CRASHED = "crashed"  # the worker process died during the job


class EngineError(Exception):
    """The engine cannot be used (not installed, cannot start); the message says what to do."""


@dataclass
class JobOutcome:
    """How a job ended.

    Attributes:
        status: ``OUTCOME_*``.
        message: for people ('' when the job simply finished).
        summary: the ``done`` event's summary, or the ``info`` event's info (inspect, describe).
        results: the ``result`` events' photo summaries received, in order.
        detail: a traceback or the worker's last log lines, for the QGIS log.
    """

    status: str
    message: str = ""
    summary: dict[str, Any] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.status == OUTCOME_DONE


class EngineWorker:
    """One engine worker process (started on first use, restarted after it exits)."""

    def __init__(self, idle_timeout_s: float = IDLE_TIMEOUT_S) -> None:
        self._location: EngineLocation | None = None  # where the running worker's Python is
        self.idle_timeout_s = idle_timeout_s
        self._process: subprocess.Popen | None = None
        self._events: queue.Queue = queue.Queue()
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._write_lock = threading.Lock()
        self._job_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._ids = itertools.count(1)
        self.ready: dict[str, Any] = {}

    # ------------------------------------------------------------------ process
    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running else None

    def stderr_tail(self, lines: int = 20) -> str:
        return "\n".join(list(self._stderr)[-lines:])

    @staticmethod
    def usable(location: EngineLocation | None) -> EngineLocation:
        """``location`` when it can be started; EngineError saying what to do when there is none or it is
        not an interpreter."""
        if location is None:
            raise EngineError(NO_ENGINE_MESSAGE)
        problem = location.problem()
        if problem:
            raise EngineError(f"The Loc2 engine cannot start: {problem}. {NO_ENGINE_MESSAGE}")
        return location

    def start(self, location: EngineLocation | None) -> dict[str, Any]:
        """Have a worker of ``location``'s Python running (started, or restarted when another engine was
        chosen) and return its ``ready`` event. ``location`` comes from ``find_engine()`` called on the
        main thread: QGIS's settings are not read on task threads."""
        with self._state_lock:
            location = self.usable(location)
            if self.running and location == self._location:
                return self.ready
            if self.running:
                self.shutdown()
            self._close_pipes()
            self._location = location
            command = worker_command(location.python, self.idle_timeout_s)
            self._events = queue.Queue()
            self._stderr.clear()
            try:
                process = subprocess.Popen(  # nosec B603 - argument list, the user's engine interpreter
                    command,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=engine_environment(),
                    creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
                )
            except OSError as exc:
                raise EngineError(
                    f"The Loc2 engine ({location.python}, from {location.source}) could not start: {exc}"
                ) from exc
            self._process = process
            threading.Thread(target=self._read_events, args=(process, self._events), daemon=True).start()
            threading.Thread(target=self._read_stderr, args=(process,), daemon=True).start()
            ready = self._wait_ready(process, location)
            self.ready = ready
            return ready

    def _wait_ready(self, process: subprocess.Popen, location: EngineLocation) -> dict[str, Any]:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                event = self._events.get(timeout=0.1)
            except queue.Empty:
                continue
            if event is None:  # stdout closed: the interpreter exited
                process.wait(5)
                raise EngineError(
                    f"The Loc2 engine ({location.python}, from {location.source}) exited at start "
                    f"(exit code {process.returncode}):\n{self.stderr_tail()}"
                )
            if event.get("event") == p.EVENT_READY:
                if event.get("protocol") != p.PROTOCOL_VERSION:
                    self.kill()
                    raise EngineError(
                        f"The Loc2 engine speaks protocol {event.get('protocol')}, this plugin "
                        f"{p.PROTOCOL_VERSION}: reinstall the plugin"
                    )
                return event
        self.kill()
        raise EngineError(
            f"The Loc2 engine ({location.python}) did not answer within {START_TIMEOUT_S:.0f} s:\n"
            f"{self.stderr_tail()}"
        )

    def _read_events(self, process: subprocess.Popen, events: queue.Queue) -> None:
        """Reader thread: protocol lines → ``events``; ``None`` when the worker's stdout closes."""
        assert process.stdout is not None  # nosec B101 - Popen was given stdout=PIPE
        for line in iter(process.stdout.readline, b""):
            try:
                events.put(p.decode(line))
            except p.ProtocolError as exc:
                self._stderr.append(f"(not a protocol line: {exc})")
        events.put(None)

    def _read_stderr(self, process: subprocess.Popen) -> None:
        assert process.stderr is not None  # nosec B101 - Popen was given stderr=PIPE
        for line in iter(process.stderr.readline, b""):
            self._stderr.append(line.decode("utf-8", errors="replace").rstrip())

    def _close_pipes(self) -> None:
        """Close an exited worker's pipes (its reader threads have seen their end)."""
        process = self._process
        if process is None or process.poll() is None:
            return
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    pipe.close()

    def send(self, message: dict[str, Any]) -> None:
        """Write one request; EngineError when the worker is gone."""
        process = self._process
        if process is None or process.stdin is None:
            raise EngineError("the Loc2 engine is not running")
        with self._write_lock:
            try:
                process.stdin.write(p.encode(message))
                process.stdin.flush()
            except (BrokenPipeError, OSError, ValueError) as exc:
                raise EngineError(f"the Loc2 engine is gone ({exc})") from exc

    def kill(self) -> None:
        """Stop the worker now (results already written stay in their files)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)

    def shutdown(self, wait_s: float = 3.0) -> None:
        """Ask the worker to exit (cancelling a job), and stop it if it does not within ``wait_s``."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        try:
            self.send({"cmd": p.CMD_SHUTDOWN})
            process.wait(wait_s)
        except (EngineError, subprocess.TimeoutExpired):
            self.kill()

    # ------------------------------------------------------------------ jobs
    def run_job(
        self,
        location: EngineLocation | None,
        cmd: str,
        fields: dict[str, Any],
        on_event: Callable[[dict[str, Any]], None] | None = None,
        is_canceled: Callable[[], bool] | None = None,
    ) -> JobOutcome:
        """Run one job on ``location``'s engine to its end (see the module docstring); never raises for
        engine faults."""
        with self._job_lock:
            try:
                self.start(location)
            except EngineError as exc:
                return JobOutcome(OUTCOME_NO_ENGINE, str(exc), detail=self.stderr_tail())
            job = f"j{next(self._ids)}"
            try:
                self.send({"cmd": cmd, "job": job, **fields})
            except EngineError as exc:
                return self._crashed(job, [], str(exc))
            return self._follow(job, on_event, is_canceled)

    def _follow(
        self,
        job: str,
        on_event: Callable[[dict[str, Any]], None] | None,
        is_canceled: Callable[[], bool] | None,
    ) -> JobOutcome:
        results: list[dict[str, Any]] = []
        cancel_sent_at: float | None = None
        while True:
            if is_canceled is not None and is_canceled() and cancel_sent_at is None:
                cancel_sent_at = time.monotonic()
                with contextlib.suppress(EngineError):
                    self.send({"cmd": p.CMD_CANCEL, "job": job})
            if cancel_sent_at is not None and time.monotonic() - cancel_sent_at > CANCEL_GRACE_S:
                self.kill()  # the engine is inside a long step: stop it, the files keep what was written
                return JobOutcome(
                    OUTCOME_CANCELLED,
                    "Cancelled (the engine was stopped; the results written so far are kept).",
                    results=results,
                )
            try:
                event = self._events.get(timeout=0.05)
            except queue.Empty:
                continue
            if event is None:
                return self._crashed(job, results)
            if event.get("job") not in (job, None):
                continue  # a late event of an earlier job
            kind = event.get("event")
            if kind == p.EVENT_RESULT:
                results.append(event.get("result") or {})
            if on_event is not None and kind not in (p.EVENT_READY, p.EVENT_PONG):
                on_event(event)
            if kind == p.EVENT_DONE:
                summary = event.get("summary") or {}
                status = OUTCOME_CANCELLED if summary.get("cancelled") else OUTCOME_DONE
                return JobOutcome(status, "Cancelled." if summary.get("cancelled") else "", summary, results)
            if kind == p.EVENT_INFO:
                return JobOutcome(OUTCOME_DONE, "", event.get("info") or {}, results)
            if kind == p.EVENT_FAILED:
                detail = event.get("detail") or ""
                status = OUTCOME_NO_ENGINE if event.get("kind") == p.KIND_ENGINE else OUTCOME_FAILED
                return JobOutcome(status, str(event.get("message")), {}, results, detail)

    def _crashed(self, job: str, results: list[dict[str, Any]], reason: str = "") -> JobOutcome:
        process = self._process
        code = None
        if process is not None:
            try:
                code = process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
                code = process.returncode
        time.sleep(0.1)  # let the stderr reader take the last lines
        tail = self.stderr_tail()
        message = (
            f"The Loc2 engine stopped unexpectedly during job {job} (exit code {code}). "
            f"{len(results)} photo(s) had been written and are kept; run again (resume) to go on."
        )
        if reason:
            message += f" ({reason})"
        if tail:
            message += f"\nIts last messages:\n{tail}"
        return JobOutcome(OUTCOME_CRASHED, message, results=results, detail=tail)


_shared: EngineWorker | None = None
_shared_lock = threading.Lock()


def shared_worker() -> EngineWorker:
    """The plugin's one worker (the dialog and Processing share it, and so the loaded model)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = EngineWorker()
        return _shared


def shutdown_shared_worker() -> None:
    """Stop the shared worker (plugin unload, a new engine chosen)."""
    global _shared
    with _shared_lock:
        worker, _shared = _shared, None
    if worker is not None:
        worker.shutdown()
