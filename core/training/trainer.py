"""Training (or resuming) a Loc2 model from poses only on synthetic cities (``loc2 train``): the loop, the
learning-rate schedule, checkpoints with their JSON sidecar and a loss-curve PNG."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..localizer import Localizer
from ..model.backbone import EfficientNetLite0
from ..model.checkpoints import load_weights, save_checkpoint
from ..model.presets import Preset, demo_preset
from .data import SyntheticData
from .loss import loss_terms


def learning_rate(base: float, step: int, total: int, decay_fraction: float = 0.3) -> float:
    """Constant, then linear decay to 5 % of ``base`` over the last ``decay_fraction`` of the steps."""
    start = int(total * (1 - decay_fraction))
    if step < start:
        return base
    return base * (1 - 0.95 * (step - start) / max(total - start, 1))


def save_loss_curve(path: Path, history: list[dict]) -> None:
    """A PNG of the loss terms over steps (drawn with OpenCV, no plotting library)."""
    import cv2

    w, h, m = 720, 360, 40
    img = np.full((h, w, 3), 255, np.uint8)
    if len(history) >= 2:
        steps = np.array([r["step"] for r in history], dtype=float)
        colours = {"loss": (0, 0, 0), "vce": (200, 60, 0), "nce_g2a": (0, 140, 0), "nce_a2g": (0, 0, 200)}
        top = max(max(r[k] for r in history) for k in colours)
        for k, colour in colours.items():
            vals = np.array([r[k] for r in history], dtype=float)
            xs = m + (steps - steps[0]) / max(steps[-1] - steps[0], 1) * (w - 2 * m)
            ys = h - m - vals / max(top, 1e-9) * (h - 2 * m)
            cv2.polylines(img, [np.stack([xs, ys], 1).astype(np.int32)], False, colour, 2, cv2.LINE_AA)
            cv2.putText(
                img, k, (w - m - 90, m + 16 * list(colours).index(k)), 0, 0.45, colour, 1, cv2.LINE_AA
            )
        cv2.putText(img, f"max {top:.2f}", (4, m - 8), 0, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, f"step {int(steps[-1])}", (w - m - 90, h - 12), 0, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, (m, m), (w - m, h - m), (160, 160, 160), 1)
    cv2.imwrite(str(path), img[:, :, ::-1])


@dataclass
class TrainConfig:
    out: Path
    steps: int = 2000
    batch_size: int = 8
    lr: float = 1e-4 * 3
    seeds: tuple[int, ...] = tuple(range(1, 9))
    camera: str = "panorama"
    max_offset_m: float = 15.0
    seed: int = 0
    log_every: int = 25
    save_every: int = 200
    resume: bool = False
    init: Path | None = None
    threads: int | None = None
    per_city: int = 200
    preset: Preset | None = None  # None: demo_preset()
    workers: int = 2
    cache: Path | None = None


def _initial_localizer(cfg: TrainConfig, out: Path) -> Localizer:
    """The model to train: the checkpoint being resumed, the ``init`` checkpoint, or new networks (an
    EfficientNet backbone starts from its pretrained weights); its confidence calibration cleared."""
    if cfg.resume and out.is_file():
        localizer = Localizer.from_checkpoint(out, device="cpu")
    elif cfg.init is not None:
        localizer = Localizer.from_checkpoint(cfg.init, device="cpu")
    else:
        preset = cfg.preset or demo_preset()
        backbone, matcher = Localizer.build_networks(preset)
        if isinstance(backbone, EfficientNetLite0):
            backbone.load_state_dict(EfficientNetLite0.pretrained_state())
        localizer = Localizer(preset, backbone, matcher, device="cpu")
    # new weights need their own confidence calibration (scripts/calibrate_confidence.py)
    localizer.preset = localizer.preset.replace(confidence_min_ratios={})
    return localizer


def _resume_optimizer(opt: torch.optim.Optimizer, state_path: Path, lr: float) -> tuple[int, list]:
    """Load the optimizer's state saved beside the checkpoint; returns (step, loss history)."""
    state = load_weights(state_path)
    opt.load_state_dict(state["optimizer"])
    for group in opt.param_groups:  # the learning rate asked for now, not the saved one
        group["lr"] = group["initial_lr"] = lr
    return int(state["step"]), json.loads(state["history"])


