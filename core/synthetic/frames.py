"""The frames of a synthetic city and its CRS: local metres (east, north of the south-west corner along the
projected CRS's axes), CRS coordinates, WGS84, the street frame, cells, and aerial crops (see the package
docstring). A mixin of :class:`~.city.SyntheticCity`."""

from __future__ import annotations

import math

import numpy as np

from ..geometry.frames import aerial_to_local_en, local_en_to_aerial


class CityFrames:
    """Coordinate conversions of a :class:`~.city.SyntheticCity` (which sets ``crs``, ``origin_xy``, ``n``,
    ``cell_m``, ``size_m`` and the transformers these use)."""

    @property
    def crs_string(self) -> str:
        """The CRS as 'AUTHORITY:CODE' when it has one (e.g. 'EPSG:32632'), else WKT."""
        auth = self.crs.to_authority()
        return f"{auth[0]}:{auth[1]}" if auth else self.crs.to_wkt()

    @property
    def center_xy_m(self) -> tuple[float, float]:
        """The city centre in the local frame (metres)."""
        return self.size_m / 2, self.size_m / 2

    def local_to_crs(self, xy_local_m) -> np.ndarray:
        """Local (east, north) metres → CRS (x, y); exact (a translation). Shape (..., 2)."""
        return np.asarray(xy_local_m, np.float64) + np.asarray(self.origin_xy)

    def crs_to_local(self, xy_crs) -> np.ndarray:
        """CRS (x, y) → local (east, north) metres. Shape (..., 2)."""
        return np.asarray(xy_crs, np.float64) - np.asarray(self.origin_xy)

    def local_to_lonlat(self, xy_local_m) -> np.ndarray:
        """Local metres → WGS84 (lon, lat) degrees. Shape (..., 2)."""
        xy = self.local_to_crs(xy_local_m)
        lon, lat = self._to_wgs84.transform(xy[..., 0], xy[..., 1])
        return np.stack([np.asarray(lon, np.float64), np.asarray(lat, np.float64)], axis=-1)

    def lonlat_to_local(self, lonlat_deg) -> np.ndarray:
        """WGS84 (lon, lat) degrees → local metres. Shape (..., 2)."""
        ll = np.asarray(lonlat_deg, np.float64)
        x, y = self._to_wgs84.transform(ll[..., 0], ll[..., 1], direction="INVERSE")
        return self.crs_to_local(np.stack([np.asarray(x, np.float64), np.asarray(y, np.float64)], axis=-1))

    def grid_factors(self, xy_local_m=None) -> tuple[float, float]:
        """(meridian convergence γ in degrees, scale factor k) of the CRS at a local point (default: centre).

        Grid bearing = true bearing − γ; grid metres = k × ground metres.
        """
        xy = self.center_xy_m if xy_local_m is None else xy_local_m
        lon, lat = self.local_to_lonlat(np.asarray(xy, np.float64))
        f = self._proj.get_factors(float(lon), float(lat))
        return float(f.meridian_convergence), float(math.sqrt(f.meridional_scale * f.parallel_scale))

    def true_to_grid_heading(self, heading_true_deg: float, xy_local_m=None) -> float:
        """Degrees clockwise from true north → from grid north, [0, 360)."""
        return (heading_true_deg - self.grid_factors(xy_local_m)[0]) % 360.0

    def grid_to_true_heading(self, heading_grid_deg: float, xy_local_m=None) -> float:
        """Degrees clockwise from grid north → from true north, [0, 360)."""
        return (heading_grid_deg + self.grid_factors(xy_local_m)[0]) % 360.0

    def ground_en_to_local(self, en_ground_m, xy_local_m=None) -> np.ndarray:
        """True-north (east, north) ground-metre offsets → local (grid) metre offsets at a point. (..., 2)."""
        gamma, k = self.grid_factors(xy_local_m)
        g = math.radians(gamma)
        c, s = math.cos(g), math.sin(g)  # grid bearing = true bearing − γ: rotate counter-clockwise by γ
        en = np.asarray(en_ground_m, np.float64)
        return k * np.stack([c * en[..., 0] - s * en[..., 1], s * en[..., 0] + c * en[..., 1]], axis=-1)

    def local_to_ground_en(self, d_local_m, xy_local_m=None) -> np.ndarray:
        """Inverse of :meth:`ground_en_to_local`."""
        gamma, k = self.grid_factors(xy_local_m)
        g = math.radians(gamma)
        c, s = math.cos(g), math.sin(g)
        d = np.asarray(d_local_m, np.float64) / k
        return np.stack([c * d[..., 0] + s * d[..., 1], -s * d[..., 0] + c * d[..., 1]], axis=-1)

    def local_to_cell(self, xy_local_m) -> tuple[np.ndarray, np.ndarray]:
        """Local metres → (row, col) integer cell indices (may lie outside 0 … n−1)."""
        xy = np.asarray(xy_local_m, np.float64)
        col = np.floor(xy[..., 0] / self.cell_m).astype(np.int64)
        row = np.floor((self.size_m - xy[..., 1]) / self.cell_m).astype(np.int64)
        return row, col

    def street_to_local(self, uv_m) -> np.ndarray:
        """Street frame (u, v) metres → local (east, north) metres. (..., 2)."""
        px = self._raster.uv_to_px(uv_m)
        return np.stack(
            [(px[..., 0] + 0.5) * self.cell_m, self.size_m - (px[..., 1] + 0.5) * self.cell_m], -1
        )

    def local_to_street(self, xy_local_m) -> np.ndarray:
        """Local (east, north) metres → street frame (u, v) metres. (..., 2)."""
        xy = np.asarray(xy_local_m, np.float64) - self.size_m / 2
        r = self._raster
        return np.stack(
            [r.cos * xy[..., 0] + r.sin * xy[..., 1], -r.sin * xy[..., 0] + r.cos * xy[..., 1]], -1
        )

    def ground_height(self, xy_local_m) -> np.ndarray:
        """Height (metres) of the surface a camera stands on at local points (under tree canopies: the ground
        below them); 0 outside the city."""
        row, col = self.local_to_cell(xy_local_m)
        return self._height_pad[np.clip(row, -1, self.n) + 1, np.clip(col, -1, self.n) + 1]

    def aerial_to_local(self, xy_aerial_m, center_xy_m, up_heading_deg: float = 0.0) -> np.ndarray:
        """Aerial-frame metres (x down, y right; true ground metres) → local metres. (..., 2)."""
        en = aerial_to_local_en(np.asarray(xy_aerial_m, np.float64), up_heading_deg)
        return np.asarray(center_xy_m, np.float64) + self.ground_en_to_local(en, center_xy_m)

    def local_to_aerial(self, xy_local_m, center_xy_m, up_heading_deg: float = 0.0) -> np.ndarray:
        """Inverse of :meth:`aerial_to_local`. (..., 2)."""
        d = np.asarray(xy_local_m, np.float64) - np.asarray(center_xy_m, np.float64)
        return local_en_to_aerial(self.local_to_ground_en(d, center_xy_m), up_heading_deg)
