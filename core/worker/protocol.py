"""The worker protocol: JSON lines between the QGIS plugin (parent) and the engine (``loc2 worker``).

Standard library only: the plugin imports this module too, so both sides share one definition.

Transport: the parent writes requests to the worker's stdin and reads events from its stdout, one JSON
object per line, ASCII only (non-ASCII characters escaped), UTF-8. The worker's stderr carries its log
(never protocol). The worker speaks only over its parent's pipes: no socket, no file, no port.

Requests (parent → worker); ``job`` is an id the parent chooses, echoed by every event of that job:

* ``{"cmd": "localize", "job": J, "request": LocalizeRequest}`` — localize photos, writing the results
  photo by photo into ``request.output`` (``core.types.LocalizeRequest.to_dict``).
* ``{"cmd": "export", "job": J, "source": PATH, "target": PATH, "format": F|null}`` — copy a result
  output into another format (e.g. GeoPackage → Shapefile), replacing the target.
* ``{"cmd": "inspect", "job": J, "photo": PATH}`` — a photo's metadata (size, kind, EXIF prior).
* ``{"cmd": "describe", "job": J, "device": "auto"|"cuda"|"cpu"}`` — engine and device information.
* ``{"cmd": "cancel", "job": J}`` — stop job J after the current step; results written so far are kept.
* ``{"cmd": "ping"}`` → ``{"event": "pong"}``.
* ``{"cmd": "shutdown"}`` — cancel the running job, then exit (``{"event": "bye"}``). Closing the
  worker's stdin does the same (the parent exited or crashed).

Events (worker → parent):

* ``{"event": "ready", "protocol": 1, "version": V, "pid": N, "python": "3.11.2", "executable": PATH}``
  — once, first.
* ``{"event": "progress", "job": J, "done": N, "total": M, "stage": S, "fraction": 0..1, "photo": P}``
  — ``stage`` is ``model`` (loading it), a photo's stage (``read``, ``depth``, ``backbone``, ``match``,
  ``solve``, ``figure``) or ``done``; ``fraction`` is the share of the whole job done.
* ``{"event": "result", "job": J, "result": {...}}`` — one photo done and already written to the output
  (``result_summary``: photo, status, message, position, heading, inliers, confidence, figure).
* ``{"event": "done", "job": J, "summary": {...}}`` — a localize or export job ended (``core.job.
  JobSummary`` fields: output, sources, total, localized, failed, skipped, cancelled, seconds).
* ``{"event": "info", "job": J, "info": {...}}`` — the answer to ``inspect`` or ``describe``.
* ``{"event": "failed", "job": J, "kind": K, "message": M, "detail": D}`` — the job ended without doing
  its work: ``kind`` is ``input`` (bad input: ``message`` says which and what is wrong), ``busy``
  (another job is running), ``engine`` (the engine's Python lacks a package: no job can run until it is
  installed), ``internal`` (a bug: ``detail`` holds the traceback).
* ``{"event": "error", "kind": "protocol", "message": M}`` — a line that is not a valid request (no job
  ended); the worker goes on reading.
* ``{"event": "bye"}`` — last, before the worker exits.

Every job gets exactly one of ``done``, ``info`` and ``failed``, and nothing after it.
"""

from __future__ import annotations

import json
import math
from typing import Any

PROTOCOL_VERSION = 1

CMD_LOCALIZE = "localize"
CMD_EXPORT = "export"
CMD_INSPECT = "inspect"
CMD_DESCRIBE = "describe"
CMD_CANCEL = "cancel"
CMD_PING = "ping"
CMD_SHUTDOWN = "shutdown"
JOB_COMMANDS = (CMD_LOCALIZE, CMD_EXPORT, CMD_INSPECT, CMD_DESCRIBE)
COMMANDS = (*JOB_COMMANDS, CMD_CANCEL, CMD_PING, CMD_SHUTDOWN)

EVENT_READY = "ready"
EVENT_PROGRESS = "progress"
EVENT_RESULT = "result"
EVENT_DONE = "done"
EVENT_INFO = "info"
EVENT_FAILED = "failed"
EVENT_ERROR = "error"
EVENT_PONG = "pong"
EVENT_BYE = "bye"
TERMINAL_EVENTS = (EVENT_DONE, EVENT_INFO, EVENT_FAILED)

KIND_INPUT = "input"
KIND_BUSY = "busy"
KIND_INTERNAL = "internal"
KIND_PROTOCOL = "protocol"
KIND_ENGINE = "engine"  # the engine's Python cannot run jobs (a package missing): nothing else can work

MAX_LINE_BYTES = 16 * 1024 * 1024  # a longer line is refused, not parsed


class ProtocolError(ValueError):
    """A line that is not a valid message; the text says why."""


def _json_safe(value: Any) -> Any:
    """NaN and ±inf (not JSON) become None; containers are converted recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def encode(message: dict[str, Any]) -> bytes:
    """One message as a line: ASCII JSON and a newline."""
    return (json.dumps(_json_safe(message), ensure_ascii=True, allow_nan=False) + "\n").encode("ascii")


def decode(line: bytes | str) -> dict[str, Any]:
    """One line as a message (a JSON object); ProtocolError when it is not one."""
    if isinstance(line, bytes):
        if len(line) > MAX_LINE_BYTES:
            raise ProtocolError(f"a line of {len(line)} bytes is longer than {MAX_LINE_BYTES}")
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"the line is not UTF-8 ({exc})") from None
    text = line.strip()
    if not text:
        raise ProtocolError("an empty line")
    try:
        message = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(
            f"the line is not JSON ({exc.msg} at column {exc.colno}): {text[:120]!r}"
        ) from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a message must be a JSON object, got {type(message).__name__}: {text[:120]!r}")
    return message


def check_request(message: dict[str, Any]) -> tuple[str, str | None]:
    """The command and job id of a request; ProtocolError naming what is missing or unknown."""
    cmd = message.get("cmd")
    if not isinstance(cmd, str):
        raise ProtocolError(f"a request needs a 'cmd' string (one of {', '.join(COMMANDS)})")
    if cmd not in COMMANDS:
        raise ProtocolError(f"unknown command {cmd!r} (known: {', '.join(COMMANDS)})")
    job = message.get("job")
    if cmd in (*JOB_COMMANDS, CMD_CANCEL) and (not isinstance(job, str) or not job):
        raise ProtocolError(f"the {cmd!r} request needs a 'job' id (a non-empty string)")
    required = {
        CMD_LOCALIZE: ("request",),
        CMD_EXPORT: ("source", "target"),
        CMD_INSPECT: ("photo",),
    }.get(cmd, ())
    missing = [key for key in required if key not in message]
    if missing:
        raise ProtocolError(f"the {cmd!r} request lacks {', '.join(missing)}")
    return cmd, job
