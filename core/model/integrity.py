"""Integrity of weight files: a SHA-256 record next to each file, checked before the file is loaded.

The record ``<file>.sha256`` is a few ``key value`` lines, written after a download (or, for a file placed by
hand, at its first use: trust on first use)::

    sha256 <64 hex digits>
    size <bytes>
    source <url, or "local file">
    verified <pinned sha256 | server sha256 (X-Linked-Etag) | server git-sha1 (ETag) | first use, not verified>
    commit <the Hugging Face commit that served it, when known>

:func:`verify` checks a file against its pinned size and digest (from the registry) and its record: the size
first (no hashing a file of the wrong size), then the SHA-256. Hashing 1.2 GB takes seconds, so a digest is
computed once per process per (path, size, modification time).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import Loc2Error

CHUNK_BYTES = 1 << 20
RECORD_SUFFIX = ".sha256"
VERIFIED_PINNED = "pinned sha256"
VERIFIED_FIRST_USE = "first use, not verified"
_KEYS = ("sha256", "size", "source", "verified", "commit")
_DIGESTS: dict[tuple[str, int, int], str] = {}  # (absolute path, size, mtime ns) → sha256 hex


class IntegrityError(Loc2Error):
    """A weights file that differs from its pinned size or digest, or from its record."""


@dataclass(frozen=True)
class Record:
    """What was recorded of a file: SHA-256 (hex), size (bytes), source, how it was verified, git commit."""

    sha256: str
    size: int
    source: str = "local file"
    verified: str = VERIFIED_FIRST_USE
    commit: str = ""


def record_path(path: str | Path) -> Path:
    """The record of ``path``: ``<path>.sha256`` beside it."""
    path = Path(path)
    return path.with_name(path.name + RECORD_SUFFIX)


def _key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns)


def _hash_file(path: Path) -> str:
    """SHA-256 (hex) of the file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: str | Path) -> str:
    """SHA-256 (hex) of a file, computed once per process per (path, size, modification time)."""
    path = Path(path)
    key = _key(path)
    if key not in _DIGESTS:
        _DIGESTS[key] = _hash_file(path)
    return _DIGESTS[key]


def remember(path: str | Path, sha256: str) -> None:
    """Note the digest of a file just written (e.g. a download renamed into place), so it is not re-read."""
    _DIGESTS[_key(Path(path))] = sha256


def git_blob_sha1(path: str | Path) -> str:
    """The git blob id (SHA-1 of ``blob <size>\\0`` + bytes) of a small file, as git and Hugging Face state it."""
    data = Path(path).read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def read_record(path: str | Path) -> Record | None:
    """The record of ``path``, None when there is none; IntegrityError naming a malformed record."""
    rec = record_path(path)
    if not rec.is_file():
        return None
    try:
        fields = dict(
            line.split(" ", 1) for line in rec.read_text(encoding="utf-8").splitlines() if " " in line
        )
        record = Record(
            fields["sha256"].strip().lower(),
            int(fields["size"]),
            *(fields.get(k, "").strip() for k in _KEYS[2:]),
        )
    except (OSError, UnicodeDecodeError, KeyError, ValueError) as exc:
        raise IntegrityError(
            f"{rec}: unreadable checksum record ({exc}); delete it to record the file anew"
        ) from None
    if len(record.sha256) != 64:
        raise IntegrityError(
            f"{rec}: the sha256 line is not 64 hex digits; delete it to record the file anew"
        )
    return record


def write_record(path: str | Path, record: Record) -> Path:
    """Write ``<path>.sha256`` (via a temporary file renamed into place); returns the record's path."""
    rec = record_path(path)
    tmp = rec.with_name(rec.name + ".tmp")
    text = "".join(f"{k} {getattr(record, k)}\n" for k in _KEYS if str(getattr(record, k)))
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, rec)
    return rec


def verify(path: str | Path, sha256: str | None = None, size: int | None = None, fix: str = "") -> Record:
    """Check ``path`` against a pinned ``size`` (bytes) and ``sha256``, or, without a pinned digest, against
    its record (the size first, so a file of the wrong size is never hashed).

    Without a record one is written (trust on first use; skipped when the folder is read-only), and so is one
    that a matching pinned digest contradicts. ``fix`` is appended to every error: what the user should do
    (e.g. the command that downloads the file again).

    Raises:
        IntegrityError: naming the file, what was expected, what was found, and ``fix``.
    """
    path = Path(path)
    fix = f"; {fix}" if fix else ""
    got_size = path.stat().st_size
    if size is not None and got_size != size:
        raise IntegrityError(f"{path}: {got_size} bytes, expected {size} (its pinned size){fix}")
    record = read_record(path)
    if sha256 is None and record is not None and record.size != got_size:
        raise IntegrityError(
            f"{path}: {got_size} bytes, but {record.size} when it was recorded in {record_path(path)}: the "
            f"file changed since{fix}"
        )
    digest = sha256_file(path)
    if sha256 is not None:  # the pin decides; a record that disagrees with a matching file is rewritten
        if digest != sha256.lower():
            raise IntegrityError(
                f"{path}: sha256 {digest}, expected {sha256.lower()} (its pinned digest){fix}"
            )
        if record is not None and record.sha256 == digest:
            return record
    elif record is not None:
        if digest != record.sha256:
            raise IntegrityError(
                f"{path}: sha256 {digest}, but {record.sha256} when it was recorded in {record_path(path)} "
                f"({record.verified}): the file changed since{fix}"
            )
        return record
    record = Record(digest, got_size, verified=VERIFIED_PINNED if sha256 else VERIFIED_FIRST_USE)
    with contextlib.suppress(OSError):  # a read-only cache: still checked against its pins, just not recorded
        write_record(path, record)
    return record
