"""One run at a time per output: an advisory lock on a small file beside the output.

The lock is taken with ``fcntl.flock`` (POSIX) or ``msvcrt.locking`` (Windows) on ``.<name>.loc2-lock``
next to the output, so the operating system releases it when the holder exits or is killed (kill -9): a
stale lock file never blocks a later run. A second run into the same output is refused with a message
naming the output and the process that writes it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ..errors import ExportError

try:  # POSIX
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt


def lock_path(output: str | os.PathLike) -> Path:
    """The lock file of an output (``results.gpkg`` → ``.results.gpkg.loc2-lock`` beside it)."""
    path = Path(output)
    return path.with_name(f".{path.name}.loc2-lock")


def _try_lock(fd: int) -> bool:
    """Take the lock on ``fd`` without waiting; False when another process holds it."""
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        pid = ""
    return f" (process {pid})" if pid.isdigit() else ""


def _still_linked(path: Path, fd: int) -> bool:
    """True when ``fd`` is still the file at ``path`` (not one a finishing run has just unlinked)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except OSError:
        return False


@contextmanager
def output_lock(output: str | os.PathLike) -> Iterator[Path]:
    """Hold the output's lock for the block; ExportError when another run holds it (never waits)."""
    path = lock_path(output)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ExportError(f"cannot write {output}: cannot create its lock file {path} ({exc})") from None
    try:
        if not _try_lock(fd) or not _still_linked(path, fd):
            raise ExportError(
                f"{output} is being written by another Loc2 run{_holder(path)}: wait until it ends, "
                "or choose another output"
            )
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        try:
            yield path
        finally:
            # Still held: a run that opened the file before this unlink finds it unlinked and stops.
            # (Windows keeps an open file; the next run takes the lock on it.)
            with suppress(OSError):
                path.unlink(missing_ok=True)
    finally:
        os.close(fd)
