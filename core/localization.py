"""What the :class:`~loc2.core.localizer.Localizer` makes, in the order it makes it: a ground image ready for the
backbone (:class:`GroundInput`), a ground image ready for matching (:class:`GroundView`) and the pose with
everything that explains it (:class:`LocalizationResult`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .geometry.cameras import TOKEN_SHIFTS, Camera
from .geometry.pose import Similarity2D
from .inputs.depth import DepthMap
from .types import STATUS_OK


@dataclass
class GroundView:
    """A ground image made ready for matching: what :meth:`Localizer.prepare_ground` computes once.

    Attributes:
        desc_ground: (1, G, D) unit ground descriptors, or None when no token has valid depth.
        xy_ground_m: (G, 2) lifted BEV points (metres, camera at the origin, x back, y right), NaN invalid.
        valid: (G,) bool, tokens with valid depth.
        grid_rc: token grid (rows, cols).
        input_hw: backbone input size (H, W) px.
        image_hw: the ground image's own size (H, W) px.
        timings_s: seconds spent per stage.
        shifts: the token grids, (columns, rows) in tokens (``geometry.cameras.TOKEN_SHIFTS``); the G tokens are
            their rows·cols blocks one after the other, each matched on its own.
    """

    desc_ground: torch.Tensor | None
    xy_ground_m: np.ndarray
    valid: np.ndarray
    grid_rc: tuple[int, int]
    input_hw: tuple[int, int]
    image_hw: tuple[int, int]
    timings_s: dict = field(default_factory=dict)
    shifts: tuple[tuple[float, float], ...] = TOKEN_SHIFTS[:1]


@dataclass
class GroundInput:
    """A ground image made ready for the backbone (:meth:`Localizer.ground_input`).

    Attributes:
        image: (grids, 3, H, W) the resized image in [0, 1] on the model's device, once per token grid.
        depth_map: its depth at the image's own size.
        camera: its camera at the image's own size.
        image_hw: the image's own size (H, W) px.
        shifts: the token grids (``GroundView.shifts``).
        timings_s: seconds spent so far per stage.
    """

    image: torch.Tensor
    depth_map: DepthMap
    camera: Camera
    image_hw: tuple[int, int]
    shifts: tuple[tuple[float, float], ...]
    timings_s: dict


@dataclass
class LocalizationResult:
    """The pose of a ground image on an aerial image, with everything that explains it.

    Frames (:mod:`loc2.core.geometry`): aerial (metres, origin at the crop centre, x down, y right) and
    ground BEV (metres, camera at the origin, looking along −x, y to its right).

    Attributes:
        status: ``ok``, ``no_valid_depth`` or ``no_pose``.
        message: human-readable explanation when status is not ``ok``.
        pose: ``xy_aerial_m ≈ s·R·xy_ground_m + t`` (float64; NaN without a pose): ``pose.t`` is the camera
            position in the aerial frame, ``pose.heading_aerial_deg`` its heading clockwise from the aerial
            image's up direction, ``pose.s`` the scale (≈ 1 with metric depth).
        num_inliers: hard inliers (within the inlier threshold) among the sampled correspondences.
        inlier_ratio: num_inliers / number of sampled correspondences (with several search crops, of those on
            one aerial footprint around the pose: :meth:`PoseEstimate.inlier_ratio_on`).
        score: soft inlier score of the kept hypothesis.
        inliers_ground_px: (N, 2) ground-image pixel (u column, v row) of each inlier, in the input image.
        inliers_xy_ground_m: (N, 2) their ground BEV points.
        inliers_xy_aerial_m: (N, 2) their aerial points.
        inliers_aerial_index: (N,) their rows of P (aerial grid points, row-major; with several search crops
            stacked, crop k's rows are k·grid² … (k+1)·grid² − 1).
        inliers_prob: (N,) matching probability P.
        inliers_residual_m: (N,) distance between the moved ground point and its aerial point.
        layout_xy_aerial_m: (M, 2) every valid lifted ground point moved by the pose (the re-scaled
            ground layout).
        num_valid_tokens: ground tokens with valid depth.
        timings_s: seconds spent per stage.
    """

    status: str
    message: str = ""
    pose: Similarity2D = field(default_factory=Similarity2D.undefined)
    num_inliers: int = 0
    inlier_ratio: float = 0.0
    score: float = 0.0
    inliers_ground_px: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    inliers_xy_ground_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    inliers_xy_aerial_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    inliers_aerial_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    inliers_prob: np.ndarray = field(default_factory=lambda: np.zeros(0))
    inliers_residual_m: np.ndarray = field(default_factory=lambda: np.zeros(0))
    layout_xy_aerial_m: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    num_valid_tokens: int = 0
    timings_s: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK
