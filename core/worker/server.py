"""The engine as a long-lived process that the QGIS plugin drives (``protocol.py``; ``loc2 worker``).

The worker keeps the last model loaded between jobs (the published ViT-L takes seconds to load and 1.2 GB
of GPU memory), runs one localize or export job at a time on a job thread while its main thread keeps
reading requests (so ``cancel`` is heard at once), and exits when told to, when its stdin closes (QGIS
exited or crashed) or after ``--idle-timeout`` seconds without a request.

Nothing but protocol lines reaches the real stdout: at start the worker keeps a private copy of it and
points file descriptor 1 at stderr, so a stray ``print`` or a C library's message cannot corrupt the
protocol.
"""

from __future__ import annotations

import os
import platform
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import Loc2Error
from . import protocol as p

DEFAULT_IDLE_TIMEOUT_S = 900.0
_POLL_S = 0.25
_EOF = object()
_TOO_LONG = object()


def engine_version() -> str:
    """The plugin/engine version from ``metadata.txt`` beside the engine ('' when it cannot be read)."""
    path = Path(__file__).resolve().parents[2] / "metadata.txt"
    try:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("version="):
                return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return ""


def result_summary(result: Any, figures_dir: Path | None) -> dict[str, Any]:
    """What the plugin shows of one photo's result (the file holds everything)."""
    figure = None
    if figures_dir is not None:
        path = Path(figures_dir) / f"{Path(result.photo).stem}.png"
        figure = str(path) if path.is_file() else None
    keys = (
        "photo", "status", "message", "x", "y", "lon", "lat", "heading_deg", "shift_m", "scale",
        "num_inliers", "inlier_ratio", "confidence", "prior_lon", "prior_lat", "prior_heading_deg",
        "runtime_s", "model", "depth", "solver", "precision",
    )  # fmt: skip
    return {**{k: getattr(result, k) for k in keys}, "ok": bool(result.ok), "figure": figure}


