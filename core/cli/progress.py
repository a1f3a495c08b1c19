"""The command line's progress bar on stderr (``loc2 localize``, ``loc2 eval``)."""

from __future__ import annotations

import math
import sys
import time


class ProgressBar:
    """Count, bar, share done, elapsed time, time left and a short status text, on one line.

    On a terminal it redraws that line (at most every 0.1 s, and always the last); elsewhere (logs) it
    writes a line at most every ``log_every_s`` seconds (the first and the last always).
    """

    def __init__(
        self, total: int, label: str = "", stream=None, enabled: bool = True, log_every_s: float = 10.0
    ) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_every_s = log_every_s
        self.done = 0
        self.start = time.perf_counter()
        self._last = -math.inf

    def text(self, status: str = "") -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        frac = self.done / self.total if self.total else 1.0
        width = 24
        filled = int(round(frac * width))
        left = (self.total - self.done) / rate if rate > 0 else math.nan
        eta = time.strftime("%H:%M:%S", time.gmtime(left)) if math.isfinite(left) else "--:--:--"
        bar = "#" * filled + "." * (width - filled)
        head = f"{self.label} " if self.label else ""
        return f"{head}{self.done}/{self.total} [{bar}] {frac:6.1%} {elapsed:.0f} s, left {eta} {status}".rstrip()

    def update(self, n: int = 1, status: str = "") -> None:
        """``n`` more done; ``status`` says what was last done."""
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        finished = self.done >= self.total
        if self.tty:
            if finished or now - self._last >= 0.1:
                self.stream.write("\r" + self.text(status) + "\x1b[K")
                self.stream.flush()
                self._last = now
        elif finished or now - self._last >= self.log_every_s:
            self.stream.write(self.text(status) + "\n")
            self.stream.flush()
            self._last = now

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
