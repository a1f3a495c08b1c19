"""The pose type: a 2-D similarity from the ground frame onto the aerial frame (method §6).

``xy_aerial_m ≈ s·R·xy_ground_m + t``. The camera looks along −x of its ground frame, which R turns into
R·(−1, 0) in the aerial frame (x down, y right): the camera's heading, clockwise from the aerial image's
up direction, is −atan2(R10, R00). This module is the one place a rotation becomes an angle or back.

R, t and s may be numpy arrays or torch tensors (the solver's poses are tensors; results hold float64
numpy); the arithmetic is the same for both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def rotation_matrix(angle_rad: float) -> np.ndarray:
    """2-D rotation [[cos, −sin], [sin, cos]] (counter-clockwise by ``angle_rad`` in x-y)."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s], [s, c]])


@dataclass(frozen=True)
class Similarity2D:
    """A similarity ``xy ↦ s·R·xy + t`` of the plane.

    Attributes:
        R: (2, 2) proper rotation.
        t: (2,) translation: where the ground frame's origin (the camera) lands in the aerial frame, metres.
        s: scale (≈ 1 with metric depth; the metric scale with relative depth).
    """

    R: Any
    t: Any
    s: Any = 1.0

    @classmethod
    def from_heading(cls, heading_aerial_deg: float, t: Any = (0.0, 0.0), s: float = 1.0) -> Similarity2D:
        """The pose of a camera at ``t`` looking along ``heading_aerial_deg`` (clockwise from the aerial up)."""
        return cls(rotation_matrix(-math.radians(heading_aerial_deg)), np.asarray(t, dtype=np.float64), s)

    @classmethod
    def undefined(cls) -> Similarity2D:
        """A pose with every number NaN (what a failed localization carries)."""
        return cls(np.full((2, 2), np.nan), np.full(2, np.nan), math.nan)

    def apply(self, xy: Any) -> Any:
        """``s·R·xy + t`` of points (N, 2) (or one point (2,))."""
        return self.s * xy @ self.R.T + self.t

    def inverse(self) -> Similarity2D:
        """The pose mapping aerial onto ground points: ``xy ↦ (1/s)·Rᵀ·(xy − t)``."""
        inv_s = 1.0 / self.s
        return Similarity2D(self.R.T, -inv_s * (self.t @ self.R), inv_s)

    def compose(self, first: Similarity2D) -> Similarity2D:
        """``self ∘ first``: apply ``first``, then ``self``."""
        return Similarity2D(self.R @ first.R, self.s * first.t @ self.R.T + self.t, self.s * first.s)

    @property
    def yaw_deg(self) -> float:
        """atan2(R10, R00) in degrees, counter-clockwise in the x-y plane (the paper's rotation angle)."""
        return float(math.degrees(math.atan2(float(self.R[1, 0]), float(self.R[0, 0]))))

    @property
    def heading_aerial_deg(self) -> float:
        """The camera's heading, degrees clockwise from the aerial image's up direction, in [0, 360)."""
        return float((-self.yaw_deg) % 360.0)

    def numpy(self) -> Similarity2D:
        """The same pose as float64 numpy arrays and a float scale (from tensors, on any device)."""
        to = _to_numpy
        return Similarity2D(to(self.R), to(self.t), float(self.s))


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        return value.detach().double().cpu().numpy()
    return np.asarray(value, dtype=np.float64)