def _log_progress(row: dict, steps: int, seconds_per_step: float) -> None:
    """One line on stderr: the step, the mean loss terms since the last line and the time left."""
    print(
        f"step {row['step']}/{steps} loss {row['loss']:.3f} vce {row['vce']:.2f} m "
        f"nce {row['nce_g2a']:.2f}/{row['nce_a2g']:.2f}  ETA {seconds_per_step * (steps - row['step']) / 60:.1f} min",
        file=sys.stderr,
        flush=True,
    )


def train(cfg: TrainConfig, command: str = "") -> Path:
    """Train (or resume) the demo-style model; writes the checkpoint, its JSON sidecar and a loss curve."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    state_path = out.with_suffix(out.suffix + ".state")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    localizer = _initial_localizer(cfg, out)
    frozen = bool(localizer.preset.extra.get("frozen_backbone", False))
    localizer.backbone.requires_grad_(not frozen)
    params = list(localizer.matcher.parameters()) + ([] if frozen else list(localizer.backbone.parameters()))
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    step, history = 0, []
    if cfg.resume and state_path.is_file():
        step, history = _resume_optimizer(opt, state_path, cfg.lr)
        rng = np.random.default_rng([cfg.seed, step])
    data = SyntheticData(
        localizer.preset,
        list(cfg.seeds),
        cfg.camera,
        cfg.max_offset_m,
        cfg.per_city,
        workers=cfg.workers,
        cache=cfg.cache,
    )
    localizer.backbone.train(not frozen)
    localizer.matcher.train()
    gen = torch.Generator().manual_seed(cfg.seed + step)
    t_start, start_step, running = time.perf_counter(), step, {}
    while step < cfg.steps:
        batch = data.batch(cfg.batch_size, rng)
        terms = loss_terms(localizer, batch, gen)
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg.lr, step, cfg.steps)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
        step += 1
        for k, v in terms.items():
            running[k] = running.get(k, 0.0) + float(v.detach())
        if step % cfg.log_every == 0 or step == cfg.steps:
            n = step % cfg.log_every or cfg.log_every
            history.append({"step": step, **{k: v / n for k, v in running.items()}})
            running = {}
            rate = (time.perf_counter() - t_start) / max(step - start_step, 1)  # seconds per step, this run
            _log_progress(history[-1], cfg.steps, rate)
        if step % cfg.save_every == 0 or step == cfg.steps:
            _save(out, localizer, opt, step, history, cfg, command)
    localizer.backbone.eval()
    localizer.matcher.eval()
    return out


def _save(
    out: Path, localizer: Localizer, opt, step: int, history: list, cfg: TrainConfig, command: str
) -> None:
    meta = {
        "backbone": localizer.preset.backbone,
        "data": {
            "synthetic_seeds": list(cfg.seeds),
            "camera": cfg.camera,
            "max_offset_m": cfg.max_offset_m,
            "views_per_city": cfg.per_city,
        },
        "training": {"steps": step, "batch_size": cfg.batch_size, "lr": cfg.lr, "seed": cfg.seed},
        "metrics": history[-1] if history else {},
        "command": command,
    }
    save_checkpoint(out, localizer.preset, localizer.backbone, localizer.matcher, meta)
    state = {"optimizer": opt.state_dict(), "step": step, "history": json.dumps(history)}
    torch.save(state, out.with_suffix(out.suffix + ".state"))
    save_loss_curve(out.with_suffix(".loss.png"), history)
