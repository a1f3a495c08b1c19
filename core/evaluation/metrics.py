"""The paper's metrics (method §8, §10, datasets.md) and the evaluation report.

Position error ‖t̂ − t‖ in metres and yaw error |yaŵ − yaw| folded into [0°, 180°] (yaw = atan2(R10, R00),
:attr:`Similarity2D.yaw_deg`), mean and median over the positives; for KITTI also the position error split
in two ways, each with mean, median and recall at 1 m and 5 m, and yaw recall at 1° and 5° (recall = the
fraction of samples with an error strictly below the threshold):

* the paper's columns, ``paper_lateral_error_m`` and ``paper_longitudinal_error_m``, in the release's
  convention (method §10): with (dx, dy) the (row, column) offsets of prediction − truth on the aerial image
  and h = (sin ψ, cos ψ), ψ the true yaw in degrees, longitudinal = |dx·h₀ + dy·h₁| and lateral =
  |h₀·dy − h₁·dx|. Compare these with the paper's table. They are not the split along the vehicle: with
  the heading east (α = 0) the paper's "longitudinal" is the north–south error, across the heading;
* the geometric split, ``along_heading_error_m`` and ``across_heading_error_m``: the error's components
  along the camera's true heading and across it (what a driver calls longitudinal and lateral).

A sample without a pose (no valid depth, no solvable pose) is left out of the statistics, as the release
leaves it out, and counted (``without_pose``); its outcome keeps its status and has no errors.
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
from ..types import STATUS_OK
from .datasets import Sample

# The paper's numbers (method §8): (dataset, split, orientation range) → metric → (mean, median).
PAPER_RESULTS: dict[tuple[str, str, float], dict[str, tuple[float, float]]] = {
    ("vigor", "same", 180.0): {"position_error_m": (3.94, 1.78), "yaw_error_deg": (9.54, 2.00)},
    ("vigor", "cross", 180.0): {"position_error_m": (4.23, 2.09), "yaw_error_deg": (11.67, 2.21)},
    ("kitti", "same", 10.0): {"position_error_m": (1.13, 0.77), "yaw_error_deg": (1.97, 1.43)},
    ("kitti", "cross", 10.0): {"position_error_m": (5.60, 3.01), "yaw_error_deg": (3.32, 2.12)},
    ("kitti", "cross", 180.0): {"position_error_m": (11.71, 9.11), "yaw_error_deg": (55.18, 33.41)},
}
# The two splits of a KITTI position error (metric name → what it is), in the report's JSON and Markdown.
KITTI_SPLITS: dict[str, str] = {
    "paper_lateral_error_m": "the paper's 'lateral' column, in the release's convention: |h0*dy - h1*dx|, "
    "(dx, dy) = (row, column) offsets of prediction - truth, h = (sin psi, cos psi), psi = the true yaw",
    "paper_longitudinal_error_m": "the paper's 'longitudinal' column, in the release's convention: "
    "|dx*h0 + dy*h1| (same dx, dy, h); not the error along the vehicle's heading",
    "across_heading_error_m": "the error across the camera's true heading (geometric lateral)",
    "along_heading_error_m": "the error along the camera's true heading (geometric longitudinal)",
}
ERROR_NAMES = ("position_error_m", "yaw_error_deg", *KITTI_SPLITS)


@dataclass
class Outcome:
    """The result of one sample and its errors (aerial frame: metres, x down, y right; degrees). Without a
    pose (``status`` not ``ok``) the predicted values and the errors are NaN."""

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
    paper_lateral_error_m: float
    paper_longitudinal_error_m: float
    across_heading_error_m: float
    along_heading_error_m: float
    scale: float = math.nan
    num_inliers: int = 0
    inlier_ratio: float = 0.0
    runtime_s: float = 0.0

    @property
    def has_pose(self) -> bool:
        return self.status == STATUS_OK


def pose_errors(pred: Similarity2D, true: Similarity2D) -> dict[str, float]:
    """Position and yaw errors of a pose, and the position error split the paper's way and along / across
    the true heading (the module docstring). Both poses in metres of the aerial frame (x down, y right).

    The camera looks along −x of its BEV frame, so its true heading in the aerial frame is R·(−1, 0).
    """
    e = np.asarray(pred.t, dtype=np.float64) - np.asarray(true.t, dtype=np.float64)
    yaw_pred, yaw_true = pred.yaw_deg, true.yaw_deg
    d = np.array([-true.R[0, 0], -true.R[1, 0]])
    d = d / np.linalg.norm(d)
    psi = math.radians(yaw_true)
    h0, h1 = math.sin(psi), math.cos(psi)  # the release's "heading" vector (method §10)
    dx, dy = e  # rows (down) and columns (right) of the aerial image, in metres
    return {
        "position_error_m": float(np.hypot(e[0], e[1])),
        "yaw_error_deg": float(angle_difference_deg(yaw_pred, yaw_true)),
        "paper_lateral_error_m": abs(h0 * dy - h1 * dx),
        "paper_longitudinal_error_m": abs(dx * h0 + dy * h1),
        "across_heading_error_m": float(abs(e[0] * d[1] - e[1] * d[0])),
        "along_heading_error_m": float(abs(e @ d)),
        "yaw_true_deg": yaw_true,
        "yaw_pred_deg": yaw_pred,
    }


def outcome_for(sample: Sample, result: LocalizationResult) -> Outcome:
    """Errors of one result, its position in metres (``Sample.aerial_unit_m``); without a pose, NaN errors
    (the statistics leave it out)."""
    timings = getattr(result, "timings_s", {}) or {}
    common = {
        "index": sample.index,
        "name": sample.name,
        "status": result.status,
        "message": result.message,
        "t_true_m": [float(v) for v in sample.pose_true.t],
        "num_inliers": int(result.num_inliers),
        "inlier_ratio": float(result.inlier_ratio),
        "runtime_s": float(sum(timings.values())),
    }
    if not result.ok:
        no_pose = dict.fromkeys(ERROR_NAMES, math.nan)
        yaw_true = sample.pose_true.yaw_deg
        return Outcome(
            **common, t_pred_m=[math.nan] * 2, yaw_true_deg=yaw_true, yaw_pred_deg=math.nan, **no_pose
        )
    pose = result.pose
    pred = Similarity2D(pose.R, np.asarray(pose.t, dtype=np.float64) * sample.aerial_unit_m, pose.s)
    return Outcome(
        **common,
        t_pred_m=[float(v) for v in pred.t],
        scale=float(pose.s),
        **pose_errors(pred, sample.pose_true),
    )


def _mean_median(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {"mean": math.nan, "median": math.nan}
    return {"mean": float(np.mean(values)), "median": float(np.median(values))}


def _recall(values: np.ndarray, thresholds: tuple[float, ...], unit: str) -> dict[str, float]:
    n = max(len(values), 1)
    return {f"recall@{t:g}{unit}": float(np.sum(values < t) / n) for t in thresholds}


def summarize(outcomes: list[Outcome], dataset: str) -> dict:
    """The paper's metrics over the outcomes with a pose; those without one are counted and left out."""
    posed = [o for o in outcomes if o.has_pose]

    def values(name: str) -> np.ndarray:
        return np.array([getattr(o, name) for o in posed], dtype=np.float64)

    metrics: dict = {
        "count": len(outcomes),
        "with_pose": len(posed),
        "without_pose": len(outcomes) - len(posed),
        "position_error_m": _mean_median(values("position_error_m")),
        "yaw_error_deg": _mean_median(values("yaw_error_deg")),
    }
    if dataset == "kitti":
        for name in KITTI_SPLITS:
            metrics[name] = {**_mean_median(values(name)), **_recall(values(name), (1.0, 5.0), "m")}
        metrics["yaw_error_deg"].update(_recall(values("yaw_error_deg"), (1.0, 5.0), "deg"))
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
            "statistics": "over the samples with a pose; those without one are counted (without_pose) and "
            "left out, as the release leaves them out",
            **({"kitti_splits": KITTI_SPLITS} if self.dataset == "kitti" else {}),
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
    """The paper-style table: our row, and the paper's where it reports this configuration; for KITTI the
    paper's columns (its convention) and then the split along and across the heading."""
    m = report.metrics
    orient = {0.0: "known", 180.0: "unknown"}.get(report.orientation_deg, f"±{report.orientation_deg:g}°")
    solver = "with RANSAC" if report.ransac else "without RANSAC (one weighted solve)"
    title = (
        f"### {report.dataset.upper()} {report.split}-area, orientation {orient}, {solver} — {m['count']} "
        f"samples, {m['with_pose']} with a pose ({m['without_pose']} without one: left out of the statistics "
        "and counted, as the release does)\n\n"
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
    lon, lat = m["paper_longitudinal_error_m"], m["paper_lateral_error_m"]
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
    along, across = m["along_heading_error_m"], m["across_heading_error_m"]
    note = (
        "\nLateral and longitudinal above are the paper's columns in the release's convention: with (dx, dy) "
        "the (row, column) offsets of prediction − truth and h = (sin ψ, cos ψ), ψ the true yaw, longitudinal "
        "= |dx·h₀ + dy·h₁| and lateral = |h₀·dy − h₁·dx|. That is not the split along the vehicle (heading "
        "east, the paper's longitudinal is the north–south error). Along and across the camera's true "
        "heading:\n\n"
    )
    geometric = [
        "| | along-heading mean (m) | along median (m) | along R@1m | along R@5m | across-heading mean (m) "
        "| across median (m) | across R@1m | across R@5m |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| Loc2 for QGIS | {_f(along['mean'])} | {_f(along['median'])} | {_pct(along['recall@1m'])} | "
        f"{_pct(along['recall@5m'])} | {_f(across['mean'])} | {_f(across['median'])} | "
        f"{_pct(across['recall@1m'])} | {_pct(across['recall@5m'])} |",
    ]
    return title + "\n".join(lines) + "\n" + note + "\n".join(geometric) + "\n"


def _pct(v: float) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{100 * v:.2f}%"
