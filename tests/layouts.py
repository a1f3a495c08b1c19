"""The published state-dict layouts for the tests (../shared/reference, or the copy in tests/data).

A plain module, not a conftest.py: tests/app has its own conftest.py, and two conftest modules would shadow
each other on ``sys.path``.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "reference"
# The published layouts: LOC2_REFERENCE, else the project's shared reference folder beside the checkout,
# else the copy kept in tests/data (the same files).
REFERENCE = Path(
    os.environ.get("LOC2_REFERENCE")
    or (_SHARED if (_SHARED / "loc2_matcher_state_dict.tsv").is_file() else Path(__file__).parent / "data")
)


def read_layout(name: str) -> dict[str, tuple[tuple[int, ...], str]]:
    """Entries of a published state dict: name → (shape, dtype), from the reference TSV files."""
    path = REFERENCE / name
    if not path.is_file():
        pytest.fail(f"reference layout {path} is missing (set LOC2_REFERENCE to the shared/reference folder)")
    layout = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        shape = ast.literal_eval(parts[1])
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        layout[parts[0]] = (shape, parts[2] if len(parts) > 2 else "torch.float32")
    return layout


def dinov2_vitl14_layout() -> dict[str, tuple[tuple[int, ...], str]]:
    """The ViT-L/14 layout with the 'blocks.0' pattern expanded to all 24 blocks."""
    out = {}
    for name, spec in read_layout("dinov2_vitl14_state_dict.tsv").items():
        if name.startswith("blocks.0."):
            for i in range(24):
                out[name.replace("blocks.0.", f"blocks.{i}.", 1)] = spec
        else:
            out[name] = spec
    return out


def random_state(layout: dict, seed: int = 0, fill_random: bool = True) -> dict:
    """A state dict with exactly the given names, shapes and dtypes, random values (torch tensors)."""
    import torch  # here, not at module level: tests/app runs under QGIS's own Python, without torch

    gen = torch.Generator().manual_seed(seed)
    state = {}
    for name, (shape, dtype) in layout.items():
        if dtype == "torch.int64":
            state[name] = (
                torch.tensor(7, dtype=torch.int64) if shape == () else torch.zeros(shape, dtype=torch.int64)
            )
        elif "running_var" in name:
            state[name] = torch.rand(shape, generator=gen) + 0.5
        elif fill_random:
            state[name] = torch.randn(shape, generator=gen) * 0.05
        else:
            state[name] = torch.zeros(shape)
    return state
