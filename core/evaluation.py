"""The paper's evaluation protocol on VIGOR and KITTI: ``loc2 eval vigor|kitti``.

Metrics (method §8, datasets.md): position error ‖t̂ − t‖ in metres and yaw error |atan2(R̂10, R̂00) −
atan2(R10, R00)| folded into [0°, 180°], mean and median over the positives; for KITTI also the error split
along the true heading (longitudinal) and across it (lateral), each with recall at 1 m and 5 m, and yaw
recall at 1° and 5° (recall = fraction of samples with error strictly below the threshold).

A sample whose localization fails (no valid depth, no pose) is counted with the prior pose: the aerial
image's centre and the heading the image was prepared for (north for VIGOR, east for KITTI).

With ``--batch-size`` > 1 (worth it on a GPU), :func:`localize_samples` runs the backbone and the matcher
heads on whole batches (:func:`match_batch`) and the solver per sample (:func:`solve_sample`); with batches of
one, or for any other object with a ``localize`` method (test oracles), samples go through ``localize``.
DataLoader workers (``--workers``) read and prepare the samples in parallel.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .datasets import Sample, collate_samples, open_dataset, parse_orientation
from .depth import DepthMap, check_depth_size
from .errors import Loc2Error
from .geometry import angle_difference_deg, rotation_from_heading
from .localizer import LocalizationResult, Localizer, image_tensor

DATASET_CAMERA = {"vigor": "panorama", "kitti": "pinhole"}

# The paper's numbers (method §8): (dataset, split, orientation range) → metric → (mean, median).
PAPER_RESULTS: dict[tuple[str, str, float], dict[str, tuple[float, float]]] = {
    ("vigor", "same", 180.0): {"position_error_m": (3.94, 1.78), "yaw_error_deg": (9.54, 2.00)},
    ("vigor", "cross", 180.0): {"position_error_m": (4.23, 2.09), "yaw_error_deg": (11.67, 2.21)},
    ("kitti", "same", 10.0): {"position_error_m": (1.13, 0.77), "yaw_error_deg": (1.97, 1.43)},
    ("kitti", "cross", 10.0): {"position_error_m": (5.60, 3.01), "yaw_error_deg": (3.32, 2.12)},
    ("kitti", "cross", 180.0): {"position_error_m": (11.71, 9.11), "yaw_error_deg": (55.18, 33.41)},
}


# ----------------------------------------------------------------------------------------------- metrics
@dataclass
class Outcome:
    """The result of one sample and its errors (aerial frame: metres, x down, y right; degrees)."""

    index: int
    name: str
    status: str
    message: str
    t_true_m: list[float]
    t_pred_m: list[float]
    yaw_true_deg: float
    yaw_pred_deg: float
    position_error_m: float
    yaw_error_deg: float
    longitudinal_error_m: float
    lateral_error_m: float
    scale: float = math.nan
    num_inliers: int = 0
    inlier_ratio: float = 0.0
    runtime_s: float = 0.0


def pose_errors(
    t_pred_m: np.ndarray, R_pred: np.ndarray, t_true_m: np.ndarray, R_true: np.ndarray
) -> dict[str, float]:
    """Position, yaw, longitudinal (along the true heading) and lateral (across it) errors.

    The true heading direction in the aerial frame is R·(−1, 0) (the camera looks along −x of its BEV frame).
    """
    e = np.asarray(t_pred_m, dtype=np.float64) - np.asarray(t_true_m, dtype=np.float64)
    yaw_pred = math.degrees(math.atan2(R_pred[1, 0], R_pred[0, 0]))
    yaw_true = math.degrees(math.atan2(R_true[1, 0], R_true[0, 0]))
    d = np.array([-R_true[0, 0], -R_true[1, 0]])
    d = d / np.linalg.norm(d)
    return {
        "position_error_m": float(np.hypot(e[0], e[1])),
        "yaw_error_deg": float(angle_difference_deg(yaw_pred, yaw_true)),
        "longitudinal_error_m": float(abs(e @ d)),
        "lateral_error_m": float(abs(e[0] * d[1] - e[1] * d[0])),
        "yaw_true_deg": yaw_true,
        "yaw_pred_deg": yaw_pred,
    }


def outcome_for(sample: Sample, result: LocalizationResult) -> Outcome:
    """Errors of one result; a failed result is scored at the prior pose (centre, prepared heading)."""
    if result.ok:
        t_pred, R_pred = np.asarray(result.position_xy_m, float), np.asarray(result.rotation, float)
    else:
        t_pred, R_pred = np.zeros(2), rotation_from_heading(sample.prior_heading_deg)
    err = pose_errors(t_pred, R_pred, sample.t_true_m, sample.R_true)
    timings = getattr(result, "timings_s", {}) or {}
    return Outcome(
        index=sample.index,
        name=sample.name,
        status=result.status,
        message=result.message,
        t_true_m=[float(v) for v in sample.t_true_m],
        t_pred_m=[float(v) for v in t_pred],
        scale=float(result.scale) if result.ok else math.nan,
        num_inliers=int(result.num_inliers),
        inlier_ratio=float(result.inlier_ratio),
        runtime_s=float(sum(timings.values())),
        **err,
    )


def _mean_median(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"mean": math.nan, "median": math.nan}
    return {"mean": float(np.mean(values)), "median": float(np.median(values))}


def _recall(values: np.ndarray, thresholds: tuple[float, ...], unit: str) -> dict[str, float]:
    n = max(len(values), 1)
    return {f"recall@{t:g}{unit}": float(np.sum(values < t) / n) for t in thresholds}


def summarize(outcomes: list[Outcome], dataset: str) -> dict:
    """The paper's metrics over all outcomes (failures included at the prior pose)."""
    pos = np.array([o.position_error_m for o in outcomes])
    yaw = np.array([o.yaw_error_deg for o in outcomes])
    metrics: dict = {
        "count": len(outcomes),
        "failed": sum(o.status != "ok" for o in outcomes),
        "position_error_m": _mean_median(pos),
        "yaw_error_deg": _mean_median(yaw),
    }
    if dataset == "kitti":
        lon = np.array([o.longitudinal_error_m for o in outcomes])
        lat = np.array([o.lateral_error_m for o in outcomes])
        metrics["longitudinal_error_m"] = {**_mean_median(lon), **_recall(lon, (1.0, 5.0), "m")}
        metrics["lateral_error_m"] = {**_mean_median(lat), **_recall(lat, (1.0, 5.0), "m")}
        metrics["yaw_error_deg"].update(_recall(yaw, (1.0, 5.0), "deg"))
    return metrics


