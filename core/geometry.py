"""Camera models, lifting of ground tokens to bird's-eye view, and the aerial metric grid.

Frames (method §5), all in metres:

* Ground BEV frame: origin at the camera, ``x`` points backwards (the camera looks along −x),
  ``y`` points to the camera's right. Panorama columns therefore run clockwise seen from above.
* Aerial frame: origin at the centre of the aerial crop, ``x`` points down the image (south for a
  north-up crop), ``y`` points to the right (east).

The pose maps ground onto aerial points, ``xy_aerial ≈ s·R·xy_ground + t``; ``t`` is the camera position
in the aerial frame and the camera's heading, clockwise from the aerial image's up direction, is
``-atan2(R[1,0], R[0,0])`` (see :func:`heading_from_rotation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Equirectangular:
    """A 360° panorama, ``width`` = 2 × ``height`` usually; the centre column looks forward.

    Row 0 is the zenith (θ = 0), the last row the nadir (θ = π); column angle φ grows clockwise
    seen from above, with φ = π at the centre column.
    """

    width: int
    height: int

    kind = "panorama"

    def scaled(self, width: int, height: int) -> Equirectangular:
        """The same camera for an image resized to ``width`` × ``height`` pixels."""
        return Equirectangular(width=width, height=height)

    def token_angles(
        self, rows: int, cols: int, published_grid: bool = True, shift: tuple[float, float] = (0.0, 0.0)
    ) -> tuple[np.ndarray, np.ndarray]:
        """Polar angle θ (rows,) and azimuth φ (cols,) in radians of a ``rows`` × ``cols`` token grid.

        ``published_grid`` uses the grid the published weights were trained with (endpoints included:
        θ_i = π·i/(rows−1), φ_j = 2π·j/(cols−1)); otherwise token centres are pixel-centred, and ``shift``
        (columns, rows), in tokens, gives the grid of the image rolled right and down by that much (its
        token centres lie that much up and to the left in the image: :data:`TOKEN_SHIFTS`).
        """
        if published_grid:
            theta = math.pi * np.arange(rows) / max(rows - 1, 1)
            phi = 2 * math.pi * np.arange(cols) / max(cols - 1, 1)
        else:
            theta = math.pi * (np.arange(rows) + 0.5 - shift[1]) / rows
            phi = 2 * math.pi * (np.arange(cols) + 0.5 - shift[0]) / cols
        return theta, phi

    def pixel_angles(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """θ, φ (radians) of continuous pixel coordinates (u column, v row; pixel centres at +0.5)."""
        theta = math.pi * np.asarray(v, dtype=np.float64) / self.height
        phi = 2 * math.pi * np.asarray(u, dtype=np.float64) / self.width
        return theta, phi


@dataclass(frozen=True)
class Pinhole:
    """A pinhole camera looking horizontally; intrinsics in pixels of a ``width`` × ``height`` image."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    kind = "pinhole"

    @classmethod
    def from_fov(cls, width: int, height: int, hfov_deg: float) -> Pinhole:
        """A centred camera with square pixels and the given horizontal field of view (degrees)."""
        f = (width / 2) / math.tan(math.radians(hfov_deg) / 2)
        return cls(fx=f, fy=f, cx=width / 2, cy=height / 2, width=width, height=height)

    @property
    def hfov_deg(self) -> float:
        """Horizontal field of view in degrees."""
        return math.degrees(2 * math.atan2(self.width / 2, self.fx))

    def scaled(self, width: int, height: int) -> Pinhole:
        """The same camera for an image resized to ``width`` × ``height`` pixels (intrinsics scaled)."""
        sx, sy = width / self.width, height / self.height
        return Pinhole(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)

    def token_columns(self, rows: int, cols: int, stride: float, published_grid: bool = True):
        """Token centre coordinates (u (cols,), v (rows,)) in pixels of the token grid's own scale.

        With ``published_grid`` the grid spans 0 … W/stride and 0 … H/stride with int(W/stride) and
        int(H/stride) samples, endpoints included, and the intrinsics are divided by ``stride``
        (method §5); the returned coordinates are then in units of tokens. Otherwise token centres are
        pixel-centred and returned in image pixels.
        """
        if published_grid:
            u = np.linspace(0, self.width / stride, cols)
            v = np.linspace(0, self.height / stride, rows)
        else:
            u = (np.arange(cols) + 0.5) * self.width / cols
            v = (np.arange(rows) + 0.5) * self.height / rows
        return u, v


Camera = Equirectangular | Pinhole

# Test-time token grids of a panorama, (columns, rows) in tokens (the first is the grid itself): the image
# rolled right, down, and both by half a token. The backbone runs on each, so the tokens sample the sphere
# twice as densely in azimuth and elevation (a ring of ground points between each two of the grid's);
# each grid is matched on its own (the dual softmax as trained) and the pose is solved on all of them.
# Rolling an equirectangular image sideways turns the camera exactly; downwards it moves the polar angle
# of every row alike (the top row then holds the wrapped nadir and is dropped).
TOKEN_SHIFTS = ((0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5))


