"""An aerial crop cut from an orthophoto (``ortho.py``): a square, metric, north-referenced image and the exact
mapping between its aerial frame, the local frame around its centre, the orthophoto's CRS and WGS84."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyproj

from ..geometry.cameras import aerial_xy_to_pixel, pixel_to_aerial_xy
from ..geometry.frames import WGS84, aerial_to_local_en, local_en_to_aerial, transform_xy


@dataclass(eq=False)
class AerialCrop:
    """A square aerial image cut from an orthophoto, with the exact mapping back to the orthophoto's CRS.

    Attributes:
        image: (S, S, 3) uint8 RGB; black where ``valid`` is False.
        valid: (S, S) bool; False outside the raster or where it is nodata/masked.
        footprint_m: side of the square in true ground metres (on the ellipsoid).
        size_px: S.
        up_heading_deg: true-north heading (degrees clockwise) the crop's up direction points to (exact at
            the centre; meridians converge by ~0.001° across a 100 m crop).
        center_xy_crs: the crop centre (the prior) in the orthophoto's CRS.
        crs: the orthophoto's CRS (pyproj).
        center_lonlat: the crop centre in WGS84 degrees (lon, lat).
        read_info: how the raster was read (window, out_shape, decimation), for diagnostics.
    """

    image: np.ndarray
    valid: np.ndarray
    footprint_m: float
    size_px: int
    up_heading_deg: float
    center_xy_crs: tuple[float, float]
    crs: pyproj.CRS
    center_lonlat: tuple[float, float]
    local_crs: pyproj.CRS = field(repr=False)
    read_info: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._local_to_crs = pyproj.Transformer.from_crs(self.local_crs, self.crs, always_xy=True)
        self._local_to_wgs84 = pyproj.Transformer.from_crs(self.local_crs, WGS84, always_xy=True)

    @property
    def metres_per_pixel(self) -> float:
        """Ground sampling distance of the crop, metres per pixel."""
        return self.footprint_m / self.size_px

    def aerial_to_local(self, xy_aerial_m: np.ndarray) -> np.ndarray:
        """Aerial frame (N, 2) metres → local (east, north) metres around the centre."""
        return aerial_to_local_en(xy_aerial_m, self.up_heading_deg)

    def aerial_to_crs(self, xy_aerial_m: np.ndarray) -> np.ndarray:
        """Aerial frame (N, 2) metres (x down, y right) → (N, 2) orthophoto CRS coordinates (x, y)."""
        en = self.aerial_to_local(np.atleast_2d(xy_aerial_m))
        return transform_xy(self._local_to_crs, en)

    def crs_to_aerial(self, xy_crs: np.ndarray) -> np.ndarray:
        """(N, 2) orthophoto CRS coordinates → aerial frame (N, 2) metres (x down, y right)."""
        xy = np.atleast_2d(np.asarray(xy_crs, dtype=np.float64))
        return local_en_to_aerial(transform_xy(self._local_to_crs, xy, inverse=True), self.up_heading_deg)

    def aerial_to_lonlat(self, xy_aerial_m: np.ndarray) -> np.ndarray:
        """Aerial frame (N, 2) metres → (N, 2) WGS84 (lon, lat) degrees."""
        en = self.aerial_to_local(np.atleast_2d(xy_aerial_m))
        return transform_xy(self._local_to_wgs84, en)

    def lonlat_to_aerial(self, lonlat_deg: np.ndarray) -> np.ndarray:
        """(N, 2) WGS84 (lon, lat) degrees → aerial frame (N, 2) metres."""
        ll = np.atleast_2d(np.asarray(lonlat_deg, dtype=np.float64))
        return local_en_to_aerial(transform_xy(self._local_to_wgs84, ll, inverse=True), self.up_heading_deg)

    def pixel_to_crs(self, colrow_px: np.ndarray) -> np.ndarray:
        """(N, 2) continuous crop pixel coordinates (col, row; centres at +0.5) → (N, 2) CRS coordinates."""
        return self.aerial_to_crs(
            pixel_to_aerial_xy(np.atleast_2d(colrow_px), self.footprint_m, self.size_px)
        )

    def crs_to_pixel(self, xy_crs: np.ndarray) -> np.ndarray:
        """(N, 2) CRS coordinates → (N, 2) continuous crop pixel coordinates (col, row)."""
        return aerial_xy_to_pixel(self.crs_to_aerial(xy_crs), self.footprint_m, self.size_px)

    def heading_to_true_north(self, heading_aerial_deg: float) -> float:
        """Heading clockwise from the crop's up direction → degrees clockwise from true north, [0, 360)."""
        return float((self.up_heading_deg + heading_aerial_deg) % 360.0)

    def true_north_to_heading(self, heading_true_deg: float) -> float:
        """Degrees clockwise from true north → heading clockwise from the crop's up direction, [0, 360)."""
        return float((heading_true_deg - self.up_heading_deg) % 360.0)
