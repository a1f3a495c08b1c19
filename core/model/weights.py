"""Known weights, where they come from, and a resumable, verified downloader (``loc2 models``).

Files live in a cache folder: ``$LOC2_CACHE`` or ``~/.cache/loc2``. Downloads go to ``<file>.part`` first and
continue from its size with an HTTP Range request; the SHA-256 (where known) is checked before the file is
moved into place; a wrong checksum deletes the partial file. Only https is used (plain http only for hosts a
caller explicitly allows, e.g. a test server on 127.0.0.1). Weights are read with ``weights_only=True``
(:func:`loc2.core.checkpoints.load_weights`).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path

from ..errors import Loc2Error, ModelNotFoundError

CACHE_ENV = "LOC2_CACHE"
HF = "https://huggingface.co"
HF_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
CHUNK_BYTES = 1 << 20


class DownloadError(Loc2Error):
    """A download that failed part-way (stalled, cut, wrong checksum); the message says what to do."""


@dataclass(frozen=True)
class ModelSpec:
    """One known weights file (or, for Hugging Face models, a folder of files).

    Attributes:
        name: registry name (``loc2 models download NAME``).
        filename: file name in the cache, or folder name for ``hf`` models.
        kind: ``backbone``, ``matcher`` (published Loc2 weights) or ``depth``.
        url: https source of a single file; None when unknown.
        sha256: expected checksum of that file; None when unknown (not verified).
        hf_repo: Hugging Face repository id of a folder model (files ``HF_FILES`` from its main branch).
        note: what the weights are, and what to do when there is no source.
    """

    name: str
    filename: str
    kind: str
    url: str | None = None
    sha256: str | None = None
    hf_repo: str | None = None
    note: str = ""
    files: tuple[str, ...] = field(default=())

    @property
    def has_source(self) -> bool:
        return bool(self.url or self.hf_repo)

    def sources(self) -> list[tuple[str, str, str | None]]:
        """(url, relative destination, sha256) of every file to fetch."""
        if self.url:
            return [(self.url, self.filename, self.sha256)]
        if self.hf_repo:
            files = self.files or HF_FILES
            return [(f"{HF}/{self.hf_repo}/resolve/main/{f}", f"{self.filename}/{f}", None) for f in files]
        return []


_RELEASE_NOTE = (
    "published Loc2 weights ({what}); no download source is known to this software: download them from the "
    "authors' release page and place the file at {path}"
)


def _loc2(name: str, what: str) -> ModelSpec:
    return ModelSpec(
        name, f"{name.replace('-', '_')}.pth", "matcher", note=_RELEASE_NOTE.format(what=what, path="{path}")
    )


def _da(name: str, repo: str, what: str) -> ModelSpec:
    return ModelSpec(
        name, name, "depth", hf_repo=repo, note=f"Depth Anything V2 {what} (Hugging Face {repo})"
    )


REGISTRY: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        ModelSpec(
            "dinov2-vitl14",
            "dinov2_vitl14_pretrain.pth",
            "backbone",
            url="https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
            note="DINOv2 ViT-L/14 backbone (Meta), the frozen backbone of both published presets (≈ 1.2 GB)",
        ),
        _loc2("loc2-vigor-same-known", "VIGOR same-area, known orientation"),
        _loc2("loc2-vigor-same-unknown", "VIGOR same-area, unknown orientation"),
        _loc2("loc2-vigor-cross-known", "VIGOR cross-area, known orientation"),
        _loc2("loc2-vigor-cross-unknown", "VIGOR cross-area, unknown orientation"),
        _loc2("loc2-kitti-10", "KITTI, ±10° orientation prior"),
        _loc2("loc2-kitti-180", "KITTI, ±180° orientation prior"),
        _da("depth-anything-v2-small", "depth-anything/Depth-Anything-V2-Small-hf", "Small, relative depth"),
        _da("depth-anything-v2-base", "depth-anything/Depth-Anything-V2-Base-hf", "Base, relative depth"),
        _da("depth-anything-v2-large", "depth-anything/Depth-Anything-V2-Large-hf", "Large, relative depth"),
        _da(
            "depth-anything-v2-metric-outdoor-small",
            "depth-anything/Depth-Anything-V2-Metric-Outdoor-Small-hf",
            "Small, metric outdoor depth (metres)",
        ),
        _da(
            "depth-anything-v2-metric-outdoor-base",
            "depth-anything/Depth-Anything-V2-Metric-Outdoor-Base-hf",
            "Base, metric outdoor depth (metres)",
        ),
        _da(
            "depth-anything-v2-metric-outdoor-large",
            "depth-anything/Depth-Anything-V2-Metric-Outdoor-Large-hf",
            "Large, metric outdoor depth (metres); the published KITTI depth maps come from this model",
        ),
        _da(
            "depth-anything-v2-metric-indoor-large",
            "depth-anything/Depth-Anything-V2-Metric-Indoor-Large-hf",
            "Large, metric indoor depth (metres)",
        ),
    )
}


def cache_dir(cache: str | Path | None = None) -> Path:
    """The cache folder: ``cache`` if given, else ``$LOC2_CACHE``, else ``~/.cache/loc2``."""
    if cache is not None:
        return Path(cache).expanduser()
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "loc2"


def get_spec(name: str) -> ModelSpec:
    """A registry entry; ModelNotFoundError listing the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelNotFoundError(f"unknown model {name!r}; known: {', '.join(REGISTRY)}") from None


