"""Geodetic frames: the local transverse Mercator frame around a point, grid convergence and scale, and
the aerial frame's relation to true north.

The local frame is a transverse Mercator projection with scale factor 1 and its origin at a point, on the
raster's own ellipsoid/datum: near its origin it is conformal with a scale of 1 (true ground metres on the
ellipsoid; heights are ignored) and its grid north is true north. CRS units (metres, US survey feet,
degrees), a projection's scale factor (0.9996 on a UTM central meridian, 1/cos φ for Web Mercator) and the
meridian convergence (grid north ≠ true north away from a central meridian) are all handled by PROJ.
"""

from __future__ import annotations

import math

import numpy as np
import pyproj
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import TransverseMercatorConversion

WGS84 = pyproj.CRS.from_epsg(4326)


def horizontal_crs(crs: pyproj.CRS) -> pyproj.CRS:
    """The horizontal part of ``crs`` (the first member of a compound CRS, else ``crs`` itself)."""
    if crs.is_compound:
        return crs.sub_crs_list[0]
    return crs


def local_frame_crs(crs: pyproj.CRS, lon_deg: float, lat_deg: float) -> ProjectedCRS:
    """A transverse Mercator CRS (metres, scale 1) centred at ``lon, lat`` on ``crs``'s own datum.

    ``lon, lat`` are degrees in ``crs``'s geodetic CRS. At its origin the frame's grid north is true north
    and one unit is one metre on the ellipsoid.
    """
    conversion = TransverseMercatorConversion(
        latitude_natural_origin=lat_deg,
        longitude_natural_origin=lon_deg,
        false_easting=0.0,
        false_northing=0.0,
        scale_factor_natural_origin=1.0,
    )
    return ProjectedCRS(
        conversion=conversion, geodetic_crs=horizontal_crs(crs).geodetic_crs, name="loc2 local"
    )


def grid_convergence_deg(crs: pyproj.CRS | str | int, lon_deg: float, lat_deg: float) -> float:
    """Meridian convergence γ of a projected CRS at ``lon, lat`` (degrees), as PROJ reports it.

    PROJ's sign convention: true north points to the grid bearing −γ, so a direction's grid bearing
    (clockwise from the CRS's grid north) is ``true_bearing − γ`` (see :func:`true_to_grid_bearing`).
    In the northern hemisphere γ > 0 east of a transverse Mercator's central meridian. Geographic CRSs
    have no grid: 0. ``lon, lat`` in degrees (WGS84 or the CRS's datum; the difference is immaterial).
    """
    crs = horizontal_crs(pyproj.CRS.from_user_input(crs))
    if not crs.is_projected:
        return 0.0
    factors = pyproj.Proj(crs).get_factors(lon_deg, lat_deg)
    return float(factors.meridian_convergence)


def true_to_grid_bearing(
    bearing_true_deg: float, crs: pyproj.CRS | str | int, lon_deg: float, lat_deg: float
) -> float:
    """Bearing clockwise from the CRS's grid north of a direction given clockwise from true north, [0, 360)."""
    return (bearing_true_deg - grid_convergence_deg(crs, lon_deg, lat_deg)) % 360.0


def grid_to_true_bearing(
    bearing_grid_deg: float, crs: pyproj.CRS | str | int, lon_deg: float, lat_deg: float
) -> float:
    """Inverse of :func:`true_to_grid_bearing`, [0, 360)."""
    return (bearing_grid_deg + grid_convergence_deg(crs, lon_deg, lat_deg)) % 360.0


def grid_scale_factors(crs: pyproj.CRS | str | int, lon_deg: float, lat_deg: float) -> tuple[float, float]:
    """(meridional, parallel) scale factors of a projected CRS at ``lon, lat`` (1 for geographic CRSs).

    Distances in the CRS's linear unit (converted to metres) are ground metres × these factors.
    """
    crs = horizontal_crs(pyproj.CRS.from_user_input(crs))
    if not crs.is_projected:
        return 1.0, 1.0
    factors = pyproj.Proj(crs).get_factors(lon_deg, lat_deg)
    return float(factors.meridional_scale), float(factors.parallel_scale)


def aerial_to_local_en(xy_aerial_m: np.ndarray, up_heading_deg: float) -> np.ndarray:
    """Aerial frame (x down, y right, metres) → local (east, north) metres, crop up = ``up_heading_deg``."""
    xy = np.asarray(xy_aerial_m, dtype=np.float64)
    h = math.radians(up_heading_deg)
    s, c = math.sin(h), math.cos(h)
    x, y = xy[..., 0], xy[..., 1]
    east = -x * s + y * c
    north = -x * c - y * s
    return np.stack([east, north], axis=-1)


def local_en_to_aerial(en_m: np.ndarray, up_heading_deg: float) -> np.ndarray:
    """Inverse of :func:`aerial_to_local_en`."""
    en = np.asarray(en_m, dtype=np.float64)
    h = math.radians(up_heading_deg)
    s, c = math.sin(h), math.cos(h)
    east, north = en[..., 0], en[..., 1]
    x = -(east * s + north * c)
    y = east * c - north * s
    return np.stack([x, y], axis=-1)


def transform_xy(transformer: pyproj.Transformer, xy: np.ndarray, inverse: bool = False) -> np.ndarray:
    """Apply ``transformer`` to (N, 2) points; returns (N, 2) float64 (non-finite where PROJ fails)."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    x = np.ascontiguousarray(xy[:, 0])
    y = np.ascontiguousarray(xy[:, 1])
    if len(xy) == 1:  # pyproj takes 1-element arrays down its scalar path (NumPy deprecation warning)
        x, y = float(x[0]), float(y[0])
    out_x, out_y = transformer.transform(x, y, direction="INVERSE" if inverse else "FORWARD")
    return np.stack([np.atleast_1d(out_x), np.atleast_1d(out_y)], axis=-1).astype(np.float64)


def angle_difference_deg(a_deg: float | np.ndarray, b_deg: float | np.ndarray) -> np.ndarray:
    """Absolute difference of two angles folded into [0°, 180°]."""
    d = np.abs((np.asarray(a_deg) - np.asarray(b_deg) + 180.0) % 360.0 - 180.0)
    return d
