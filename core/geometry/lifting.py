"""Lifting ground tokens to the ground (BEV) frame from their depth, and the ground a token covers (method §5)."""

from __future__ import annotations

import math

import numpy as np

from .cameras import Camera, Equirectangular, Pinhole


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
# validation cities (docs/experiments.md).
SPREAD_FRACTION = 0.5
SPREAD_RADIAL_CAP_M = 4.0


def flat_ground_spread_m(
    xy_ground_m: np.ndarray, camera_height_m: float, token_step_rad: tuple[float, float]
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
    r = np.hypot(xy_ground_m[:, 0], xy_ground_m[:, 1])
    below = np.arctan2(h, r)  # elevation below the horizon of the token's centre ray
    near = h / np.tan(np.minimum(below + step_e / 2, math.pi / 2))
    upper = below - step_e / 2
    far = np.where(upper > 1e-3, h / np.tan(np.maximum(upper, 1e-3)), np.inf)
    radial = np.minimum(SPREAD_FRACTION * (far - near) / math.sqrt(12), SPREAD_RADIAL_CAP_M)
    tangential = SPREAD_FRACTION * r * step_a / math.sqrt(12)
    return np.nan_to_num(np.stack([radial, tangential], axis=1))