class Worker:
    """Handles requests and emits events; one job at a time on a job thread."""

    def __init__(self, out: BinaryIO, idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S) -> None:
        self._out = out
        self._out_lock = threading.Lock()
        self.idle_timeout_s = idle_timeout_s
        self._job_id: str | None = None
        self._job_thread: threading.Thread | None = None
        self._cancel = threading.Event()
        self._running = threading.Event()  # a localize or export job is on the job thread
        self._model: tuple[tuple, Any] | None = None  # (key, Localizer) of the last job
        self._last_activity = time.monotonic()

    # ------------------------------------------------------------------ events
    def emit(self, event: str, **fields: Any) -> None:
        line = p.encode({"event": event, **fields})
        with self._out_lock:
            try:
                self._out.write(line)
                self._out.flush()
            except (BrokenPipeError, ValueError, OSError):
                pass  # the parent is gone; the reader sees EOF and the worker exits

    # ------------------------------------------------------------------ requests
    @property
    def busy(self) -> bool:
        return self._running.is_set()

    @property
    def idle_s(self) -> float:
        return 0.0 if self.busy else time.monotonic() - self._last_activity

    def handle(self, line: Any) -> bool:
        """Handle one input line; False when the worker should exit."""
        self._last_activity = time.monotonic()
        if line is _TOO_LONG:
            self.emit(p.EVENT_ERROR, kind=p.KIND_PROTOCOL, message=f"a line longer than {p.MAX_LINE_BYTES}")
            return True
        try:
            message = p.decode(line)
            cmd, job = p.check_request(message)
        except p.ProtocolError as exc:
            self.emit(p.EVENT_ERROR, kind=p.KIND_PROTOCOL, message=str(exc))
            return True
        if cmd == p.CMD_SHUTDOWN:
            return False
        if cmd == p.CMD_PING:
            self.emit(p.EVENT_PONG)
        elif cmd == p.CMD_CANCEL:
            if job == self._job_id:
                self._cancel.set()
        elif cmd in (p.CMD_INSPECT, p.CMD_DESCRIBE):
            self._answer(job, cmd, message)
        elif self.busy:
            self.emit(
                p.EVENT_FAILED,
                job=job,
                kind=p.KIND_BUSY,
                message=f"the engine is busy with job {self._job_id}: cancel it or wait for it to end",
            )
        else:
            self._start(job, cmd, message)
        return True

    def _start(self, job: str, cmd: str, message: dict[str, Any]) -> None:
        self._job_id = job
        self._cancel.clear()
        self._running.set()
        target = self._localize if cmd == p.CMD_LOCALIZE else self._export
        self._job_thread = threading.Thread(target=self._guarded, args=(job, target, message), daemon=True)
        self._job_thread.start()

    def _guarded(self, job: str, target: Callable[[str, dict], dict], message: dict[str, Any]) -> None:
        """Run a job; whatever happens, it ends with exactly one terminal event, sent once the worker is
        free for the next job (a request sent on hearing it is never refused as busy)."""
        try:
            check_engine_imports()
            terminal = {"event": p.EVENT_DONE, "job": job, "summary": target(job, message)}
        except Loc2Error as exc:
            terminal = {"event": p.EVENT_FAILED, "job": job, "kind": _failure_kind(exc), "message": str(exc)}
        except Exception as exc:  # noqa: BLE001 - a bug must end the job, not the worker
            terminal = {
                "event": p.EVENT_FAILED,
                "job": job,
                "kind": p.KIND_INTERNAL,
                "message": f"internal error: {type(exc).__name__}: {exc}",
                "detail": traceback.format_exc(),
            }
        _release_memory()
        self._last_activity = time.monotonic()
        self._running.clear()
        self.emit(terminal.pop("event"), **terminal)

    def _answer(self, job: str, cmd: str, message: dict[str, Any]) -> None:
        try:
            check_engine_imports()
            info = self._inspect(message) if cmd == p.CMD_INSPECT else self.describe(message)
        except Loc2Error as exc:
            self.emit(p.EVENT_FAILED, job=job, kind=_failure_kind(exc), message=str(exc))
            return
        except Exception as exc:  # noqa: BLE001
            self.emit(
                p.EVENT_FAILED,
                job=job,
                kind=p.KIND_INTERNAL,
                message=f"internal error: {type(exc).__name__}: {exc}",
                detail=traceback.format_exc(),
            )
            return
        self.emit(p.EVENT_INFO, job=job, info=info)

    # ------------------------------------------------------------------ jobs
    def _localizer(self, options: Any) -> Any:
        """The model for ``options``: the last one when it is the same, else loaded (the old one freed)."""
        from ..pipeline.batch import load_localizer, model_key

        key = model_key(options)
        if self._model is None or self._model[0] != key:
            self._model = None
            _free_gpu_memory()
            self._model = (key, load_localizer(options))
        return self._model[1]

    def _localize(self, job: str, message: dict[str, Any]) -> dict[str, Any]:
        from ..pipeline.job import run_localize
        from ..types import LocalizeRequest

        request_values = message["request"]
        if not isinstance(request_values, dict):
            raise Loc2Error("the 'request' of a localize command must be an object")
        request = LocalizeRequest.from_dict(request_values)
        figures = request.options.figures_dir
        summary = run_localize(
            request,
            on_result=lambda res: self.emit(p.EVENT_RESULT, job=job, result=result_summary(res, figures)),
            on_progress=lambda progress: self.emit(p.EVENT_PROGRESS, job=job, **asdict(progress)),
            is_canceled=self._cancel.is_set,
            get_localizer=self._localizer,
        )
        return asdict(summary)

    def _export(self, job: str, message: dict[str, Any]) -> dict[str, Any]:
        from ..output.export import convert_output
        from ..types import MODE_OVERWRITE

        t0 = time.perf_counter()
        writer = convert_output(
            str(message["source"]), str(message["target"]), message.get("format"), mode=MODE_OVERWRITE
        )
        return {"output": str(writer.path), "sources": writer.sources(), "seconds": time.perf_counter() - t0}

    @staticmethod
    def _inspect(message: dict[str, Any]) -> dict[str, Any]:
        from ..inputs.photos import read_photo

        photo = read_photo(str(message["photo"]))
        return {
            "photo": str(photo.path),
            "width": photo.width,
            "height": photo.height,
            "panorama": photo.is_panorama,
            "lon": photo.lon,
            "lat": photo.lat,
            "heading_deg": photo.heading_deg,
            "horizontal_error_m": photo.horizontal_error_m,
        }

    @staticmethod
    def describe(message: dict[str, Any]) -> dict[str, Any]:
        import torch

        from ..model.runtime import describe_device

        device = str(message.get("device", "auto"))
        return {
            "version": engine_version(),
            "python": platform.python_version(),
            "executable": sys.executable,
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
            "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
            "device": describe_device(device),
            "threads": torch.get_num_threads(),
        }

    # ------------------------------------------------------------------ end
    def stop(self, wait_s: float = 30.0) -> None:
        """Cancel the running job and wait for it (bounded), then say goodbye."""
        self._cancel.set()
        if self._job_thread is not None:
            self._job_thread.join(wait_s)
        self.emit(p.EVENT_BYE)