# ---------------------------------------------------------------------------------------------- progress
class ProgressBar:
    """A small progress bar on stderr: count, rate, time left and a short status text.

    On a terminal it redraws one line; elsewhere (logs) it writes a line at most every ``log_every_s``.
    """

    def __init__(self, total: int, label: str, stream=None, enabled: bool = True, log_every_s: float = 10.0):
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_every_s = log_every_s
        self.done = 0
        self.start = time.perf_counter()
        self._last = -math.inf

    def text(self, status: str = "") -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        frac = self.done / self.total if self.total else 1.0
        width = 24
        filled = int(round(frac * width))
        left = (self.total - self.done) / rate if rate > 0 else math.nan
        eta = time.strftime("%H:%M:%S", time.gmtime(left)) if math.isfinite(left) else "--:--:--"
        bar = "#" * filled + "." * (width - filled)
        return f"{self.label} {self.done}/{self.total} [{bar}] {frac:6.1%} {rate:.2f}/s left {eta} {status}".rstrip()

    def update(self, n: int = 1, status: str = "") -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.perf_counter()
        finished = self.done >= self.total
        if self.tty:
            if finished or now - self._last >= 0.1:
                self.stream.write("\r" + self.text(status) + "\x1b[K")
                self.stream.flush()
                self._last = now
        elif finished or now - self._last >= self.log_every_s:
            self.stream.write(self.text(status) + "\n")
            self.stream.flush()
            self._last = now

    def close(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()


# --------------------------------------------------------------------------------------------- inference
def _depth_of(sample: Sample, depth_provider) -> DepthMap:
    if sample.depth is not None:
        return sample.depth
    if depth_provider is None:
        raise Loc2Error(f"{sample.name}: the sample has no depth map; give a depth model (--depth-model)")
    return depth_provider.depth_for(sample.ground_rgb, sample.camera)


def _generator(localizer, seed: int, index: int) -> torch.Generator:
    device = getattr(localizer, "device", torch.device("cpu"))
    return torch.Generator(device=device).manual_seed(int(seed) * 1_000_003 + int(index))


def localize_one(localizer, sample: Sample, use_ransac: bool, generator, depth_provider=None):
    """``localizer.localize`` on one sample (any object with that method, e.g. a test oracle)."""
    return localizer.localize(
        sample.ground_rgb,
        sample.aerial_rgb,
        sample.aerial_footprint_m,
        _depth_of(sample, depth_provider),
        camera=sample.camera,
        generator=generator,
        use_ransac=use_ransac,
    )


def _batchable(localizer, samples: list[Sample]) -> bool:
    if not isinstance(localizer, Localizer) or len(samples) < 2:
        return False
    first = samples[0]
    return all(
        s.ground_rgb.shape == first.ground_rgb.shape and s.aerial_rgb.shape == first.aerial_rgb.shape
        for s in samples
    )


@dataclass
class BatchMatches:
    """Matching probabilities of a batch and what the solver needs per sample.

    Attributes:
        P: (B, A, G) matching probabilities (aerial points × ground tokens).
        lifted: per sample, the ground BEV points (G, 2) (metres, NaN without depth) and their validity (G,).
        grid_rc: ground token grid (rows, cols); input_hw: backbone input size; image_hw: ground image size.
        timings_s: seconds per stage for the whole batch.
    """

    P: torch.Tensor
    lifted: list[tuple[np.ndarray, np.ndarray]]
    grid_rc: tuple[int, int]
    input_hw: tuple[int, int]
    image_hw: tuple[int, int]
    timings_s: dict[str, float]


@torch.inference_mode()
def match_batch(loc: Localizer, samples: list[Sample], depth_provider=None) -> BatchMatches:
    """Backbone (ground, aerial) and matcher heads on a whole batch of same-sized samples."""
    dev, preset = loc.device, loc.preset
    t0 = time.perf_counter()
    depths = [_depth_of(s, depth_provider) for s in samples]
    timings = {"depth": time.perf_counter() - t0}
    h_img, w_img = samples[0].ground_rgb.shape[:2]
    in_h, in_w = loc.input_size(w_img, h_img)
    size = preset.aerial_size_px
    t0 = time.perf_counter()
    g_feat = loc.features(torch.cat([image_tensor(s.ground_rgb, (in_h, in_w), dev) for s in samples]))
    _sync(dev)
    timings["backbone_ground"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    a_feat = loc.features(torch.cat([image_tensor(s.aerial_rgb, (size, size), dev) for s in samples]))
    _sync(dev)
    timings["backbone_aerial"] = time.perf_counter() - t0
    rows, cols = g_feat.shape[-2:]
    lifted = [_lift(loc, s, d, (rows, cols), (in_h, in_w)) for s, d in zip(samples, depths, strict=True)]
    valid = torch.from_numpy(np.stack([v for _, v in lifted])).to(dev)
    t0 = time.perf_counter()
    P = loc.matcher(g_feat, a_feat, valid, None)
    _sync(dev)
    timings["heads"] = time.perf_counter() - t0
    return BatchMatches(P, lifted, (rows, cols), (in_h, in_w), (h_img, w_img), timings)


@torch.inference_mode()
def solve_sample(
    loc: Localizer, matches: BatchMatches, i: int, sample: Sample, use_ransac: bool, generator=None
) -> LocalizationResult:
    """RANSAC (or the direct solve) for sample ``i`` of a batch; batch timings are shared equally."""
    n = matches.P.shape[0]
    timings = {k: v / n for k, v in matches.timings_s.items()}
    ground_xy, ok = matches.lifted[i]
    return loc.solve(
        matches.P[i],
        ground_xy,
        ok,
        sample.aerial_footprint_m,
        matches.grid_rc,
        matches.input_hw,
        matches.image_hw,
        generator,
        use_ransac,
        timings,
    )


def localize_samples(
    localizer,
    samples: list[Sample],
    use_ransac: bool = True,
    generators: list | None = None,
    depth_provider=None,
) -> list[LocalizationResult]:
    """Localize a batch: backbone and heads batched on the device (:func:`match_batch`), the solver per sample.

    Falls back to one ``localize`` call per sample for non-Localizer objects, a batch of one, or samples of
    different sizes.
    """
    generators = generators or [None] * len(samples)
    if not _batchable(localizer, samples):
        return [
            localize_one(localizer, s, use_ransac, g, depth_provider)
            for s, g in zip(samples, generators, strict=True)
        ]
    matches = match_batch(localizer, samples, depth_provider)
    return [solve_sample(localizer, matches, i, s, use_ransac, generators[i]) for i, s in enumerate(samples)]


def _lift(
    loc: Localizer, sample: Sample, depth: DepthMap, grid_rc, input_hw
) -> tuple[np.ndarray, np.ndarray]:
    """Lifted ground tokens (rows·cols, 2) and their validity, exactly as ``Localizer.localize`` forms them."""
    h_img, w_img = sample.ground_rgb.shape[:2]
    camera = sample.camera
    if (camera.width, camera.height) != (w_img, h_img):
        camera = camera.scaled(w_img, h_img)
    check_depth_size(depth.depth_m, (h_img, w_img), f"{sample.name}: depth map")
    return loc.lift(depth, camera, grid_rc, input_hw)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------------------------ runner
@dataclass
class EvalReport:
    """Configuration, summary metrics and per-sample outcomes of one evaluation run."""

    dataset: str
    split: str
    orientation_deg: float
    ransac: bool
    metrics: dict
    outcomes: list[Outcome] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    elapsed_s: float = 0.0

    @property
    def paper(self) -> dict[str, tuple[float, float]] | None:
        """The paper's (mean, median) for this configuration, where it reports one."""
        return PAPER_RESULTS.get((self.dataset, self.split, float(self.orientation_deg)))

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "split": self.split,
            "orientation_deg": self.orientation_deg,
            "ransac": self.ransac,
            "elapsed_s": self.elapsed_s,
            "metrics": self.metrics,
            "paper": {k: {"mean": v[0], "median": v[1]} for k, v in (self.paper or {}).items()},
            "config": self.config,
            "samples": [asdict(o) for o in self.outcomes],
        }

    def write_json(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_json_safe(self.to_dict()), indent=2))

    def to_markdown(self) -> str:
        return markdown_table(self)

    def write_markdown(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_markdown())


