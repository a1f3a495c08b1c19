"""The paper's metrics (method §8, datasets.md) and the evaluation report.

Position error ‖t̂ − t‖ in metres and yaw error |yaŵ − yaw| folded into [0°, 180°] (yaw = atan2(R10, R00),
:attr:`Similarity2D.yaw_deg`), mean and median over the positives; for KITTI also the error split along the
true heading (longitudinal) and across it (lateral), each with recall at 1 m and 5 m, and yaw recall at 1°
and 5° (recall = fraction of samples with error strictly below the threshold). A sample whose localization
fails (no valid depth, no pose) is counted at the prior pose: the aerial image's centre and the heading the
image was prepared for (north for VIGOR, east for KITTI).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..geometry.frames import angle_difference_deg
from ..geometry.pose import Similarity2D
from ..localizer import LocalizationResult
from .datasets import Sample

# The paper's numbers (method §8): (dataset, split, orientation range) → metric → (mean, median).
PAPER_RESULTS: dict[tuple[str, str, float], dict[str, tuple[float, float]]] = {
    ("vigor", "same", 180.0): {"position_error_m": (3.94, 1.78), "yaw_error_deg": (9.54, 2.00)},
    ("vigor", "cross", 180.0): {"position_error_m": (4.23, 2.09), "yaw_error_deg": (11.67, 2.21)},
    ("kitti", "same", 10.0): {"position_error_m": (1.13, 0.77), "yaw_error_deg": (1.97, 1.43)},
    ("kitti", "cross", 10.0): {"position_error_m": (5.60, 3.01), "yaw_error_deg": (3.32, 2.12)},
    ("kitti", "cross", 180.0): {"position_error_m": (11.71, 9.11), "yaw_error_deg": (55.18, 33.41)},
}


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


def pose_errors(pred: Similarity2D, true: Similarity2D) -> dict[str, float]:
    """Position, yaw, longitudinal (along the true heading) and lateral (across it) errors of a pose.

    The true heading direction in the aerial frame is R·(−1, 0) (the camera looks along −x of its BEV frame).
    """
    e = np.asarray(pred.t, dtype=np.float64) - np.asarray(true.t, dtype=np.float64)
    yaw_pred, yaw_true = pred.yaw_deg, true.yaw_deg
    d = np.array([-true.R[0, 0], -true.R[1, 0]])
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
    pred = result.pose if result.ok else Similarity2D.from_heading(sample.prior_heading_aerial_deg)
    err = pose_errors(pred, sample.pose_true)
    timings = getattr(result, "timings_s", {}) or {}
    return Outcome(
        index=sample.index,
        name=sample.name,
        status=result.status,
        message=result.message,
        t_true_m=[float(v) for v in sample.pose_true.t],
        t_pred_m=[float(v) for v in pred.t],
        scale=float(result.pose.s) if result.ok else math.nan,
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