class EngineSetupError(Loc2Error):
    """The engine's Python cannot run jobs (a package missing): reported with kind ``engine``."""


def _failure_kind(exc: Loc2Error) -> str:
    return p.KIND_ENGINE if isinstance(exc, EngineSetupError) else p.KIND_INPUT


def check_engine_imports() -> None:
    """Import everything a job needs now; a package missing from the engine's Python is a Loc2Error that
    names it and the interpreter (the plugin shows it with what to do)."""
    try:
        from ..pipeline import job  # noqa: F401 - pulls in torch, rasterio, pyproj, shapely, geopandas, cv2, PIL
    except ImportError as exc:
        missing = exc.name or str(exc)
        raise EngineSetupError(
            f"the engine's Python ({sys.executable}) cannot import {missing!r} ({exc}): install the engine's "
            "packages into it (the Loc2 dialog's Install engine does), or choose another engine Python"
        ) from exc


def _free_gpu_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def _release_memory() -> None:
    """Between jobs, the freed memory the process kept for reuse goes back to the system (``runtime``)."""
    try:
        from ..model.runtime import release_freed_memory
    except ImportError:  # no torch in this Python: the job failed saying so
        return
    release_freed_memory()


def _read_lines(fd: int, lines: queue.Queue) -> None:
    """Reader thread: the lines of file descriptor ``fd`` into ``lines`` (an over-long line as
    ``_TOO_LONG``), ``_EOF`` at the end. Reads the descriptor itself: a thread blocked in a buffered
    reader would hold its lock and abort the interpreter's exit."""
    pending = b""
    skipping = False  # inside an over-long line, until its end
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            if skipping:
                skipping = False
                continue
            lines.put(line + b"\n")
        if len(pending) > p.MAX_LINE_BYTES:
            if not skipping:
                lines.put(_TOO_LONG)
            skipping, pending = True, b""
    lines.put(_EOF)


def serve(stdin_fd: int, out: BinaryIO, idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S) -> int:
    """Run the worker until shutdown, end of input or the idle timeout; returns the exit status."""
    worker = Worker(out, idle_timeout_s)
    worker.emit(
        p.EVENT_READY,
        protocol=p.PROTOCOL_VERSION,
        version=engine_version(),
        pid=os.getpid(),
        python=platform.python_version(),
        executable=sys.executable,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_read_lines, args=(stdin_fd, lines), daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=_POLL_S)
        except queue.Empty:
            if worker.idle_s > worker.idle_timeout_s:
                print(f"loc2 worker: idle for {worker.idle_timeout_s:.0f} s, exiting", file=sys.stderr)
                break
            continue
        if line is _EOF or not worker.handle(line):
            break
    worker.stop()
    return 0


def protocol_stdout() -> BinaryIO:
    """A private copy of stdout for protocol lines; file descriptor 1 then points at stderr."""
    sys.stdout.flush()
    private = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return private
