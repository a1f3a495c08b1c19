"""Loading and checking weights: the published state dicts and our own checkpoint files.

Everything is read with ``torch.load(..., weights_only=True)``: a checkpoint can hold tensors, numbers,
strings, lists and dicts, never code.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, ModelNotFoundError
from .presets import Preset

CHECKPOINT_FORMAT = "loc2-checkpoint"
WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")


def load_weights(path: str | Path) -> dict:
    """Read a weights file safely; raises ModelNotFoundError / CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFoundError(f"{path}: weights file not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean "not a usable checkpoint"
        raise CheckpointError(_unreadable_weights_message(path, exc)) from None


def _unreadable_weights_message(path: Path, exc: BaseException) -> str:
    """Our own message for a file torch.load(weights_only=True) refused: it names the file and the reason
    in a few words and never repeats PyTorch's advice to load it with weights_only=False (which would run
    any code the file holds)."""
    text = str(exc)
    if "Weights only load failed" in text or "WeightsUnpickler" in text:
        reason = (
            "it holds objects other than tensors, numbers, strings, lists and dicts, or is not a checkpoint"
        )
    elif isinstance(exc, EOFError) or "EOF" in text:
        reason = "the file ends too early (truncated?)"
    else:
        reason = text.splitlines()[0].split(". ")[0][:160] if text.strip() else type(exc).__name__
    return (
        f"{path}: not a readable PyTorch weights file ({reason}); Loc2 loads weights only as plain tensors "
        "and never runs code from a weights file"
    )


def unwrap_state_dict(obj: dict) -> dict:
    """The state dict itself, from a raw state dict or a dict wrapping it under a usual key."""
    if isinstance(obj, dict):
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, dict) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
    return obj


def check_state_dict(module: nn.Module, state: dict, source: str, expected: str) -> None:
    """Raise CheckpointError naming the first few missing, unexpected or mis-shaped entries.

    ``source`` names the file; ``expected`` names what it should be (e.g. "the VIGOR preset's matcher").
    """
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{source}: not a state dict of tensors (expected {expected})")
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shaped = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(own[k].shape)})"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shaped)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:3])}{more}")
    if problems:
        raise CheckpointError(f"{source} does not fit {expected}: " + "; ".join(problems))


def load_into(module: nn.Module, state: dict, source: str, expected: str) -> None:
    """Check, then ``load_state_dict(strict=True)``."""
    state = unwrap_state_dict(state)
    check_state_dict(module, state, source, expected)
    module.load_state_dict(state, strict=True)


def save_checkpoint(
    path: str | Path, preset: Preset, backbone: nn.Module, matcher: nn.Module, meta: dict
) -> None:
    """Write our checkpoint (preset + both state dicts) and a JSON sidecar ``<path>.json`` with ``meta``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "preset": json.dumps(preset.to_dict()),
        "backbone": backbone.state_dict(),
        "matcher": matcher.state_dict(),
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    sidecar = {"preset": preset.to_dict(), **meta}
    path.with_suffix(path.suffix + ".json").write_text(json.dumps(sidecar, indent=2, default=str))


def read_checkpoint(path: str | Path) -> tuple[Preset, dict, dict]:
    """Our checkpoint → (preset, backbone state dict, matcher state dict)."""
    obj = load_weights(path)
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path}: not a Loc2 checkpoint made by this software; for the published weights use the "
            "'vigor' or 'kitti' preset with --weights BACKBONE MATCHER"
        )
    try:
        preset = Preset.from_dict(json.loads(obj["preset"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its preset description is unreadable ({exc})") from exc
    ratios = sidecar_confidence_min_ratios(Path(path))
    if ratios is not None:
        preset = preset.replace(confidence_min_ratios=ratios)
    return preset, obj["backbone"], obj["matcher"]


def sidecar_confidence_min_ratios(path: Path) -> dict | None:
    """The confidence thresholds calibrated after training (``scripts/calibrate_confidence.py``), from the
    checkpoint's sidecar ``<path>.json``: camera kind → [medium, high or null]; None without any."""
    sidecar = path.with_suffix(path.suffix + ".json")
    if not sidecar.is_file():
        return None
    try:
        ratios = json.loads(sidecar.read_text()).get("preset", {}).get("confidence_min_ratios")
    except (OSError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{sidecar}: unreadable checkpoint sidecar ({exc}); fix or delete it") from exc
    if not ratios:
        return None
    ok = isinstance(ratios, dict) and all(
        isinstance(v, list)
        and len(v) == 2
        and isinstance(v[0], int | float)
        and isinstance(v[1], int | float | None)
        for v in ratios.values()
    )
    if not ok:
        raise CheckpointError(
            f"{sidecar}: preset.confidence_min_ratios must map a camera kind to [medium, high] inlier "
            f"ratios, got {ratios!r}"
        )
    return ratios