def lift_tokens(
    camera: Camera,
    depth_tokens_m: np.ndarray,
    stride: float = 14.0,
    published_grid: bool = True,
    shift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Lift a (rows, cols) grid of token depths to ground BEV points, shape (rows·cols, 2), metres.

    Panorama depth is radial distance; pinhole depth is z-depth. Invalid depths (NaN) give NaN points.
    Token order is row-major, as the backbone flattens its grid. ``shift``: a panorama's rolled token grid
    (see :meth:`Equirectangular.token_angles`).
    """
    rows, cols = depth_tokens_m.shape
    d = depth_tokens_m.astype(np.float64)
    if isinstance(camera, Equirectangular):
        theta, phi = camera.token_angles(rows, cols, published_grid, shift)
        sin_t = np.sin(theta)[:, None]
        x = d * sin_t * np.cos(phi)[None, :]
        y = -d * sin_t * np.sin(phi)[None, :]
    elif isinstance(camera, Pinhole):
        u, _ = camera.token_columns(rows, cols, stride, published_grid)
        if published_grid:
            fx, cx = camera.fx / stride, camera.cx / stride
        else:
            fx, cx = camera.fx, camera.cx
        x = -d
        y = (u[None, :] - cx) * d / fx
    else:
        raise TypeError(f"unknown camera model {type(camera).__name__}")
    return np.stack([x, y], axis=-1).reshape(-1, 2)


# How far a flat-ground match may lie from its token's lifted point (``flat_ground_spread_m``): the
# footprint's standard deviation times this fraction, the radial part at most this many metres. Chosen on the
# validation cities (README, "Measured figures").
SPREAD_FRACTION = 0.5
SPREAD_RADIAL_CAP_M = 4.0


def flat_ground_spread_m(
    ground_xy_m: np.ndarray, camera_height_m: float, token_step_rad: tuple[float, float]
) -> np.ndarray:
    """Spread (G, 2) metres of each panorama token's ground footprint around its lifted point on flat ground:
    standard deviations along the token's bearing from the camera (radial) and across it (tangential).

    A token spans ``token_step_rad`` = (elevation, azimuth) radians. Seen from ``camera_height_m`` above flat
    ground, a token whose centre ray meets the ground at distance r (elevation e below the horizon) covers the
    ground from h/tan(e + Δe/2) to h/tan(e − Δe/2) (to the horizon for the row that reaches it), r·Δφ wide:
    far tokens cover long, narrow strips, so their matches pin the bearing much better than the range. The
    standard deviation of a uniform span (span/√12) is scaled by ``SPREAD_FRACTION`` and the radial part
    capped at ``SPREAD_RADIAL_CAP_M``. Invalid (NaN) points get 0.
    """
    step_e, step_a = token_step_rad
    h = float(camera_height_m)
    r = np.hypot(ground_xy_m[:, 0], ground_xy_m[:, 1])
    below = np.arctan2(h, r)  # elevation below the horizon of the token's centre ray
    near = h / np.tan(np.minimum(below + step_e / 2, math.pi / 2))
    upper = below - step_e / 2
    far = np.where(upper > 1e-3, h / np.tan(np.maximum(upper, 1e-3)), np.inf)
    radial = np.minimum(SPREAD_FRACTION * (far - near) / math.sqrt(12), SPREAD_RADIAL_CAP_M)
    tangential = SPREAD_FRACTION * r * step_a / math.sqrt(12)
    return np.nan_to_num(np.stack([radial, tangential], axis=1))


def aerial_grid_xy(footprint_m: float, grid: int = 41) -> np.ndarray:
    """Metric positions of the aerial point grid, shape (grid², 2), row-major, aerial frame (metres).

    Point (r, c): x = linspace(−g/2, g/2, grid)[r] (down), y = linspace(−g/2, g/2, grid)[c] (right).
    """
    lin = np.linspace(-footprint_m / 2, footprint_m / 2, grid)
    xx, yy = np.meshgrid(lin, lin, indexing="ij")
    return np.stack([xx.ravel(), yy.ravel()], axis=-1)


def aerial_xy_to_pixel(xy_aerial_m: np.ndarray, footprint_m: float, size_px: int) -> np.ndarray:
    """Aerial-frame metres → continuous (col, row) pixel coordinates of a ``size_px`` crop.

    The crop's edges lie at ±footprint/2; pixel centres are at integer + 0.5.
    """
    xy = np.asarray(xy_aerial_m, dtype=np.float64)
    scale = size_px / footprint_m
    col = (xy[..., 1] + footprint_m / 2) * scale
    row = (xy[..., 0] + footprint_m / 2) * scale
    return np.stack([col, row], axis=-1)


def pixel_to_aerial_xy(colrow_px: np.ndarray, footprint_m: float, size_px: int) -> np.ndarray:
    """Inverse of :func:`aerial_xy_to_pixel`."""
    cr = np.asarray(colrow_px, dtype=np.float64)
    scale = footprint_m / size_px
    x = cr[..., 1] * scale - footprint_m / 2
    y = cr[..., 0] * scale - footprint_m / 2
    return np.stack([x, y], axis=-1)


def rotation_matrix(angle_rad: float) -> np.ndarray:
    """2-D rotation [[cos, −sin], [sin, cos]]."""
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.array([[c, -s], [s, c]])


def heading_from_rotation(R: np.ndarray) -> float:
    """Camera heading in degrees clockwise from the aerial image's up direction, in [0, 360).

    The camera looks along −x of its BEV frame; R maps that to R·(−1, 0) in the aerial frame
    (x down, y right), whose bearing from 'up' is −atan2(R10, R00).
    """
    return float((-math.degrees(math.atan2(R[1, 0], R[0, 0]))) % 360.0)


def rotation_from_heading(heading_deg: float) -> np.ndarray:
    """Inverse of :func:`heading_from_rotation`: the 2-D rotation for a heading (degrees from up, cw)."""
    return rotation_matrix(-math.radians(heading_deg))


def angle_difference_deg(a_deg: float | np.ndarray, b_deg: float | np.ndarray) -> np.ndarray:
    """Absolute difference of two angles folded into [0°, 180°]."""
    d = np.abs((np.asarray(a_deg) - np.asarray(b_deg) + 180.0) % 360.0 - 180.0)
    return d
