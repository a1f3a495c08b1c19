"""The match–lift–align pipeline on one ground image and one aerial image (no geography here)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

STATUS_OK = "ok"
STATUS_NO_VALID_DEPTH = "no_valid_depth"
STATUS_NO_POSE = "no_pose"


@dataclass
class LocalizationResult:
    """The pose of a ground image on an aerial image, with everything that explains it.

    Frames: aerial frame (metres, origin at the crop centre, x down, y right); ground BEV frame
    (metres, camera at the origin, looking along −x, y to its right). ``xy_aerial_m ≈ s·R·xy_ground + t``.

    Attributes:
        status: ``ok``, ``no_valid_depth`` or ``no_pose``.
        message: human-readable explanation when status is not ``ok``.
        position_xy_m: camera position t in the aerial frame, (2,) metres.
        rotation: R (2, 2).
        yaw_deg: atan2(R10, R00) in degrees (the paper's rotation angle).
        heading_deg: camera heading, degrees clockwise from the aerial image's up direction.
        scale: s (≈ 1 with metric depth; the metric scale with relative depth).
        num_inliers: hard inliers (within the inlier threshold) among the sampled correspondences.
        inlier_ratio: num_inliers / number of sampled correspondences.
        score: soft inlier score of the kept hypothesis.
        inliers_ground_px: (N, 2) ground-image pixel (u column, v row) of each inlier, in the input image.
        inliers_ground_xy_m: (N, 2) their ground BEV points.
        inliers_aerial_xy_m: (N, 2) their aerial points.
        inliers_prob: (N,) matching probability P.
        inliers_residual_m: (N,) distance between the moved ground point and its aerial point.
        layout_aerial_xy_m: (M, 2) every valid lifted ground point moved by the pose (the re-scaled
            ground layout).
        num_valid_tokens: ground tokens with valid depth.
        timings_s: seconds spent per stage.
    """

    status: str
    message: str = ""
    position_xy_m: np.ndarray = field(default_factory=lambda: np.full(2, np.nan))
    rotation: np.ndarray = field(default_factory=lambda: np.full((2, 2), np.nan))
    scale: float = math.nan
    num_inliers: int = 0
    inlier_ratio: float = 0.0
    score: float = 0.0
    inliers_ground_px: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    inliers_ground_xy_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    inliers_aerial_xy_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    inliers_prob: np.ndarray = field(default_factory=lambda: np.zeros(0))
    inliers_residual_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    layout_aerial_xy_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    num_valid_tokens: int = 0
    timings_s: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def yaw_deg(self) -> float:
        return float(math.degrees(math.atan2(self.rotation[1, 0], self.rotation[0, 0])))

    @property
    def heading_deg(self) -> float:
        return float((-self.yaw_deg) % 360.0)