def _json_safe(obj):
    """NaN/inf → None so the JSON is standard."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_json_safe(v) for v in obj]
    return obj


def _f(v: float, digits: int = 2) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}f}"


def markdown_table(report: EvalReport) -> str:
    """The paper-style table: our row, and the paper's where it reports this configuration."""
    m = report.metrics
    orient = {0.0: "known", 180.0: "unknown"}.get(report.orientation_deg, f"±{report.orientation_deg:g}°")
    title = (
        f"### {report.dataset.upper()} {report.split}-area, orientation {orient}, "
        f"{'with' if report.ransac else 'without'} RANSAC — {m['count']} samples ({m['failed']} failed)\n\n"
    )
    pos, yaw = m["position_error_m"], m["yaw_error_deg"]
    paper = report.paper
    if report.dataset != "kitti":
        lines = [
            "| | position mean (m) | position median (m) | yaw mean (°) | yaw median (°) |",
            "|---|---:|---:|---:|---:|",
            f"| Loc2 for QGIS | {_f(pos['mean'])} | {_f(pos['median'])} | {_f(yaw['mean'])} | {_f(yaw['median'])} |",
        ]
        if paper:
            p, y = paper["position_error_m"], paper["yaw_error_deg"]
            lines.append(f"| paper | {p[0]:.2f} | {p[1]:.2f} | {y[0]:.2f} | {y[1]:.2f} |")
        return title + "\n".join(lines) + "\n"
    lon, lat = m["longitudinal_error_m"], m["lateral_error_m"]
    lines = [
        "| | position mean (m) | position median (m) | lateral R@1m | lateral R@5m | longitudinal R@1m "
        "| longitudinal R@5m | yaw mean (°) | yaw median (°) | yaw R@1° | yaw R@5° |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| Loc2 for QGIS | {_f(pos['mean'])} | {_f(pos['median'])} | {_pct(lat['recall@1m'])} | "
        f"{_pct(lat['recall@5m'])} | {_pct(lon['recall@1m'])} | {_pct(lon['recall@5m'])} | {_f(yaw['mean'])} | "
        f"{_f(yaw['median'])} | {_pct(yaw['recall@1deg'])} | {_pct(yaw['recall@5deg'])} |",
    ]
    if paper:
        p, y = paper["position_error_m"], paper["yaw_error_deg"]
        lines.append(f"| paper | {p[0]:.2f} | {p[1]:.2f} | | | | | {y[0]:.2f} | {y[1]:.2f} | | |")
    return title + "\n".join(lines) + "\n"


