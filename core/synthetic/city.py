"""The synthetic city: a deterministic, georeferenced 2.5-D world built from one seed (see the package
docstring for its frames), its top-down images and orthophoto, and free street positions for cameras."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pyproj

from ..errors import DatasetError
from ..geometry.cameras import pixel_to_aerial_xy
from .frames import CityFrames
from .layout import (
    _ASPHALT,
    _OUTSIDE,
    KIND_BUILDING,
    KIND_CAR,
    KIND_ROAD,
    KIND_ROOF_BOX,
    KIND_SIDEWALK,
    KIND_TREE,
    KIND_TRUNK,
    Building,
    _rect,
)
from .raster import _apply_texture_noise, _generate, _Raster, _shade_top_down
from .tracer import RayTracer

DEFAULT_CRS = "EPSG:32632"  # WGS 84 / UTM zone 32N
DEFAULT_ORIGIN_XY = (465_000.0, 5_246_000.0)  # south-west corner, Zurich (≈ 8.54° E, 47.37° N)
GROUND_ALTITUDE_M = 408.0  # altitude of the street level above sea level (EXIF GPSAltitude)


class SyntheticCity(CityFrames, RayTracer):
    """A deterministic synthetic city, georeferenced in a projected CRS (see the module docstring for frames).

    Args:
        seed: integer seed; the same seed always gives the same city.
        size_m: side of the square city, metres (rounded to whole cells).
        cell_m: side of a height-field cell, metres (0.05 … 0.5; 0.1–0.2 recommended).
        origin_xy: CRS coordinates of the city's south-west corner (the local frame's origin).
        crs: a projected CRS in metres (default UTM 32N).
        empty: a flat asphalt square with no objects (for tests; add objects with :meth:`add_box`).

    Attributes:
        height_m: (n, n) float32 heights in metres, row 0 north.
        albedo: (n, n, 3) uint8 RGB material colours seen from above.
        kind: (n, n) uint8 material kinds (``KIND_*``).
        building_id: (n, n) int16 index into ``buildings`` (−1 elsewhere).
        ortho: (n, n, 3) uint8 shaded top-down image (what the orthophoto shows).
        buildings, trees, cars, streets: the objects, in the street frame.
        rotation_deg: counter-clockwise rotation of the street grid from grid east.
    """

    def __init__(
        self,
        seed: int,
        size_m: float = 300.0,
        cell_m: float = 0.1,
        origin_xy: tuple[float, float] = DEFAULT_ORIGIN_XY,
        crs: str | int | pyproj.CRS = DEFAULT_CRS,
        empty: bool = False,
    ) -> None:
        if not 0.05 <= cell_m <= 0.5:
            raise ValueError(f"cell_m must be between 0.05 and 0.5 m, got {cell_m}")
        n = int(round(size_m / cell_m))
        if n < 32:
            raise ValueError(f"size_m={size_m} is too small for cell_m={cell_m}")
        self.crs = pyproj.CRS.from_user_input(crs)
        if not self.crs.is_projected or self.crs.axis_info[0].unit_name not in ("metre", "meter"):
            raise ValueError(f"the CRS must be projected in metres, got {self.crs.name}")
        self.seed = int(seed)
        self.n = n
        self.cell_m = float(cell_m)
        self.size_m = n * self.cell_m
        self.origin_xy = (float(origin_xy[0]), float(origin_xy[1]))
        rng = np.random.default_rng([self.seed, 0x10C2])
        self.rotation_deg = 0.0 if empty else float(rng.uniform(0.0, 90.0))
        raster = _Raster(n, self.cell_m, math.radians(self.rotation_deg))
        if empty:
            raster.height[:] = 0.0
            raster.kind[:] = KIND_ROAD
            raster.albedo[:] = _ASPHALT
            raster.amp[:] = 8
            _apply_texture_noise(rng, raster)
            self.streets, self.buildings, self.trees, self.cars = [], [], [], []
            self._under = (
                np.zeros(0, np.int64),
                np.zeros(0, np.float32),
                np.zeros(0, np.uint8),
                np.zeros((0, 3)),
            )
        else:
            self.streets, self.buildings, trees, self.cars, self._under = _generate(rng, raster)
            uv = np.array([[t.u, t.v] for t in trees]).reshape(-1, 2)
            xy = raster.uv_to_px(uv) * self.cell_m
            radius = np.array([t.radius_m for t in trees])
            keep = np.all((xy > -radius[:, None]) & (xy < self.size_m + radius[:, None]), axis=1)
            self.trees = [t for t, k in zip(trees, keep, strict=True) if k]
        self._raster = raster
        self.height_m = raster.height
        self.albedo = raster.albedo
        self.kind = raster.kind
        self.building_id = raster.bid
        self._to_wgs84 = pyproj.Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        self._proj = pyproj.Proj(self.crs)
        self.refresh()

    # ----------------------------------------------------------------------------------- editing
    def add_box(
        self,
        center_xy_m: tuple[float, float],
        size_m: tuple[float, float],
        height_m: float,
        facade_rgb: tuple[int, int, int] = (200, 60, 50),
        roof_rgb: tuple[int, int, int] = (230, 200, 40),
    ) -> Building:
        """Add a flat-roofed building box centred at a local point, sides along the street axes.

        ``size_m`` = (extent along the street frame's u, along v); for ``empty`` cities (rotation 0) these are
        grid east and grid north. Returns the :class:`Building`; the top-down image is recomputed.
        """
        u, v = self.local_to_street(np.asarray(center_xy_m, np.float64))
        b = Building(
            id=len(self.buildings),
            u0=float(u - size_m[0] / 2),
            u1=float(u + size_m[0] / 2),
            v0=float(v - size_m[1] / 2),
            v1=float(v + size_m[1] / 2),
            height_m=float(height_m),
            eave_m=float(height_m),
            roof="flat",
            roof_rgb=tuple(int(c) for c in roof_rgb),
            facade_rgb=tuple(int(c) for c in facade_rgb),
            window_rgb=(40, 50, 64),
            floor_m=3.0,
            window_spacing_m=3.0,
            window_w=0.5,
            window_h=0.5,
            shopfront=False,
        )
        self._raster.fill(
            [_rect(b.u0, b.u1, b.v0, b.v1)], height=height_m, kind=KIND_BUILDING, rgb=roof_rgb, bid=b.id
        )
        self.buildings.append(b)
        self.refresh()
        return b

    def refresh(self) -> None:
        """Recompute what derives from the cell arrays: top-down image, ray-casting look-ups, façade table.

        Ray casting sees the ground under tree canopies (canopies are ellipsoids cast separately) and trunks.
        """
        self.ortho = _shade_top_down(self.height_m, self.albedo, self.cell_m)
        # Padded copies (one border cell) seen by the rays; their interiors are edited in place below.
        self._height_pad = np.pad(self.height_m, 1, constant_values=0.0)
        self._kind_pad = np.pad(self.kind, 1, constant_values=KIND_ROAD)
        self._bid_pad = np.pad(self.building_id, 1, constant_values=-1)
        self._albedo_pad = np.pad(self.albedo, ((1, 1), (1, 1), (0, 0)))
        self._top_pad = np.pad(self.ortho, ((1, 1), (1, 1), (0, 0)))
        outside = np.array(_OUTSIDE, np.uint8)
        self._top_pad[0, :] = self._top_pad[-1, :] = self._top_pad[:, 0] = self._top_pad[:, -1] = outside
        height, kind = self._height_pad[1:-1, 1:-1], self._kind_pad[1:-1, 1:-1]
        albedo, top = self._albedo_pad[1:-1, 1:-1], self._top_pad[1:-1, 1:-1]
        idx, under_h, under_kind, under_albedo = self._under
        still = self.kind.ravel()[idx] == KIND_TREE  # (add_box may have built over a canopy)
        idx, under_h, under_kind, under_albedo = (
            idx[still],
            under_h[still],
            under_kind[still],
            under_albedo[still],
        )
        rows, cols = np.divmod(idx, self.n)
        height[rows, cols], kind[rows, cols] = under_h, under_kind
        albedo[rows, cols] = under_albedo
        top[rows, cols] = (under_albedo * 0.62).astype(np.uint8)  # in the canopy's shade
        self._trees = self._tree_table()
        if self._trees is not None:
            for (east, north), z in zip(self._trees["xy"], self._trees["centre_z"], strict=True):
                row, col = self.local_to_cell(np.array([east, north]))
                r0, c0, r1, c1 = max(row - 2, 0), max(col - 2, 0), min(row + 3, self.n), min(col + 3, self.n)
                if r1 <= r0 or c1 <= c0:
                    continue
                win = (slice(r0, r1), slice(c0, c1))
                rr, cc = np.mgrid[win]
                trunk = (
                    np.hypot((cc + 0.5) * self.cell_m - east, self.size_m - (rr + 0.5) * self.cell_m - north)
                    < 0.2
                )
                trunk &= kind[win] != KIND_BUILDING
                height[win][trunk] = z
                kind[win][trunk] = KIND_TRUNK
                albedo[win][trunk] = (88, 68, 50)
        self._pyramid = [self.ortho]
        self._free_cache: dict = {}
        bs = self.buildings or [None]
        self._facades = {
            "rect": np.array([[b.u0, b.u1, b.v0, b.v1] if b else [0, 0, 0, 0] for b in bs], np.float64),
            "facade": np.array([b.facade_rgb if b else (0, 0, 0) for b in bs], np.float32),
            "window": np.array([b.window_rgb if b else (0, 0, 0) for b in bs], np.float32),
            "params": np.array(
                [[b.floor_m, b.window_spacing_m, b.window_w, b.window_h, b.eave_m, float(b.shopfront)] if b
                 else [3, 3, 0, 0, 0, 0] for b in bs], np.float64),
        }  # fmt: skip

    def _tree_table(self) -> dict | None:
        """The trees as arrays (local centres, radius, canopy centre height and half-height, colour)."""
        if not self.trees:
            return None
        uv = np.array([[t.u, t.v] for t in self.trees])
        return {
            "xy": self.street_to_local(uv),
            "radius": np.array([t.radius_m for t in self.trees]),
            "centre_z": np.array([t.canopy_centre_m for t in self.trees]),
            "half": np.array([t.canopy_half_m for t in self.trees]),
            "rgb": np.array([t.rgb for t in self.trees], np.float32),
        }

    # ------------------------------------------------------------------------------ top-down images
    def _level(self, level: int) -> np.ndarray:
        """The top-down image downsampled 2^level times (box filter, pixel centres stay aligned)."""
        while len(self._pyramid) <= level:
            prev = self._pyramid[-1]
            m = prev.shape[0] // 2
            self._pyramid.append(cv2.resize(prev[: 2 * m, : 2 * m], (m, m), interpolation=cv2.INTER_AREA))
        return self._pyramid[level]

    def _warp_top_down(
        self, dst_to_local: np.ndarray, dst_px_size_m: float, shape_hw: tuple[int, int]
    ) -> np.ndarray:
        """Resample the top-down image: ``dst_to_local`` (2×3) maps destination pixel centres (x+0.5, y+0.5)
        to local metres; ``dst_px_size_m`` picks the pyramid level."""
        level = max(0, int(math.floor(math.log2(max(dst_px_size_m / self.cell_m, 1.0)))))
        level = min(level, max(0, int(math.log2(self.n)) - 4))
        img = self._level(level)
        cell = self.cell_m * 2**level
        # local (e, n) → level pixel (cv2 centres): x = e / cell − 0.5, y = (size − n) / cell − 0.5
        to_px = np.array([[1 / cell, 0.0, -0.5], [0.0, -1 / cell, self.size_m / cell - 0.5]])
        a = np.vstack([dst_to_local, [0.0, 0.0, 1.0]])
        shift = np.array(
            [[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]
        )  # cv2 centre → pixel-centre coords
        m = to_px @ a @ shift
        return cv2.warpAffine(
            img,
            m,
            (shape_hw[1], shape_hw[0]),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=_OUTSIDE,
        )

    def render_aerial(
        self, center_xy_m: tuple[float, float], footprint_m: float, size_px: int, up_heading_deg: float = 0.0
    ) -> np.ndarray:
        """Square aerial crop (S, S, 3) uint8 of ``footprint_m`` true ground metres around a local point.

        The crop's up direction points to the true-north heading ``up_heading_deg`` (0: north up), as
        :meth:`loc2.core.ortho.Orthophoto.crop` cuts it from the GeoTIFF; outside the city: field colour.
        """
        origin = pixel_to_aerial_xy(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), footprint_m, size_px)
        local = self.aerial_to_local(origin, center_xy_m, up_heading_deg)
        m = np.column_stack([local[1] - local[0], local[2] - local[0], local[0]])  # (col, row) → local
        return self._warp_top_down(
            m, footprint_m / size_px * self.grid_factors(center_xy_m)[1], (size_px, size_px)
        )

    def ortho_transform(self, metres_per_pixel: float = 0.1):
        """The GeoTIFF's affine transform and (width, height) at ``metres_per_pixel`` (CRS metres)."""
        from affine import Affine

        size = int(math.ceil(self.size_m / metres_per_pixel - 1e-9))
        x0, y0 = self.origin_xy
        return Affine(metres_per_pixel, 0.0, x0, 0.0, -metres_per_pixel, y0 + self.size_m), (size, size)

    def render_ortho(self, metres_per_pixel: float = 0.1) -> np.ndarray:
        """The north-up (grid-aligned) top-down image of the whole city at ``metres_per_pixel``, (H, W, 3)."""
        if abs(metres_per_pixel - self.cell_m) < 1e-12:
            return self.ortho.copy()
        _, (w, h) = self.ortho_transform(metres_per_pixel)
        m = np.array([[metres_per_pixel, 0.0, 0.0], [0.0, -metres_per_pixel, self.size_m]])
        return self._warp_top_down(m, metres_per_pixel, (h, w))

    def write_orthophoto(
        self, path: str | Path, metres_per_pixel: float = 0.1, compress: str = "deflate"
    ) -> Path:
        """Write the top-down image as a tiled, compressed RGB GeoTIFF with overviews; returns the path.

        The raster's top-left corner is the city's north-west corner; pixels are ``metres_per_pixel`` CRS
        metres. ``compress``: 'deflate' (lossless) or 'jpeg' (quality 90, YCbCr).
        """
        import rasterio
        from rasterio.enums import Resampling

        path = Path(path)
        transform, (w, h) = self.ortho_transform(metres_per_pixel)
        image = self.render_ortho(metres_per_pixel)
        profile = {
            "driver": "GTiff",
            "width": w,
            "height": h,
            "count": 3,
            "dtype": "uint8",
            "crs": self.crs_string,
            "transform": transform,
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
            "interleave": "pixel",
        }
        if compress == "jpeg":
            profile.update(compress="jpeg", photometric="ycbcr", jpeg_quality=90)
        elif compress == "deflate":
            profile.update(compress="deflate", predictor=2, photometric="rgb")
        else:
            raise ValueError(f"compress must be 'deflate' or 'jpeg', got {compress!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        with rasterio.open(path, "w", **profile) as ds:
            ds.write(np.moveaxis(image, -1, 0))
            factors = [f for f in (2, 4, 8, 16, 32) if min(w, h) // f >= 64]
            if factors:
                ds.build_overviews(factors, Resampling.average)
                ds.update_tags(ns="rio_overview", resampling="average")
        return path

    # ------------------------------------------------------------------------------ free space
    def free_space(self, clearance_m: float = 2.0) -> np.ndarray:
        """(n, n) bool: street or sidewalk cells ≥ ``clearance_m`` from buildings, ≥ 0.6 m from trunks and cars."""
        key = round(clearance_m, 3)
        if key not in self._free_cache:
            kind = self._kind_pad[1:-1, 1:-1]
            walkable = (kind == KIND_ROAD) | (kind == KIND_SIDEWALK)
            built = (kind == KIND_BUILDING) | (kind == KIND_ROOF_BOX)
            other = (kind == KIND_TRUNK) | (kind == KIND_CAR)
            d_built = cv2.distanceTransform((~built).astype(np.uint8), cv2.DIST_L2, 5) * self.cell_m
            d_other = cv2.distanceTransform((~other).astype(np.uint8), cv2.DIST_L2, 5) * self.cell_m
            self._free_cache[key] = walkable & (d_built >= clearance_m) & (d_other >= 0.6)
        return self._free_cache[key]

    def sample_positions(
        self, rng: np.random.Generator, count: int, margin_m: float = 20.0, clearance_m: float = 2.0
    ) -> np.ndarray:
        """``count`` random camera positions (local metres, (count, 2)) on streets/sidewalks, in free space,
        at least ``margin_m`` inside the city's edges. Raises :class:`DatasetError` if there is no room."""
        free = self.free_space(clearance_m)
        m = int(math.ceil(margin_m / self.cell_m))
        if 2 * m >= self.n:
            raise DatasetError(f"synthetic city seed {self.seed}: margin {margin_m} m leaves no room")
        rows, cols = np.nonzero(free[m : self.n - m, m : self.n - m])
        if rows.size == 0:
            raise DatasetError(
                f"synthetic city seed {self.seed}: no free street cell {margin_m} m inside the edges"
            )
        pick = rng.integers(0, rows.size, size=count)
        jitter = rng.uniform(0.05, 0.95, size=(count, 2))
        east = (cols[pick] + m + jitter[:, 0]) * self.cell_m
        north = self.size_m - (rows[pick] + m + jitter[:, 1]) * self.cell_m
        return np.stack([east, north], axis=-1)
