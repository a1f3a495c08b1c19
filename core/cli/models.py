"""``loc2 models``: list, locate, download and pin the known weights (``model/weights.py``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..model.weights import CACHE_ENV, HF, REGISTRY, digest_lines, download, is_present, model_path, trust


class _ByteProgress:
    """Progress of one download on stderr (redraws one line on a terminal, a line every 10 s elsewhere)."""

    def __init__(self, label: str, stream=None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.last = -1e9

    def __call__(self, done: int, total: int | None) -> None:
        now = time.perf_counter()
        if now - self.last < (0.2 if self.tty else 10.0) and done != total:
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9) / 1e6
        of = f" of {total / 1e6:.1f} MB ({done / total:.0%})" if total else " MB"
        text = f"{self.label}: {done / 1e6:.1f}{of} at {rate:.1f} MB/s"
        self.stream.write(("\r" + text + "\x1b[K") if self.tty else text + "\n")
        self.stream.flush()


def add_parser(subparsers) -> None:
    """Register ``loc2 models list|path|download|digest``."""
    p = subparsers.add_parser("models", help="list, locate and download known weights")
    p.add_argument("--cache", type=Path, help=f"cache folder (default ${CACHE_ENV} or ~/.cache/loc2)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser(
        "list", help="known weights: present or not, pinned, recorded or unverified, where they go"
    )
    path = sub.add_parser("path", help="print where a model is (or would be) stored")
    path.add_argument("name")
    dl = sub.add_parser("download", help="download a model into the cache (resumes, verifies checksums)")
    dl.add_argument("name")
    dl.add_argument("--force", action="store_true", help="download again even if present")
    dl.add_argument("--stall-timeout", type=float, default=60.0, help="seconds without data before giving up")
    digest = sub.add_parser(
        "digest", help="check a present model and print the SHA-256 pins to paste into the registry"
    )
    digest.add_argument("name")
    p.set_defaults(func=run_models)


def run_models(args) -> int:
    cache = args.cache
    if args.action == "list":
        for spec in REGISTRY.values():
            present = "present" if is_present(spec.name, cache) else "missing"
            source = spec.url or (f"{HF}/{spec.hf_repo}" if spec.hf_repo else "no known source")
            verified = trust(spec.name, cache)
            print(
                f"{spec.name:42s} {spec.kind:8s} {present:8s} {verified:10s} {model_path(spec.name, cache)}"
            )
            size = f" ({spec.size:,} bytes, size pinned)" if spec.size else ""
            print(f"{'':42s} {source}{size}")
        return 0
    if args.action == "digest":
        print("\n".join(digest_lines(args.name, cache)))
        return 0
    if args.action == "path":
        print(model_path(args.name, cache))
        return 0 if is_present(args.name, cache) else 1
    bar = _ByteProgress(args.name)
    path = download(args.name, cache, force=args.force, stall_timeout_s=args.stall_timeout, progress=bar)
    if bar.tty:
        sys.stderr.write("\n")
    print(path)
    return 0