def _pct(v: float) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.2f}%"


def evaluate(
    localizer,
    dataset,
    *,
    dataset_name: str,
    use_ransac: bool = True,
    batch_size: int = 1,
    workers: int = 0,
    seed: int = 0,
    depth_provider=None,
    progress: bool = True,
    stream=None,
) -> EvalReport:
    """Run ``localizer`` over ``dataset`` (a VigorDataset / KittiDataset or any sequence of Samples).

    Args:
        localizer: a :class:`Localizer` (batched path when ``batch_size`` > 1) or any object with ``localize``.
        dataset_name: ``vigor`` or ``kitti`` (which metrics).
        workers: DataLoader worker processes that read and prepare the samples.
        seed: seeds RANSAC per sample (seed, index), so runs are reproducible.
        depth_provider: computes depth for samples read without depth maps.
    """
    from torch.utils.data import DataLoader

    loader = DataLoader(
        dataset,
        batch_size=max(1, batch_size),
        shuffle=False,
        num_workers=max(0, workers),
        collate_fn=collate_samples,
    )
    bar = ProgressBar(len(dataset), f"eval {dataset_name}", stream=stream, enabled=progress)
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    for batch in loader:
        gens = [_generator(localizer, seed, s.index) for s in batch]
        results = localize_samples(localizer, batch, use_ransac, gens, depth_provider)
        for sample, result in zip(batch, results, strict=True):
            outcomes.append(outcome_for(sample, result))
        recent = np.median([o.position_error_m for o in outcomes])
        bar.update(len(batch), status=f"median {recent:.2f} m")
    bar.close()
    orientation = float(getattr(dataset, "orientation_deg", math.nan))
    return EvalReport(
        dataset=dataset_name,
        split=str(getattr(dataset, "split", "")),
        orientation_deg=orientation,
        ransac=use_ransac,
        metrics=summarize(outcomes, dataset_name),
        outcomes=outcomes,
        config={"batch_size": batch_size, "workers": workers, "seed": seed},
        elapsed_s=time.perf_counter() - start,
    )


