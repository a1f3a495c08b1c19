"""A model's confidence thresholds from held-out poses: prints them and, with ``--sidecar``, stores them.

Input: the per-photo CSV of ``benchmarks/synthetic_accuracy.py --csv`` (columns camera, status,
position_error_m, inlier_ratio; every depth source in it is pooled). A photo without a pose counts as a
miss. Output: camera kind → [medium, high] (``loc2.core.confidence``), written into the checkpoint
sidecar's ``preset.confidence_min_ratios`` with ``--sidecar``; a camera kind whose poses never reach the
rates gets no entry (its photos are then never above "low").

    .venv/bin/python scripts/calibrate_confidence.py --csv val.csv --sidecar resources/models/loc2_demo.pt.json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np

from loc2.core.solver.confidence import MIN_COUNT, confidence_thresholds


def read_rows(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Camera kind → (inlier ratios, position errors in metres; inf for a photo without a pose)."""
    by_camera: dict[str, tuple[list[float], list[float]]] = {}
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            ratios, errors = by_camera.setdefault(row["camera"], ([], []))
            located = row["status"] == "ok" and row["position_error_m"] not in ("", None)
            ratios.append(float(row["inlier_ratio"]) if located else 0.0)
            errors.append(float(row["position_error_m"]) if located else math.inf)
    return {k: (np.array(r), np.array(e)) for k, (r, e) in by_camera.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True, help="synthetic_accuracy.py --csv output")
    parser.add_argument(
        "--sidecar", type=Path, help="checkpoint sidecar (.pt.json) to store the thresholds in"
    )
    parser.add_argument("--min-count", type=int, default=MIN_COUNT, help="poses a threshold must keep")
    args = parser.parse_args()
    thresholds = {}
    for camera, (ratio, error) in sorted(read_rows(args.csv).items()):
        medium, high = confidence_thresholds(ratio, error, args.min_count)
        print(f"{camera}: {len(ratio)} photos; medium from {medium:.4f}, high from {high:.4f}")
        if math.isfinite(medium):
            thresholds[camera] = [round(medium, 4), round(high, 4) if math.isfinite(high) else None]
    if args.sidecar:
        meta = json.loads(args.sidecar.read_text())
        meta["preset"]["confidence_min_ratios"] = thresholds
        command = ["scripts/calibrate_confidence.py", "--csv", args.csv.name, "--sidecar", args.sidecar.name]
        meta["confidence_calibration"] = {"command": " ".join(command), "min_count": args.min_count}
        args.sidecar.write_text(json.dumps(meta, indent=2) + "\n")
        print(f"wrote {thresholds} into {args.sidecar}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
