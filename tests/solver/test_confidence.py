"""Confidence thresholds calibrated from held-out poses, and the script that stores them with a model."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from loc2.core.model.presets import Preset
from loc2.core.solver.confidence import confidence_thresholds, lowest_reliable_ratio

ROOT = Path(__file__).resolve().parents[2]


def _held_out(rng):
    """60 poses at ratio ≥ 0.05 within 0.5 m; 30 at 0.03-0.05 within 3 m; 60 below 0.03, half beyond 5 m
    (the highest of them first)."""
    low = np.sort(rng.uniform(0, 0.0299, 60))[::-1]
    ratio = np.concatenate([rng.uniform(0.05, 0.09, 60), rng.uniform(0.03, 0.0499, 30), low])
    error = np.concatenate(
        [rng.uniform(0, 0.5, 60), rng.uniform(1.5, 3.0, 30), np.where(np.arange(60) % 2, 0.4, 12.0)]
    )
    return ratio, error


def _expected(ratio):
    """medium: every pose from the middle group on is within 5 m (one miss more: 90/91 < 99 %); high: 95 %
    within 1 m allows 3 middle poses after the 60 good ones (60/63), not a 4th (60/64)."""
    return ratio[60:90].min(), np.sort(ratio[60:90])[-3]


def test_thresholds_fall_where_the_error_changes():
    ratio, error = _held_out(np.random.default_rng(0))
    assert confidence_thresholds(ratio, error) == pytest.approx(_expected(ratio))


def test_a_rate_never_reached_gives_no_threshold_and_high_is_never_below_medium():
    ratio = np.linspace(0.01, 0.1, 50)
    assert lowest_reliable_ratio(ratio, np.full(50, 9.0), 5.0, 0.99) == math.inf
    # within 1 m from the start but some beyond 5 m among the lowest: high would sit below medium
    error = np.where(np.arange(50) < 3, 20.0, 0.5)
    medium, high = confidence_thresholds(ratio, error)
    assert medium == pytest.approx(ratio[3]) and high == medium


def test_too_few_poses_above_a_threshold_are_not_judged():
    ratio = np.linspace(0.01, 0.1, 30)
    error = np.where(np.arange(30) == 29, 20.0, 0.5)  # the single highest ratio is a miss
    assert lowest_reliable_ratio(ratio, error, 5.0, 0.99, min_count=20) == math.inf  # 1 of 20..30 fails 0.99
    assert lowest_reliable_ratio(ratio, error, 5.0, 0.95, min_count=20) == pytest.approx(ratio[0])


def test_script_writes_the_thresholds_into_the_sidecar(tmp_path):
    ratio, error = _held_out(np.random.default_rng(1))
    with open(tmp_path / "rows.csv", "w", newline="") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=["depth", "camera", "status", "position_error_m", "inlier_ratio"]
        )
        writer.writeheader()
        for r, e in zip(ratio, error, strict=True):
            writer.writerow({"depth": "flat", "camera": "panorama", "status": "ok", "position_error_m": e,
                             "inlier_ratio": r})  # fmt: skip
        for r in np.linspace(0.01, 0.1, 30):  # pinhole photos whose poses are never reliable
            writer.writerow({"depth": "flat", "camera": "pinhole", "status": "ok", "position_error_m": 9.0,
                             "inlier_ratio": r})  # fmt: skip
        writer.writerow({"depth": "flat", "camera": "panorama", "status": "no_pose", "position_error_m": "",
                         "inlier_ratio": 0.0})  # fmt: skip
    sidecar = tmp_path / "m.pt.json"
    sidecar.write_text(json.dumps({"preset": {"name": "m", "camera": "panorama", "ground_size_hw": [8, 16],
                                              "aerial_size_px": 8, "aerial_footprint_m": 72.0,
                                              "max_depth_m": 35.0, "depth_kind": "radial"}}))  # fmt: skip
    script = ROOT / "scripts" / "calibrate_confidence.py"
    out = subprocess.run(  # nosec B603 - this interpreter and a fixed script
        [sys.executable, str(script), "--csv", str(tmp_path / "rows.csv"), "--sidecar", str(sidecar)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert "panorama: 151 photos" in out.stdout
    preset = Preset.from_dict(json.loads(sidecar.read_text())["preset"])
    medium, high = preset.confidence_min_ratios_for("panorama")
    assert (medium, high) == pytest.approx(_expected(ratio), abs=1e-4)
    assert preset.confidence_min_ratios_for("pinhole") == (math.inf, math.inf)