# --------------------------------------------------------------------------------------------------- CLI
def add_parser(subparsers) -> None:
    """Register ``loc2 eval``."""
    p = subparsers.add_parser(
        "eval",
        help="reproduce the paper's VIGOR / KITTI evaluation",
        description="Evaluate a Loc2 model on VIGOR or KITTI as the paper does (positives only).",
    )
    p.add_argument("dataset", choices=("vigor", "kitti"))
    p.add_argument("--root", required=True, type=Path, help="dataset root folder")
    p.add_argument("--split", choices=("same", "cross"), default="same", help="same-area or cross-area")
    p.add_argument(
        "--orientation",
        default=None,
        help="known | unknown | degrees of orientation noise (KITTI: 10 or 180). Default: VIGOR unknown, KITTI 10",
    )
    p.add_argument("--backbone-weights", help="DINOv2 weights: a file or a registry name (loc2 models list)")
    p.add_argument("--matcher-weights", help="published Loc2 matcher weights: a file or a registry name")
    p.add_argument(
        "--checkpoint", help="a checkpoint made by this software (instead of the two weight files)"
    )
    p.add_argument("--no-ransac", action="store_true", help="one weighted solve on 1,024 samples (no RANSAC)")
    p.add_argument("--limit", type=int, help="evaluate only the first N samples")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument(
        "--batch-size", type=int, default=1, help="samples per batch (GPU: batched backbone and heads)"
    )
    p.add_argument("--device", default="auto", help="auto | cuda | cpu | mps")
    p.add_argument("--seed", type=int, default=0, help="seeds the VIGOR roll and RANSAC")
    p.add_argument("--depth-dir", help="depth folder name (default: the published one)")
    p.add_argument(
        "--depth-model", type=Path, help="compute depth on the fly with this Depth Anything V2 folder"
    )
    p.add_argument("--split-file", type=Path, help="KITTI: a split file instead of test1/test2_files.txt")
    p.add_argument("--json", type=Path, help="write metrics and per-sample results here")
    p.add_argument("--markdown", type=Path, help="write the Markdown table here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_eval)


def load_localizer_for_eval(args) -> Localizer:
    """The model of ``--checkpoint`` or of the preset with ``--backbone-weights`` and ``--matcher-weights``."""
    from .models import resolve_weights

    if args.checkpoint:
        return Localizer.from_checkpoint(resolve_weights(args.checkpoint), device=args.device)
    if not (args.backbone_weights and args.matcher_weights):
        raise Loc2Error("give --checkpoint, or both --backbone-weights and --matcher-weights")
    return Localizer.from_preset(
        args.dataset,
        backbone_weights=resolve_weights(args.backbone_weights),
        matcher_weights=resolve_weights(args.matcher_weights),
        device=args.device,
    )


def run_eval(args) -> int:
    localizer = load_localizer_for_eval(args)
    preset = localizer.preset
    if preset.camera != DATASET_CAMERA[args.dataset]:
        raise Loc2Error(
            f"the model expects {preset.camera} images but {args.dataset} has {DATASET_CAMERA[args.dataset]}"
        )
    depth_provider = None
    depth_dir = args.depth_dir
    if args.depth_model is not None:
        from .depth_models import DepthAnythingV2

        depth_provider = DepthAnythingV2(args.depth_model, device=args.device)
    kwargs: dict = {
        "ground_size_hw": tuple(preset.ground_size_hw),
        "aerial_size_px": preset.aerial_size_px,
        "limit": args.limit,
    }
    if depth_dir is not None or args.depth_model is not None:
        kwargs["depth_dir"] = depth_dir
    if args.dataset == "vigor":
        kwargs["seed"] = args.seed
    elif args.split_file is not None:
        kwargs["split_file"] = args.split_file
    orientation = parse_orientation(args.orientation, args.dataset)
    dataset = open_dataset(args.dataset, args.root, args.split, orientation, **kwargs)
    report = evaluate(
        localizer,
        dataset,
        dataset_name=args.dataset,
        use_ransac=not args.no_ransac,
        batch_size=args.batch_size,
        workers=args.workers,
        seed=args.seed,
        depth_provider=depth_provider,
        progress=not args.quiet,
    )
    report.config.update(
        {
            "root": str(args.root),
            "device": str(localizer.device),
            "checkpoint": args.checkpoint,
            "backbone_weights": args.backbone_weights,
            "matcher_weights": args.matcher_weights,
            "limit": args.limit,
        }
    )
    if args.json:
        report.write_json(args.json)
    if args.markdown:
        report.write_markdown(args.markdown)
    print(report.to_markdown())
    return 0
