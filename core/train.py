"""``loc2 train``: weakly supervised training from poses only (method §7), on synthetic cities or a folder.

Loss = VCE + β·(InfoNCE ground→aerial + InfoNCE aerial→ground)/2 with β = 1. VCE moves a 10 × 10 grid of
virtual points spanning 5 m with the true and with the predicted pose (differentiable weighted
Procrustes on 1,024 correspondences sampled from P) and averages their distance. InfoNCE uses the
scores before the dustbin; positives come from moving lifted ground points with the true pose.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .backbone import EfficientNetLite0
from .checkpoints import load_weights, read_checkpoint, save_checkpoint
from .geometry import Equirectangular, Pinhole, aerial_grid_xy, rotation_from_heading
from .localizer import Localizer
from .presets import VIGOR, Preset
from .procrustes import weighted_procrustes
from .ransac import CorrespondenceSampler

VCE_GRID = 10
VCE_SPAN_M = 5.0
NCE_WEIGHT = 1.0
VCE_SAMPLES = 1024
NEGATIVE_EXCLUSION_M = 1.0


def demo_preset() -> Preset:
    """The demo model: frozen ImageNet EfficientNet-Lite0 features, narrower heads, panoramas, VIGOR-like
    footprint (72 m, 41 × 41 aerial points)."""
    return VIGOR.replace(
        name="demo",
        backbone="efficientnet_lite0",
        embed_dim=152,
        desc_dim=64,
        head_widths=(96, 64),
        ground_size_hw=(160, 320),
        aerial_size_px=256,
        aerial_footprint_m=72.0,
        max_depth_m=35.0,
        published_grid=False,
        extra={"frozen_backbone": True},
    )


@dataclass
class Batch:
    """A training batch. Poses map ground BEV points to the aerial frame: X = R·Y + t (metres)."""

    ground: torch.Tensor  # (B, 3, H, W) in [0, 1]
    aerial: torch.Tensor  # (B, 3, S, S) in [0, 1]
    depth: list[np.ndarray]  # per sample (H, W) metres, NaN invalid (radial for panoramas, z for pinhole)
    cameras: list  # per sample camera model at the ground image's size
    R: torch.Tensor  # (B, 2, 2)
    t: torch.Tensor  # (B, 2) metres, aerial frame


def _image_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)


@dataclass
class Sample:
    """One rendered training view: ground image + depth, its aerial crop and the true pose in that crop."""

    ground: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float16 metres, NaN invalid
    aerial: np.ndarray  # (S, S, 3) uint8
    camera: object  # Equirectangular or Pinhole at the ground image's size
    position_aerial_m: np.ndarray  # (2,) camera position, aerial frame (x down, y right)
    heading_crop_deg: float  # camera heading, clockwise from the crop's up (true north)


def render_samples(
    seed: int, count: int, preset_dict: dict, camera: str, max_offset_m: float, pinhole_fraction: float
) -> list[Sample]:
    """Render ``count`` training views in synthetic city ``seed`` (a worker function: plain arguments)."""
    from .synthetic import SyntheticCity

    preset = Preset.from_dict(preset_dict)
    city = SyntheticCity(seed)
    rng = np.random.default_rng([seed, 7])
    h, w = preset.ground_size_hw
    footprint, size = preset.aerial_footprint_m, preset.aerial_size_px
    out = []
    for pos in city.sample_positions(rng, count):
        heading = float(rng.uniform(0, 360))
        pinhole = camera == "pinhole" or (camera == "mixed" and rng.random() < pinhole_fraction)
        if pinhole:
            cam = Pinhole.from_fov(w, int(round(w * 3 / 4)), 90.0)
            rgb, depth = city.render_pinhole(tuple(pos), heading, cam)
        else:
            cam = Equirectangular(w, h)
            rgb, depth = city.render_panorama(tuple(pos), heading, (h, w))
        r = max_offset_m * math.sqrt(rng.random())
        a = rng.uniform(0, 2 * math.pi)
        centre = pos + r * np.array([math.sin(a), math.cos(a)])  # local metres (≈ ground metres)
        aerial = city.render_aerial(tuple(centre), footprint, size)
        t = city.local_to_aerial(pos, centre, 0.0)
        out.append(Sample(rgb, depth.astype(np.float16), aerial, cam, np.asarray(t, np.float64), heading))
    return out


class SyntheticData:
    """Training views pre-rendered from a pool of synthetic cities (one worker process per core), served
    with random panorama rolls (a roll by k columns turns the camera by −360·k/W degrees)."""

    def __init__(
        self,
        preset: Preset,
        seeds: list[int],
        camera: str = "panorama",
        max_offset_m: float = 15.0,
        per_city: int = 200,
        pinhole_fraction: float = 0.25,
        workers: int = 2,
        cache: Path | None = None,
    ):
        self.preset = preset
        key = json.dumps(
            [
                preset.ground_size_hw,
                preset.aerial_size_px,
                preset.aerial_footprint_m,
                list(seeds),
                camera,
                max_offset_m,
                per_city,
                pinhole_fraction,
            ]
        )
        t0 = time.perf_counter()
        samples = _load_cache(cache, key) if cache else None
        if samples is None:
            jobs = [(s, per_city, preset.to_dict(), camera, max_offset_m, pinhole_fraction) for s in seeds]
            samples = _render_all(jobs, workers)
            if cache:
                _save_cache(cache, key, samples)
        self.panoramas = [x for x in samples if isinstance(x.camera, Equirectangular)]
        self.pinholes = [x for x in samples if isinstance(x.camera, Pinhole)]
        print(
            f"rendered {len(samples)} training views from {len(seeds)} cities in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
        )

    def batch(self, size: int, rng: np.random.Generator) -> Batch:
        use_pinhole = self.pinholes and (
            not self.panoramas
            or rng.random() < len(self.pinholes) / (len(self.pinholes) + len(self.panoramas))
        )
        pool = self.pinholes if use_pinhole else self.panoramas
        grounds, aerials, depths, cams, Rs, ts = [], [], [], [], [], []
        for i in rng.integers(0, len(pool), size):
            x = pool[i]
            ground, depth, heading = x.ground, x.depth.astype(np.float32), x.heading_crop_deg
            if isinstance(x.camera, Equirectangular):
                k = int(rng.integers(0, ground.shape[1]))
                ground, depth = np.roll(ground, k, axis=1), np.roll(depth, k, axis=1)
                heading = (heading - 360.0 * k / ground.shape[1]) % 360.0
            ground = _jitter_colour(ground, rng)
            grounds.append(ground)
            aerials.append(_jitter_colour(x.aerial, rng))
            depths.append(depth)
            cams.append(x.camera)
            Rs.append(rotation_from_heading(heading))
            ts.append(x.position_aerial_m)
        return Batch(
            _image_tensor(grounds),
            _image_tensor(aerials),
            depths,
            cams,
            torch.tensor(np.stack(Rs), dtype=torch.float32),
            torch.tensor(np.stack(ts), dtype=torch.float32),
        )


def _render_all(jobs: list[tuple], workers: int) -> list[Sample]:
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            chunks = pool.starmap(render_samples, jobs)
    else:
        chunks = [render_samples(*job) for job in jobs]
    return [x for chunk in chunks for x in chunk]


def _save_cache(path: Path, key: str, samples: list[Sample]) -> None:
    """Rendered views as one .npz (arrays only; cameras as numbers), so a restart need not re-render."""
    cams = np.array(
        [
            [0, c.width, c.height, 0, 0, 0, 0]
            if isinstance(c, Equirectangular)
            else [1, c.width, c.height, c.fx, c.fy, c.cx, c.cy]
            for c in (x.camera for x in samples)
        ]
    )
    arrays = {
        "key": np.array(key),
        "cams": cams,
        "pos": np.stack([x.position_aerial_m for x in samples]),
        "heading": np.array([x.heading_crop_deg for x in samples]),
    }
    for i, x in enumerate(samples):
        arrays[f"g{i}"], arrays[f"d{i}"], arrays[f"a{i}"] = x.ground, x.depth, x.aerial
    np.savez(path, **arrays)


def _load_cache(path: Path, key: str) -> list[Sample] | None:
    if not Path(path).is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        if str(z["key"]) != key:
            return None
        out = []
        for i, (cam, pos, heading) in enumerate(zip(z["cams"], z["pos"], z["heading"], strict=True)):
            kind, w, h = int(cam[0]), int(cam[1]), int(cam[2])
            camera = Equirectangular(w, h) if kind == 0 else Pinhole(*map(float, cam[3:7]), w, h)
            out.append(Sample(z[f"g{i}"], z[f"d{i}"], z[f"a{i}"], camera, pos, float(heading)))
        return out


def _jitter_colour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness/contrast/colour balance, so the model does not rely on exact synthetic colours."""
    gain = rng.uniform(0.75, 1.25) * rng.uniform(0.9, 1.1, 3)
    bias = rng.uniform(-20, 20)
    return np.clip(image.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)


