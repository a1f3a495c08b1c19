"""Camera models, the backbone's token grids on them, and the aerial image's metric point grid.

Frames: see :mod:`loc2.core.geometry`.
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


def aerial_grid_valid(aerial_valid: np.ndarray, footprint_m: float, grid: int) -> np.ndarray:
    """Validity of each aerial grid point (grid²,) from a crop's pixel validity mask (nearest pixel)."""
    size = aerial_valid.shape[0]
    xy = aerial_grid_xy(footprint_m, grid)
    colrow = aerial_xy_to_pixel(xy, footprint_m, size)
    c = np.clip(np.floor(colrow[:, 0]).astype(int), 0, size - 1)
    r = np.clip(np.floor(colrow[:, 1]).astype(int), 0, size - 1)
    return aerial_valid[r, c].astype(bool)
