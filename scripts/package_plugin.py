"""Zip the plugin for the official QGIS plugin repository: dist/loc2.zip with top folder ``loc2``.

Only tracked plugin files go in (git ls-files), minus tests, benchmarks, CI and developer files; no
``.git`` or ``__pycache__``. Fails if the zip would exceed the repository's 20 MB limit.
"""

from __future__ import annotations

import subprocess  # nosec B404 - a fixed git command with an argument list
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXCLUDE_PREFIXES = ("tests/", "benchmarks/", ".ci/", "scripts/", ".git")
EXCLUDE_FILES = {"Makefile", "constraints.txt", ".gitignore", "pyproject.toml"}
LIMIT_BYTES = 20 * 1024 * 1024


def plugin_files() -> list[str]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True)  # nosec B603 B607
    files = []
    for name in out.stdout.splitlines():
        if name.startswith(EXCLUDE_PREFIXES) or name in EXCLUDE_FILES or "__pycache__" in name:
            continue
        files.append(name)
    return files


def main() -> int:
    dist = ROOT / "dist"
    dist.mkdir(exist_ok=True)
    target = dist / "loc2.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in plugin_files():
            zf.write(ROOT / name, f"loc2/{name}")
    size = target.stat().st_size
    print(f"{target}: {size / 1e6:.2f} MB")
    if size > LIMIT_BYTES:
        print("too large for the plugin repository (20 MB)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