def model_path(name: str, cache: str | Path | None = None) -> Path:
    """Where the model ``name`` lives (or would live) in the cache: a file, or a folder for ``hf`` models."""
    return cache_dir(cache) / get_spec(name).filename


def is_present(name: str, cache: str | Path | None = None) -> bool:
    """True when every file of the model is in the cache."""
    spec = get_spec(name)
    root = cache_dir(cache)
    if not spec.has_source:
        return (root / spec.filename).is_file()
    return all((root / rel).is_file() for _, rel, _ in spec.sources())


def missing_message(spec: ModelSpec, path: Path) -> str:
    """Which file is missing and where to put it."""
    if not spec.has_source:
        return f"{path}: {spec.name} is missing — " + spec.note.format(path=path)
    how = f"run 'loc2 models download {spec.name}'"
    origin = spec.url or f"{HF}/{spec.hf_repo}"
    return f"{path}: {spec.name} is missing — {how}, or download {origin} yourself and place it at {path}"


def resolve_weights(name_or_path: str | Path, cache: str | Path | None = None) -> Path:
    """An existing file or folder, or the cached copy of a registry model; ModelNotFoundError otherwise."""
    p = Path(name_or_path).expanduser()
    if p.exists():
        return p
    name = str(name_or_path)
    if name in REGISTRY:
        path = model_path(name, cache)
        if is_present(name, cache):
            return path
        raise ModelNotFoundError(missing_message(REGISTRY[name], path))
    raise ModelNotFoundError(f"{p}: weights file not found (nor a known model name; see 'loc2 models list')")


def load_model_weights(name_or_path: str | Path, cache: str | Path | None = None) -> dict:
    """The state dict of a weights file or registry model, read with ``weights_only=True``."""
    from .checkpoints import load_weights

    return load_weights(resolve_weights(name_or_path, cache))


# ------------------------------------------------------------------------------------------------ download
def check_url(url: str, allow_http_hosts: tuple[str, ...] = ()) -> None:
    """Only https, or http to a host in ``allow_http_hosts``; DownloadError otherwise."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in allow_http_hosts:
        return
    raise DownloadError(f"refusing to download {url!r}: only https URLs are allowed")


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to URLs that pass :func:`check_url`."""

    def __init__(self, allow_http_hosts: tuple[str, ...]):
        super().__init__()
        self.allow_http_hosts = allow_http_hosts

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl, self.allow_http_hosts)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _sha256_of(path: Path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            h.update(block)
    return h


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
    stall_timeout_s: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
    allow_http_hosts: tuple[str, ...] = (),
    user_agent: str = "loc2-qgis",
) -> Path:
    """Fetch ``url`` into ``dest`` via ``dest.part``, resuming a partial file, verifying ``sha256``.

    Args:
        stall_timeout_s: give up when no byte arrives for this long (the partial file is kept for a resume).
        progress: called with (bytes so far, total bytes or None).
        allow_http_hosts: hosts for which plain http is accepted (tests only).

    Raises:
        DownloadError: stalled or cut connection (run again to resume), HTTP error, wrong checksum (the
            partial file is deleted) or a refused URL.
        ModelNotFoundError: the server cannot be reached (offline).
    """
    check_url(url, allow_http_hosts)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    opener = urllib.request.build_opener(_SafeRedirects(allow_http_hosts))
    headers = {"User-Agent": user_agent}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = opener.open(request, timeout=stall_timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the partial file already holds everything
            return _finish(part, dest, sha256, url)
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise DownloadError(f"{url}: no answer within {stall_timeout_s:g} s; run again to retry") from exc
        raise ModelNotFoundError(
            f"{url}: cannot be reached ({reason}); download it yourself and place it at {dest}"
        ) from exc
    with response:
        if offset and response.status != 206:  # the server ignored the Range: start over
            offset = 0
        total = _total_from(response, offset)
        _receive(response, part, offset, total, url, stall_timeout_s, progress)
    return _finish(part, dest, sha256, url)


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


def _finish(part: Path, dest: Path, sha256: str | None, url: str) -> Path:
    """Verify the checksum of the complete ``part`` file and move it into place."""
    if sha256 is not None:
        got = _sha256_of(part).hexdigest()
        if got.lower() != sha256.lower():
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"{url}: checksum mismatch (expected sha256 {sha256}, got {got}); the partial file was deleted"
            )
    part.replace(dest)
    return dest


def download(
    name: str,
    cache: str | Path | None = None,
    *,
    force: bool = False,
    stall_timeout_s: float = 60.0,
    progress: Callable[[int, int | None], None] | None = None,
    allow_http_hosts: tuple[str, ...] = (),
    spec: ModelSpec | None = None,
) -> Path:
    """Fetch every file of a registry model into the cache; returns the model's path.

    ``spec`` replaces the registry entry (tests point it at a local server). A model without a source
    raises ModelNotFoundError saying where to put the file.
    """
    spec = spec or get_spec(name)
    root = cache_dir(cache)
    path = root / spec.filename
    if not spec.has_source:
        if path.is_file():
            return path
        raise ModelNotFoundError(missing_message(spec, path))
    for url, rel, sha in spec.sources():
        dest = root / rel
        if dest.is_file() and not force:
            continue
        if force:
            dest.unlink(missing_ok=True)
        download_file(
            url,
            dest,
            sha,
            stall_timeout_s=stall_timeout_s,
            progress=progress,
            allow_http_hosts=allow_http_hosts,
        )
    return path