def _lift_batch(
    localizer: Localizer, batch: Batch, grid_rc: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground BEV points (B, G, 2) and validity (B, G) of each sample's token grid (``Localizer.lift``)."""
    from .depth import DepthMap

    input_hw = tuple(batch.ground.shape[-2:])
    pts, valid = [], []
    for depth, cam in zip(batch.depth, batch.cameras, strict=True):
        kind = "radial" if isinstance(cam, Equirectangular) else "z"
        xy, ok = localizer.lift(DepthMap(depth, kind=kind), cam, grid_rc, input_hw)
        pts.append(np.nan_to_num(xy))
        valid.append(ok)
    return torch.tensor(np.stack(pts), dtype=torch.float32), torch.from_numpy(np.stack(valid))


def _virtual_points() -> torch.Tensor:
    lin = torch.linspace(-VCE_SPAN_M / 2, VCE_SPAN_M / 2, VCE_GRID)
    return torch.stack(torch.meshgrid(lin, lin, indexing="ij"), -1).reshape(-1, 2)


def loss_terms(
    localizer: Localizer, batch: Batch, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """VCE, the two InfoNCE terms and their weighted sum for one batch (method §7)."""
    preset = localizer.preset
    matcher = localizer.matcher
    g_feat = localizer.backbone(batch.ground)
    a_feat = localizer.backbone(batch.aerial)
    rows, cols = g_feat.shape[-2:]
    ground_xy, valid = _lift_batch(localizer, batch, (rows, cols))
    aerial_xy = torch.tensor(
        aerial_grid_xy(preset.aerial_footprint_m, preset.aerial_grid), dtype=torch.float32
    )
    desc_a = matcher.describe_aerial(a_feat)
    desc_g = matcher.describe_ground(g_feat)
    scores = matcher.scores(desc_a, desc_g)  # (B, A, G)
    P = matcher.match(scores, valid)

    cell = preset.aerial_footprint_m / (preset.aerial_grid - 1)
    moved = torch.einsum("bij,bgj->bgi", batch.R, ground_xy) + batch.t[:, None]  # true ground → aerial
    d = torch.cdist(moved, aerial_xy[None].expand(len(moved), -1, -1))  # (B, G, A)
    # per-sample views through unbind: one stack in backward instead of a full-size zero tensor per index
    scores_b, P_b = scores.unbind(0), P.unbind(0)
    nce_g2a, nce_a2g = [], []
    for b in range(len(moved)):
        # ground → aerial: each valid ground token whose moved point has an aerial point within a cell
        dist, nearest = d[b].min(dim=1)
        pos_g = valid[b] & (dist <= cell)
        if pos_g.any():
            logp = F.log_softmax(scores_b[b][:, pos_g], dim=0)  # over aerial points
            nce_g2a.append(-logp[nearest[pos_g], torch.arange(int(pos_g.sum()))].mean())
        # aerial → ground: each aerial point with a moved valid ground point within a cell
        d_b = d[b].masked_fill(~valid[b][:, None], float("inf"))
        dist_a, nearest_a = d_b.min(dim=0)
        pos_a = dist_a <= cell
        if pos_a.any():
            s = scores_b[b][pos_a]  # (Npos, G)
            pos_idx = nearest_a[pos_a]
            near_pos = torch.cdist(moved[b][pos_idx], moved[b]) < NEGATIVE_EXCLUSION_M  # (Npos, G)
            near_pos[torch.arange(len(pos_idx)), pos_idx] = False
            excluded = near_pos | ~valid[b][None]
            s = s.masked_fill(excluded, float("-inf"))
            logp = F.log_softmax(s, dim=1)
            nce_a2g.append(-logp[torch.arange(len(pos_idx)), pos_idx].mean())

    # VCE: differentiable weighted solve on correspondences sampled from P
    vp = _virtual_points()
    vce = []
    for b in range(len(moved)):
        flat = P_b[b].reshape(-1)
        n = min(VCE_SAMPLES, int((flat.detach() > 0).sum()))
        if n < 3:
            continue
        ia, ig = CorrespondenceSampler(P_b[b].detach()).draw(n, generator)
        idx = ia * P.shape[2] + ig
        R_hat, t_hat, s_hat, ok = weighted_procrustes(
            ground_xy[b][ig], aerial_xy[ia], flat[idx], with_scale=True
        )
        if not bool(ok):
            continue
        true_v = vp @ batch.R[b].T + batch.t[b]
        pred_v = s_hat * vp @ R_hat.T + t_hat
        vce.append((true_v - pred_v).norm(dim=-1).mean())

    zero = scores.sum() * 0
    terms = {
        "vce": torch.stack(vce).mean() if vce else zero,
        "nce_g2a": torch.stack(nce_g2a).mean() if nce_g2a else zero,
        "nce_a2g": torch.stack(nce_a2g).mean() if nce_a2g else zero,
    }
    terms["loss"] = terms["vce"] + NCE_WEIGHT * (terms["nce_g2a"] + terms["nce_a2g"]) / 2
    return terms


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


def train(cfg: TrainConfig, command: str = "") -> Path:
    """Train (or resume) the demo-style model; writes the checkpoint, its JSON sidecar and a loss curve."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    state_path = out.with_suffix(out.suffix + ".state")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
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
    frozen = bool(localizer.preset.extra.get("frozen_backbone", False))
    localizer.backbone.requires_grad_(not frozen)
    params = list(localizer.matcher.parameters()) + ([] if frozen else list(localizer.backbone.parameters()))
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    step, history = 0, []
    if cfg.resume and state_path.is_file():
        state = load_weights(state_path)
        opt.load_state_dict(state["optimizer"])
        for group in opt.param_groups:  # the learning rate asked for now, not the saved one
            group["lr"] = group["initial_lr"] = cfg.lr
        step = int(state["step"])
        history = json.loads(state["history"])
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
            row = {"step": step, **{k: v / n for k, v in running.items()}}
            history.append(row)
            running = {}
            rate = (time.perf_counter() - t_start) / max(step - start_step, 1)  # seconds per step, this run
            print(
                f"step {step}/{cfg.steps} loss {row['loss']:.3f} vce {row['vce']:.2f} m "
                f"nce {row['nce_g2a']:.2f}/{row['nce_a2g']:.2f}  ETA {rate * (cfg.steps - step) / 60:.1f} min",
                file=sys.stderr,
                flush=True,
            )
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


def _seed_range(text: str) -> tuple[int, ...]:
    if "-" in text:
        a, b = text.split("-", 1)
        return tuple(range(int(a), int(b) + 1))
    return tuple(int(s) for s in text.split(","))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a Loc2 model from poses only (synthetic cities)",
        description="Weakly supervised training (VCE + InfoNCE, method §7) on synthetic cities rendered on the "
        "fly. Writes the checkpoint, a JSON sidecar and a loss-curve PNG; --resume continues a run.",
    )
    p.add_argument("--out", type=Path, required=True, help="checkpoint file to write")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seeds", default="1-8", help="synthetic city seeds, e.g. 1-8 or 1,2,5")
    p.add_argument("--camera", choices=["panorama", "pinhole", "mixed"], default="panorama")
    p.add_argument(
        "--max-offset", type=float, default=15.0, help="camera offset from the crop centre, metres"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from --out and its .state file")
    p.add_argument("--init", type=Path, help="start from this checkpoint's weights")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--per-city", type=int, default=200, help="training views rendered per city")
    p.add_argument("--cache", type=Path, help="keep the rendered views in this .npz (reused when it matches)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    cfg = TrainConfig(
        out=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seeds=_seed_range(args.seeds),
        camera=args.camera,
        max_offset_m=args.max_offset,
        seed=args.seed,
        resume=args.resume,
        init=args.init,
        threads=args.threads,
        per_city=args.per_city,
        cache=args.cache,
    )
    command = "loc2 " + " ".join(sys.argv[1:]) if sys.argv else ""
    path = train(cfg, command)
    preset, _, _ = read_checkpoint(path)
    print(f"wrote {path} ({preset.name}); loss curve {path.with_suffix('.loss.png')}", file=sys.stderr)
    return 0
