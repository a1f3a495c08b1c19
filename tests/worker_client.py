"""A client of ``loc2 worker`` for the tests: the worker started the way the plugin starts it
(``python -I core/__main__.py worker``), spoken to over its real pipes, its stdout read by a thread."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from loc2.core.worker import protocol as p

ROOT = Path(__file__).resolve().parents[1]
ENGINE_MAIN = ROOT / "core" / "__main__.py"


class Worker:
    """A worker process with a reader thread; ``lines`` keeps every stdout line as read, ``seen`` every
    event (``events`` is the queue the test takes them from)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None, stderr: int = subprocess.PIPE) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-I", str(ENGINE_MAIN), "worker", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,  # DEVNULL for long runs: nobody reads it
            env=env,
        )
        self.events: queue.Queue = queue.Queue()
        self.lines: list[bytes] = []
        self.seen: list[dict] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in iter(self.proc.stdout.readline, b""):
            self.lines.append(line)
            event = json.loads(line)
            self.seen.append(event)
            self.events.put(event)
        self.events.put(None)

    def send(self, message: dict | bytes) -> None:
        data = message if isinstance(message, bytes) else p.encode(message)
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def next(self, timeout: float = 60.0) -> dict | None:
        return self.events.get(timeout=timeout)

    def until(self, kind: str, job: str | None = None, timeout: float = 120.0) -> tuple[dict, list[dict]]:
        """The first event of ``kind`` (for ``job``), and every event before it."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            event = self.next(max(0.1, deadline - time.monotonic()))
            assert event is not None, f"the worker exited before {kind}: {seen}"
            if event["event"] == kind and (job is None or event.get("job") == job):
                return event, seen
            seen.append(event)

    def pong(self, timeout: float = 60.0) -> None:
        """Ping and wait for the pong: the worker is alive and has read every earlier line."""
        self.send({"cmd": p.CMD_PING})
        self.until(p.EVENT_PONG, timeout=timeout)

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.stdin.close()
        return self.proc.wait(30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
