"""Known weights, where they come from, and how each file is verified (``loc2 models``).

Files live in a cache folder: ``$LOC2_CACHE`` or ``~/.cache/loc2``; :mod:`.download` fetches them (resumable,
https only). Every file is verified before use, as strongly as is known:

* **pinned**: the registry holds the file's SHA-256 (``sha256=`` for a single file, ``hf_sha256=`` for the
  files of a Hugging Face model, which is then also fetched from a pinned commit, ``hf_revision=``) and
  possibly its size (``size=``, checked before hashing);
* else **the server's digest**: Hugging Face states the SHA-256 of each large file (``X-Linked-Etag``) and the
  git SHA-1 of each small one (``ETag``); a download that does not match is deleted;
* then **recorded**: after a download (or at the first use of a file placed by hand) its SHA-256 and size are
  written to ``<file>.sha256`` (:mod:`.integrity`), and :func:`resolve_weights` and :func:`load_model_weights`
  refuse a registry file that no longer matches its record or pin. Weights are then read with
  ``weights_only=True`` (:func:`loc2.core.model.checkpoints.load_weights`).

``loc2 models list`` shows each model as pinned, recorded or unverified.

To pin a model (a maintainer, with internet): ``loc2 models download NAME`` (verified against the server's
digest where it states one), then ``loc2 models digest NAME``, which prints the ``sha256=``/``size=`` (or
``hf_revision=``/``hf_sha256=``) arguments to paste into the model's entry in ``REGISTRY`` below; check them
against the publisher's own checksums where the publisher gives any.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..errors import ModelNotFoundError
from . import integrity
from .download import DownloadError, check_url, download_file  # noqa: F401 - the downloader's public names

CACHE_ENV = "LOC2_CACHE"
HF = "https://huggingface.co"
HF_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")
PINNED, RECORDED, UNVERIFIED = "pinned", "recorded", "unverified"


class Source(NamedTuple):
    """One file to fetch: its url, its path relative to the cache, its pinned SHA-256 and size (or None)."""

    url: str
    rel: str
    sha256: str | None
    size: int | None


@dataclass(frozen=True)
class ModelSpec:
    """One known weights file (or, for Hugging Face models, a folder of files).

    Attributes:
        name: registry name (``loc2 models download NAME``).
        filename: file name in the cache, or folder name for ``hf`` models.
        kind: ``backbone``, ``matcher`` (published Loc2 weights) or ``depth``.
        url: https source of a single file; None when unknown.
        sha256: pinned SHA-256 (hex) of that file (or of the file placed by hand); None when not pinned.
        size: pinned size of that file in bytes; None when not pinned.
        hf_repo: Hugging Face repository id of a folder model (its files ``files`` or ``HF_FILES``).
        note: what the weights are, and what to do when there is no source.
        files: the files of a Hugging Face model, when not ``HF_FILES``.
        hf_revision: the branch or commit they are fetched from (a commit id pins them).
        hf_sha256: pinned SHA-256 of each file of a Hugging Face model: ((file, hex), ...).
    """

    name: str
    filename: str
    kind: str
    url: str | None = None
    sha256: str | None = None
    hf_repo: str | None = None
    note: str = ""
    files: tuple[str, ...] = field(default=())
    size: int | None = None
    hf_revision: str = "main"
    hf_sha256: tuple[tuple[str, str], ...] = field(default=())

    @property
    def has_source(self) -> bool:
        return bool(self.url or self.hf_repo)

    def sources(self) -> list[Source]:
        """Every file of the model; for a model without a source, the one file to place by hand (url '')."""
        if self.hf_repo:
            pins = dict(self.hf_sha256)
            base = f"{HF}/{self.hf_repo}/resolve/{self.hf_revision}"
            files = self.files or HF_FILES
            return [Source(f"{base}/{f}", f"{self.filename}/{f}", pins.get(f), None) for f in files]
        return [Source(self.url or "", self.filename, self.sha256, self.size)]

    @property
    def pinned(self) -> bool:
        """True when every file has a pinned SHA-256."""
        return all(src.sha256 for src in self.sources())


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
            size=1_217_586_395,
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
    root = cache_dir(cache)
    return all((root / src.rel).is_file() for src in get_spec(name).sources())


def missing_message(spec: ModelSpec, path: Path) -> str:
    """Which file is missing and where to put it."""
    if not spec.has_source:
        return f"{path}: {spec.name} is missing — " + spec.note.format(path=path)
    how = f"run 'loc2 models download {spec.name}'"
    origin = spec.url or f"{HF}/{spec.hf_repo}"
    return f"{path}: {spec.name} is missing — {how}, or download {origin} yourself and place it at {path}"


def _fix_message(spec: ModelSpec, path: Path) -> str:
    """What to do about a registry file that fails its check."""
    record = integrity.record_path(path).name
    if not spec.has_source:
        return f"place the authors' file there again, or, if you replaced it on purpose, delete {record}"
    return (
        f"run 'loc2 models download {spec.name} --force' to fetch it again, or delete {path.name} and {record} "
        "and download it again"
    )


def verify_model(name: str, cache: str | Path | None = None, spec: ModelSpec | None = None) -> None:
    """Check every file of a present registry model against its pins and its record (recording a file that
    has none); IntegrityError naming the file, what differs and what to do."""
    spec = spec or get_spec(name)
    root = cache_dir(cache)
    for src in spec.sources():
        path = root / src.rel
        integrity.verify(path, src.sha256, src.size, fix=_fix_message(spec, path))


def _verify_recorded(path: Path) -> None:
    """Check a file given by path (or the files of a folder) against the records beside it, if any."""
    files = [path] if path.is_file() else sorted(f for f in path.iterdir() if f.is_file())
    for f in files:
        if integrity.record_path(f).is_file():
            fix = f"restore the original, or delete {integrity.record_path(f).name} if you replaced it on purpose"
            integrity.verify(f, fix=fix)


def resolve_weights(name_or_path: str | Path, cache: str | Path | None = None) -> Path:
    """An existing file or folder, or the cached copy of a registry model, checked against its pins and its
    ``.sha256`` record; ModelNotFoundError when absent, IntegrityError when changed."""
    p = Path(name_or_path).expanduser()
    if p.exists():
        _verify_recorded(p)
        return p
    name = str(name_or_path)
    if name in REGISTRY:
        path = model_path(name, cache)
        if not is_present(name, cache):
            raise ModelNotFoundError(missing_message(REGISTRY[name], path))
        verify_model(name, cache)
        return path
    raise ModelNotFoundError(f"{p}: weights file not found (nor a known model name; see 'loc2 models list')")


def load_model_weights(name_or_path: str | Path, cache: str | Path | None = None) -> dict:
    """The state dict of a weights file or registry model (checked as :func:`resolve_weights` does), read
    with ``weights_only=True``."""
    from .checkpoints import load_weights

    return load_weights(resolve_weights(name_or_path, cache))


def trust(name: str, cache: str | Path | None = None) -> str:
    """How the model's files are verified: ``pinned`` (the registry holds every SHA-256), ``recorded`` (every
    file is present with a ``.sha256`` record) or ``unverified``. Reads no weights."""
    spec = get_spec(name)
    if spec.pinned:
        return PINNED
    root = cache_dir(cache)
    recorded = all(integrity.record_path(root / src.rel).is_file() for src in spec.sources())
    return RECORDED if recorded and is_present(name, cache) else UNVERIFIED


def digest_lines(name: str, cache: str | Path | None = None) -> list[str]:
    """The registry arguments that pin a present model, after checking its files against their records:
    comment lines saying how each file was verified, then ``sha256=..., size=...,`` or, for a Hugging Face
    model, ``hf_revision=...,`` (when the server named its commit) and ``hf_sha256=(...),``."""
    spec = get_spec(name)
    root = cache_dir(cache)
    if not is_present(name, cache):
        raise ModelNotFoundError(missing_message(spec, root / spec.filename))
    verify_model(name, cache)
    records = [(src, integrity.read_record(root / src.rel)) for src in spec.sources()]
    lines = [f"# {name}: paste into its ModelSpec in core/model/weights.py"]
    lines += [f"# {src.rel}: {rec.verified}, from {rec.source}" for src, rec in records]
    if not spec.hf_repo:
        rec = records[0][1]
        return [*lines, f'sha256="{rec.sha256}",', f"size={rec.size:_},"]
    commits = {rec.commit for _, rec in records}
    if len(commits) == 1 and "" not in commits:
        lines.append(f'hf_revision="{commits.pop()}",')
    pins = ", ".join(f'("{src.rel.split("/", 1)[1]}", "{rec.sha256}")' for src, rec in records)
    return [*lines, f"hf_sha256=({pins}),"]


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
    """Fetch every missing file of a registry model into the cache (all with ``force``), verified and
    recorded; files already present are checked against their pins and records. Returns the model's path.

    ``spec`` replaces the registry entry (tests point it at a local server). A model without a source
    raises ModelNotFoundError saying where to put the file.
    """
    spec = spec or get_spec(name)
    root = cache_dir(cache)
    path = root / spec.filename
    if not spec.has_source:
        if not path.is_file():
            raise ModelNotFoundError(missing_message(spec, path))
        verify_model(name, cache, spec)
        return path
    for src in spec.sources():
        dest = root / src.rel
        if dest.is_file() and not force:
            integrity.verify(dest, src.sha256, src.size, fix=_fix_message(spec, dest))
            continue
        dest.unlink(missing_ok=True)
        integrity.record_path(dest).unlink(missing_ok=True)
        download_file(
            src.url,
            dest,
            src.sha256,
            size=src.size,
            stall_timeout_s=stall_timeout_s,
            progress=progress,
            allow_http_hosts=allow_http_hosts,
        )
    return path
