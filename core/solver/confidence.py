"""A pose's confidence class from its inlier ratio, and a model's thresholds: the inlier ratios above which
its poses are reliably close to the truth.

The inlier ratio orders a model's poses by error (the paper's interpretability claim), but where it becomes
reassuring depends on the model: the published weights' poses are good from about 15-40 % inliers; a small
model's ratios run several times lower. This module picks a model's (medium, high) thresholds from held-out
poses with known error (``benchmarks/synthetic_accuracy.py --csv``); they go into the checkpoint's sidecar
as ``preset.confidence_min_ratios`` (camera kind → [medium, high]).
"""

from __future__ import annotations

import math

import numpy as np

from ..types import CONFIDENCE_HIGH, CONFIDENCE_LOW, CONFIDENCE_MEDIUM, CONFIDENCE_NONE

# The published weights' thresholds, from the inlier ratio (inliers within 2.5 m / sampled correspondences on
# one aerial footprint around the pose): the paper reports that the localization error falls steeply while
# the inlier ratio rises from 10 % to 50 % and flattens after, so below 15 % a pose is in the steep,
# unreliable part of that curve and from 40 % on close to the flat part. A model's own thresholds (its ratios
# run lower or higher) come with it (``Preset.confidence_min_ratios``).
CONFIDENCE_MEDIUM_MIN_RATIO = 0.15
CONFIDENCE_HIGH_MIN_RATIO = 0.40
PAPER_MIN_RATIOS = (CONFIDENCE_MEDIUM_MIN_RATIO, CONFIDENCE_HIGH_MIN_RATIO)


def confidence_class(inlier_ratio: float | None, min_ratios: tuple[float, float] = PAPER_MIN_RATIOS) -> str:
    """``high`` / ``medium`` / ``low`` from the inlier ratio; ``none`` if unknown.

    ``min_ratios`` = (medium, high): the lowest ratio of each class (default: the paper's, above).
    """
    if inlier_ratio is None or not math.isfinite(inlier_ratio):
        return CONFIDENCE_NONE
    medium, high = min_ratios
    if inlier_ratio >= high:
        return CONFIDENCE_HIGH
    if inlier_ratio >= medium:
        return CONFIDENCE_MEDIUM
    return CONFIDENCE_LOW


# Calibration. "high": poses at or above the threshold are within 1 m this often; "medium": within 5 m this often
HIGH_WITHIN_M, HIGH_RATE = 1.0, 0.95
MEDIUM_WITHIN_M, MEDIUM_RATE = 5.0, 0.99
MIN_COUNT = 20  # poses a threshold must keep above it to be judged


def lowest_reliable_ratio(
    inlier_ratio: np.ndarray,
    position_error_m: np.ndarray,
    within_m: float,
    rate: float,
    min_count: int = MIN_COUNT,
) -> float:
    """The lowest inlier ratio t such that, for t and every higher threshold keeping at least ``min_count``
    poses, at least ``rate`` of the poses at or above it are within ``within_m`` metres; inf if none.

    Scanning down from the highest ratios and stopping at the first threshold that fails keeps the answer
    from resting on a lucky dip where the rate happens to recover.
    """
    ratio = np.asarray(inlier_ratio, dtype=np.float64)
    good = np.asarray(position_error_m, dtype=np.float64) <= within_m
    order = np.argsort(-ratio, kind="stable")
    ratio, good = ratio[order], good[order]
    rates = np.cumsum(good) / np.arange(1, len(ratio) + 1)  # rate among the k+1 highest ratios
    best = math.inf
    for k in range(len(ratio)):
        if k + 1 < len(ratio) and ratio[k + 1] == ratio[k]:
            continue  # a threshold keeps every pose with an equal ratio
        if k + 1 < min_count:
            continue
        if rates[k] < rate:
            break
        best = float(ratio[k])
    return best


def confidence_thresholds(
    inlier_ratio: np.ndarray, position_error_m: np.ndarray, min_count: int = MIN_COUNT
) -> tuple[float, float]:
    """(medium, high) lowest inlier ratios of those classes for held-out poses (metres of error); the high
    threshold is never below the medium one. Photos without a pose should be passed with an infinite error."""
    medium = lowest_reliable_ratio(inlier_ratio, position_error_m, MEDIUM_WITHIN_M, MEDIUM_RATE, min_count)
    high = lowest_reliable_ratio(inlier_ratio, position_error_m, HIGH_WITHIN_M, HIGH_RATE, min_count)
    return medium, max(high, medium)
