"""A resumable, verified downloader for weight files (used by ``loc2 models download``).

A download goes to ``<file>.part`` first and continues from its size with an HTTP Range request. Before the
file is moved into place it is checked, in this order: its size against the pinned size (or the size the
server states in ``X-Linked-Size``), then its SHA-256 against the pinned digest, or, without a pin, against the
digest the server states: Hugging Face sends the SHA-256 of an LFS file in ``X-Linked-Etag`` (and ``ETag``),
and the git blob SHA-1 of a small file in ``ETag`` (with ``X-Repo-Commit``, which marks a Hugging Face answer).
A mismatch deletes the partial file. The file's record ``<file>.sha256`` (:mod:`.integrity`) is written last.

Only https is used (plain http only for hosts a caller explicitly allows, e.g. a test server on 127.0.0.1), and
redirects are followed only to URLs that pass the same rule.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path

from ..errors import Loc2Error, ModelNotFoundError
from . import integrity

CHUNK_BYTES = 1 << 20
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_HEX40 = re.compile(r"[0-9a-fA-F]{40}")


class DownloadError(Loc2Error):
    """A download that failed part-way (stalled, cut, wrong size or checksum); the message says what to do."""


def check_url(url: str, allow_http_hosts: tuple[str, ...] = ()) -> None:
    """Only https, or http to a host in ``allow_http_hosts``; DownloadError otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in allow_http_hosts:
        return
    raise DownloadError(f"refusing to download {url!r}: only https URLs are allowed")


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to URLs that pass :func:`check_url`; keep each redirect's headers (Hugging Face
    states the file's digest on the redirect, not on the CDN's answer)."""

    def __init__(self, allow_http_hosts: tuple[str, ...]):
        super().__init__()
        self.allow_http_hosts = allow_http_hosts
        self.hops: list = []

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl, self.allow_http_hosts)
        self.hops.append(headers)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _etag_hex(value: str | None) -> str:
    """The value of an (optionally weak) entity tag without quotes; '' when absent."""
    if not value:
        return ""
    value = value.strip()
    return (value[2:] if value.startswith("W/") else value).strip('"').strip()


def server_claims(hops: list) -> dict:
    """What the answers to one request (redirects first, then the final one) state about the file.

    Returns a dict with any of: ``sha256`` (hex) and ``sha256_from`` (the header), ``git_sha1`` (hex),
    ``size`` (bytes, ``X-Linked-Size``), ``commit`` (``X-Repo-Commit``). ``ETag`` is read only from the first
    answer and only when ``X-Repo-Commit`` shows it is Hugging Face's (elsewhere an ETag is no checksum).
    """
    claims: dict = {}
    commit = next((h.get("X-Repo-Commit") for h in hops if h.get("X-Repo-Commit")), None)
    if commit:
        claims["commit"] = commit.strip()
    for h in hops:
        linked = _etag_hex(h.get("X-Linked-Etag"))
        if _HEX64.fullmatch(linked):
            claims.update(sha256=linked.lower(), sha256_from="X-Linked-Etag")
            break
    etag = _etag_hex(hops[0].get("ETag")) if hops else ""
    if commit and "sha256" not in claims and _HEX64.fullmatch(etag):
        claims.update(sha256=etag.lower(), sha256_from="ETag")
    elif commit and _HEX40.fullmatch(etag):
        claims["git_sha1"] = etag.lower()
    size = next((h.get("X-Linked-Size") for h in hops if h.get("X-Linked-Size")), None)
    if size and size.strip().isdigit():
        claims["size"] = int(size)
    return claims


def _total_from(response, offset: int) -> int | None:
    """Total size from Content-Range (``bytes a-b/total``) or Content-Length."""
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        return int(total) if total.isdigit() else None
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def download_file(
    url: str,
    dest: str | Path,
    sha256: str | None = None,
    *,
    size: int | None = None,
    stall_timeout_s: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
    allow_http_hosts: tuple[str, ...] = (),
    user_agent: str = "loc2-qgis",
) -> Path:
    """Fetch ``url`` into ``dest`` via ``dest.part``, resuming a partial file, verifying and recording it.

    Args:
        sha256: pinned SHA-256 (hex); without it the server's stated digest is checked, when it states one.
        size: pinned size in bytes; a server offering another size is refused before any byte is fetched.
        stall_timeout_s: give up when no byte arrives for this long (the partial file is kept for a resume).
        progress: called with (bytes so far, total bytes or None).
        allow_http_hosts: hosts for which plain http is accepted (tests only).

    Raises:
        DownloadError: stalled or cut connection (run again to resume), HTTP error, wrong size or checksum (the
            partial file is deleted) or a refused URL.
        ModelNotFoundError: the server cannot be reached (offline).
    """
    check_url(url, allow_http_hosts)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    redirects = _SafeRedirects(allow_http_hosts)
    opener = urllib.request.build_opener(redirects)
    headers = {"User-Agent": user_agent}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = opener.open(request, timeout=stall_timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial file already holds everything
            claims = server_claims([*redirects.hops, exc.headers])
            return _finish(part, dest, url, sha256, size, claims)
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise DownloadError(f"{url}: no answer within {stall_timeout_s:g} s; run again to retry") from exc
        raise ModelNotFoundError(
            f"{url}: cannot be reached ({reason}); download it yourself and place it at {dest}"
        ) from exc
    with response:
        claims = server_claims([*redirects.hops, response.headers])
        if offset and response.status != 206:  # the server ignored the Range: start over
            offset = 0
        total = _total_from(response, offset)
        expected = size if size is not None else claims.get("size")
        if total is not None and expected is not None and total != expected:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{url}: the server offers {total} bytes, expected {expected}; nothing was kept. The file at "
                "the source changed: check the source, and update the registry's pin if the change is genuine"
            )
        _receive(response, part, offset, total, url, stall_timeout_s, progress)
    return _finish(part, dest, url, sha256, size, claims)


def _receive(response, part: Path, offset: int, total, url: str, stall_timeout_s: float, progress) -> None:
    """Append the body to ``part`` (from ``offset``); DownloadError when it stalls or is cut short."""
    done = offset
    read = getattr(response, "read1", response.read)  # read1: what has arrived, so a stall loses nothing
    with open(part, "ab" if offset else "wb") as out:
        while True:
            try:
                block = read(CHUNK_BYTES)
            except TimeoutError as exc:
                raise DownloadError(
                    f"{url}: stalled (no data for {stall_timeout_s:g} s) after {done} bytes; "
                    f"run the download again to resume from {part}"
                ) from exc
            except (HTTPException, OSError) as exc:
                raise DownloadError(
                    f"{url}: connection lost after {done} bytes ({exc}); run again to resume"
                ) from exc
            if not block:
                break
            out.write(block)
            done += len(block)
            if progress is not None:
                progress(done, total)
    if total is not None and done < total:
        raise DownloadError(f"{url}: connection closed after {done} of {total} bytes; run again to resume")


def _refuse(part: Path, url: str, what: str) -> DownloadError:
    """Delete the partial file; the error to raise."""
    part.unlink(missing_ok=True)
    return DownloadError(f"{url}: {what}; the partial file was deleted, run the download again")


def _finish(part: Path, dest: Path, url: str, sha256: str | None, size: int | None, claims: dict) -> Path:
    """Check the complete ``part`` file (size, then digest), move it into place and write its record."""
    got_size = part.stat().st_size
    expected_size = size if size is not None else claims.get("size")
    if expected_size is not None and got_size != expected_size:
        raise _refuse(part, url, f"size mismatch (expected {expected_size} bytes, got {got_size})")
    digest = integrity.sha256_file(part)
    if sha256 is not None:
        if digest != sha256.lower():
            raise _refuse(part, url, f"checksum mismatch (expected sha256 {sha256}, got {digest})")
        how = integrity.VERIFIED_PINNED
    elif "sha256" in claims:
        if digest != claims["sha256"]:
            raise _refuse(
                part,
                url,
                f"checksum mismatch (the server states sha256 {claims['sha256']} in {claims['sha256_from']}, "
                f"got {digest})",
            )
        how = f"server sha256 ({claims['sha256_from']})"
    elif "git_sha1" in claims:
        git = integrity.git_blob_sha1(part)
        if git != claims["git_sha1"]:
            raise _refuse(
                part, url, f"checksum mismatch (the server states git SHA-1 {claims['git_sha1']}, got {git})"
            )
        how = "server git-sha1 (ETag)"
    else:
        how = integrity.VERIFIED_FIRST_USE
    part.replace(dest)
    record = integrity.Record(digest, got_size, url, how, claims.get("commit", ""))
    integrity.write_record(dest, record)
    integrity.remember(dest, digest)
    return dest
