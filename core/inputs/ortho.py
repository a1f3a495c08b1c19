"""Orthophotos in any CRS, and metric, true-north-referenced aerial crops cut from them.

One mechanism serves every CRS (projected in metres or feet, UTM, national grids, Web Mercator, geographic
lon/lat): each crop pixel is placed in the local transverse Mercator frame around the prior
(:mod:`loc2.core.geometry.frames`: metres, true north up, rotated by ``up_heading_deg``), sent to the
raster's CRS with pyproj and then to raster pixel coordinates; ``cv2.remap`` resamples the image. Scale
factors, CRS units and meridian convergence are therefore handled exactly by PROJ, with no special cases.

Reading is windowed: only the window covering the (possibly rotated) crop plus a small margin is read,
and when the raster is much finer than the crop it is read decimated (``out_shape``, average
resampling, which lets GDAL use overviews, or a web service's zoom levels). The whole raster is never read.
Sources over the network (COG over HTTP, WMTS, WMS, XYZ tiles: :mod:`.ortho_sources`) are read with GDAL's
retries and timeouts; their windows are kept in a size-bounded cache, and a read that fails raises
:class:`OrthoFetchError` naming the service and the HTTP status.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pyproj
import rasterio
from affine import Affine
from pyproj.crs import ProjectedCRS
from rasterio.coords import BoundingBox
from rasterio.enums import Resampling
from rasterio.errors import RasterioError
from rasterio.transform import array_bounds
from rasterio.windows import Window

from ..errors import OrthoError, OrthoFetchError
from ..geometry.cameras import pixel_to_aerial_xy
from ..geometry.frames import WGS84, aerial_to_local_en, horizontal_crs, local_frame_crs
from .crop import AerialCrop
from .ortho_sources import (
    HeaderCache,
    KeptHandles,
    OrthoSource,
    WindowCache,
    fetch_failure,
    gdal_http_env,
    resolve_source,
)
from .raster_header import RasterHeader, read_header

# Percentile stretch of rasters that are not 8-bit (QGIS's default "cumulative count cut").
STRETCH_PERCENTILES = (2.0, 98.0)
# Read the raster decimated when one of its pixels is finer than 1/DECIMATE_ABOVE of a crop pixel.
DECIMATE_ABOVE = 1.5
# Nodes per side of the grid on which the crop → raster mapping is computed exactly with PROJ.
MAPPING_NODES = 33
# Longest side of the decimated read used for the percentile statistics.
STATS_MAX_SIDE = 512
# Rasters up to this many pixels (or with overviews) get their statistics from one decimated read;
# larger ones without overviews from a grid of small windows.
STATS_FULL_READ_MAX_PIXELS = 4_000_000
STATS_SAMPLE_GRID = 8
STATS_SAMPLE_SIDE = 64


@dataclass(frozen=True)
class _BandPlan:
    """Which bands make the RGB image and how their values become uint8."""

    indexes: tuple[int, ...]  # 1-based band indexes: 3 (RGB) or 1 (grey / palette)
    palette: np.ndarray | None  # (256, 3) uint8 lookup table of a paletted band
    stretch: bool  # values need the percentile stretch (not 8-bit)


class Orthophoto:
    """A georeferenced raster read with rasterio (any GDAL format: GeoTIFF, COG, VRT, JPEG2000, ...).

    The raster must have a CRS and a north-up affine geotransform (no rotation/shear terms). Its metadata
    is read once by :meth:`open`; every crop then opens the file for its own windowed read and closes it, so
    GDAL's block cache does not keep growing over a batch of crops (memory stays flat), no file handle
    is held between crops, and crops from several threads do not share a GDAL handle.
    """

    def __init__(self, source: OrthoSource, header: RasterHeader, crs: pyproj.CRS | None = None) -> None:
        """``crs``: the header's CRS when the caller has it (a local file); else parsed from its WKT."""
        self.source = source
        self.path = Path(source.text)
        self.name = source.service  # how messages name it: the file, or the service's URL
        self._cache = WindowCache() if source.remote else None
        self.crs = crs if crs is not None else pyproj.CRS.from_wkt(header.crs_wkt)
        self._width = header.width
        self._height = header.height
        self._transform = Affine.from_gdal(*header.geotransform)
        self._bounds = BoundingBox(*array_bounds(header.height, header.width, self._transform))
        self._dtypes = header.dtypes
        self._has_overviews = header.has_overviews
        self._to_wgs84 = pyproj.Transformer.from_crs(self.crs, WGS84, always_xy=True)
        self._to_geodetic = pyproj.Transformer.from_crs(self.crs, self.crs.geodetic_crs, always_xy=True)
        palette = None if header.palette is None else np.array(header.palette, np.uint8)
        self._bands = _BandPlan(header.band_indexes, palette, header.stretch)
        self._stretch_cache: tuple[np.ndarray, np.ndarray] | None = None
        self._kept = KeptHandles() if source.remote else None
        self.closed = False

    # ----------------------------------------------------------------------------------------- opening
    @classmethod
    def open(cls, path: str | Path) -> Orthophoto:
        """Open ``path``; raises :class:`OrthoError` if unreadable, without CRS or with rotation terms.

        ``path`` may also be a GDAL path such as ``/vsizip/...``, a URL or an XYZ template
        (:func:`.ortho_sources.resolve_source`).
        """
        source = resolve_source(path)
        headers = HeaderCache() if source.remote else None
        header = headers.get(source) if headers is not None else None
        if header is not None:  # a remote source opened lately: no request (see ortho_sources)
            return cls(source, header)
        try:
            with gdal_http_env():
                dataset = rasterio.open(source.gdal_path)
                try:
                    crs = cls._check(source.service, dataset)
                    header = read_header(dataset, crs)
                except BaseException:
                    dataset.close()
                    raise
        except (RasterioError, OSError, ValueError) as exc:
            failure = fetch_failure(source, exc)
            if failure is not None:
                raise OrthoFetchError(failure) from exc
            raise OrthoError(f"{source.service}: cannot be read as a raster ({exc})") from exc
        if headers is None:
            dataset.close()
            return cls(source, header, crs)
        headers.put(source, header)
        ortho = cls(source, header)  # the CRS from the WKT, as when the header comes from the cache
        ortho._kept.adopt(dataset)  # this thread's first window then fetches no header again
        return ortho

    @contextmanager
    def _reader(self) -> Iterator[rasterio.io.DatasetReader]:
        """A read handle, inside :func:`.ortho_sources.gdal_http_env`: a file's fresh one, closed after use
        (closing drops its blocks from GDAL's cache); a remote source's kept one (:class:`KeptHandles`)."""
        handle = self._dataset if self._kept is None else partial(self._kept.reader, self._dataset)
        with gdal_http_env(), handle() as ds:  # entered in turn: the handle opens inside the environment
            yield ds

    def _dataset(self) -> rasterio.io.DatasetReader:
        """A fresh read handle (close it after use); use it inside :func:`.ortho_sources.gdal_http_env`."""
        if self.closed:
            raise OrthoError(f"{self.name}: the orthophoto was closed")
        try:
            return rasterio.open(self.source.gdal_path)
        except (RasterioError, OSError) as exc:
            raise self._read_error(exc, "cannot be read any more") from exc

    def _read_error(self, exc: BaseException, what: str) -> OrthoError:
        """The error of a failed open or read: :class:`OrthoFetchError` (service, HTTP status) for an HTTP
        failure, else :class:`OrthoError` saying ``what``."""
        failure = fetch_failure(self.source, exc)
        if failure is not None:
            return OrthoFetchError(failure)
        return OrthoError(f"{self.name}: {what} ({exc})")

    @staticmethod
    def _check(path: str, ds: rasterio.io.DatasetReader) -> pyproj.CRS:
        if ds.count < 1:
            raise OrthoError(f"{path}: has no raster bands (a container of subdatasets? open one of them)")
        if ds.crs is None:
            raise OrthoError(
                f"{path}: has no coordinate reference system; assign one (e.g. gdal_edit.py -a_srs)"
            )
        t = ds.transform
        if abs(t.b) > 1e-9 * abs(t.a) or abs(t.d) > 1e-9 * abs(t.e):
            raise OrthoError(
                f"{path}: the geotransform has rotation/shear terms; rotation terms are not supported: "
                "warp it first with gdalwarp"
            )
        if t.is_identity or t.a == 0 or t.e == 0:
            if ds.gcps[0]:
                raise OrthoError(
                    f"{path}: georeferenced by ground control points only: warp it first with gdalwarp"
                )
            raise OrthoError(f"{path}: has no geotransform (not georeferenced)")
        try:
            crs = horizontal_crs(pyproj.CRS.from_wkt(ds.crs.to_wkt()))
        except pyproj.exceptions.CRSError as exc:
            raise OrthoError(f"{path}: its CRS is not understood by PROJ ({exc})") from exc
        if not (crs.is_projected or crs.is_geographic):
            raise OrthoError(f"{path}: its CRS ({crs.name}) is neither projected nor geographic")
        return crs

    def close(self) -> None:
        """Mark the orthophoto closed; close a remote source's kept handles (a file holds none)."""
        self.closed = True
        if self._kept is not None:
            self._kept.close()

    def __enter__(self) -> Orthophoto:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Orthophoto({self.name!r}, {self.width}x{self.height}, {self.crs.to_string()})"

    # ------------------------------------------------------------------------------------ properties
    @property
    def bounds(self) -> rasterio.coords.BoundingBox:
        """(left, bottom, right, top) in the raster CRS."""
        return self._bounds

    @property
    def width(self) -> int:
        return self._width

    @property
    def height(self) -> int:
        return self._height

    @property
    def transform(self):
        """The affine geotransform (raster pixel (col, row), corner-based → CRS x, y)."""
        return self._transform

    def lonlat_to_crs(self, lon: float, lat: float) -> tuple[float, float]:
        """WGS84 degrees → raster CRS (x, y)."""
        x, y = self._to_wgs84.transform(lon, lat, direction="INVERSE")
        return float(x), float(y)

    def crs_to_lonlat(self, x: float, y: float) -> tuple[float, float]:
        """Raster CRS (x, y) → WGS84 degrees (lon, lat)."""
        lon, lat = self._to_wgs84.transform(x, y)
        return float(lon), float(lat)

    def contains(self, x: float, y: float) -> bool:
        """Whether the CRS point lies inside the raster's extent."""
        b = self.bounds
        return b.left <= x <= b.right and b.bottom <= y <= b.top

    def ground_resolution_m(self, center_xy_crs: tuple[float, float]) -> tuple[float, float]:
        """Size of one raster pixel in ground metres at ``center_xy_crs``: (along columns, along rows)."""
        frame = self._local_frame(center_xy_crs)
        to_local = pyproj.Transformer.from_crs(self.crs, frame, always_xy=True)
        x0, y0 = center_xy_crs
        t = self._transform
        xs = np.array([x0, x0 + t.a, x0])
        ys = np.array([y0, y0, y0 + t.e])
        e, n = to_local.transform(xs, ys)
        return float(math.hypot(e[1] - e[0], n[1] - n[0])), float(math.hypot(e[2] - e[0], n[2] - n[0]))

    # --------------------------------------------------------------------------------------- cropping
    def _local_frame(self, center_xy_crs: tuple[float, float]) -> ProjectedCRS:
        lon, lat = self._to_geodetic.transform(*center_xy_crs)
        if not _valid_lonlat(lon, lat):
            raise OrthoError(
                f"{self.name}: the prior {center_xy_crs} is not a valid position in {self.crs.name}"
            )
        return local_frame_crs(self.crs, lon, lat)

    def crop(
        self,
        center_xy_crs: tuple[float, float],
        footprint_m: float,
        size_px: int,
        up_heading_deg: float = 0.0,
    ) -> AerialCrop:
        """Cut a square of ``footprint_m`` ground metres centred at ``center_xy_crs``, resampled to ``size_px``.

        The crop's up direction points to the true-north heading ``up_heading_deg`` (0 = true north up).
        Scale factor, CRS units and meridian convergence are corrected exactly (see the module docstring).
        Raises :class:`OrthoError` if no part of the square lies on the raster.
        """
        if not (footprint_m > 0 and size_px > 0):
            raise ValueError("footprint_m and size_px must be positive")
        center = (float(center_xy_crs[0]), float(center_xy_crs[1]))
        frame = self._local_frame(center)
        local_to_crs = pyproj.Transformer.from_crs(frame, self.crs, always_xy=True)
        col_r, row_r = self._raster_pixel_map(local_to_crs, footprint_m, size_px, up_heading_deg)

        inside = (col_r >= 0) & (col_r <= self.width) & (row_r >= 0) & (row_r <= self.height)
        if not inside.any():
            raise OrthoError(
                f"{self.name}: the {footprint_m:g} m crop around {center} ({self.crs.name}) lies entirely "
                f"outside the raster (bounds {tuple(round(v, 3) for v in self.bounds)})"
            )
        image, valid, info = self._resample(col_r, row_r, size_px)
        valid &= inside
        image[~valid] = 0
        lon, lat = self.crs_to_lonlat(*center)
        return AerialCrop(
            image=image,
            valid=valid,
            footprint_m=float(footprint_m),
            size_px=int(size_px),
            up_heading_deg=float(up_heading_deg % 360.0),
            center_xy_crs=center,
            crs=self.crs,
            center_lonlat=(lon, lat),
            local_crs=frame,
            read_info=info,
        )

    def _raster_pixel_map(
        self, local_to_crs: pyproj.Transformer, footprint_m: float, size_px: int, up_heading_deg: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Continuous raster pixel coordinates (col, row; corner-based) of every crop pixel centre, (S, S) each.

        Computed exactly with PROJ on a grid of nodes and interpolated bilinearly between them (the mapping
        is smooth: the interpolation error is far below a millimetre for crops of a few hundred metres).
        """
        nodes = min(size_px, MAPPING_NODES)
        node_px = np.linspace(0.5, size_px - 0.5, nodes)
        cc, rr = np.meshgrid(node_px, node_px)  # (nodes, nodes): row index = crop row
        xy_aerial = pixel_to_aerial_xy(np.stack([cc, rr], axis=-1), footprint_m, size_px)
        en = aerial_to_local_en(xy_aerial, up_heading_deg)
        x, y = local_to_crs.transform(en[..., 0], en[..., 1])
        inv = ~self._transform
        col_nodes, row_nodes = inv * (np.asarray(x), np.asarray(y))
        col_nodes = np.where(np.isfinite(col_nodes), col_nodes, -1e7)
        row_nodes = np.where(np.isfinite(row_nodes), row_nodes, -1e7)
        if nodes == size_px:
            return col_nodes, row_nodes
        weights = _linear_weights(np.arange(size_px) + 0.5, node_px)  # (S, nodes)
        return weights @ col_nodes @ weights.T, weights @ row_nodes @ weights.T

    def _resample(
        self, col_r: np.ndarray, row_r: np.ndarray, size_px: int
    ) -> tuple[np.ndarray, np.ndarray, dict]:
        """Windowed (possibly decimated) read and bilinear remap onto the crop grid."""
        dec_col, dec_row = _decimation(col_r, row_r)
        margin_col, margin_row = 2 * dec_col + 2, 2 * dec_row + 2
        c0 = max(0, int(math.floor(np.nanmin(col_r) - margin_col)))
        c1 = min(self.width, int(math.ceil(np.nanmax(col_r) + margin_col)))
        r0 = max(0, int(math.floor(np.nanmin(row_r) - margin_row)))
        r1 = min(self.height, int(math.ceil(np.nanmax(row_r) + margin_row)))
        window = Window(c0, r0, c1 - c0, r1 - r0)
        out_w = max(1, int(math.ceil(window.width / dec_col)))
        out_h = max(1, int(math.ceil(window.height / dec_row)))
        decimated = (out_w, out_h) != (window.width, window.height)
        plan = self._bands
        resampling = Resampling.average if decimated and plan.palette is None else Resampling.nearest
        data, mask = self._read_window(window, (out_h, out_w), resampling)
        if np.issubdtype(data.dtype, np.floating):
            mask &= np.isfinite(data).all(axis=0)
            data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)

        # Crop pixel → array pixel (centre-based) coordinates.
        map_x = ((col_r - c0) * (out_w / window.width) - 0.5).astype(np.float32)
        map_y = ((row_r - r0) * (out_h / window.height) - 0.5).astype(np.float32)
        source = self._to_source_image(data)
        image = cv2.remap(source, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        mask_f = cv2.remap(
            mask.astype(np.float32),
            map_x,
            map_y,
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        valid = mask_f >= 0.5
        image = self._to_uint8(image.reshape(size_px, size_px, -1))
        info = {
            "window": (c0, r0, window.width, window.height),
            "out_shape": (out_h, out_w),
            "decimation": (window.width / out_w, window.height / out_h),
            "bands": plan.indexes,
        }
        return image, valid, info

    def _read_window(
        self, window: Window, out_hw: tuple[int, int], resampling: Resampling
    ) -> tuple[np.ndarray, np.ndarray]:
        """The planned bands (bands, h, w) and the validity mask (h, w) of ``window`` read at ``out_hw``;
        from the window cache for a remote source when it holds them. Raises :class:`OrthoFetchError` (or
        :class:`OrthoError`) when the read fails."""
        indexes = list(self._bands.indexes)
        key = None
        if self._cache is not None:
            key = WindowCache.key(self.source, tuple(window.flatten()), out_hw, indexes, resampling.name)
            cached = self._cache.get(key)
            if cached is not None:
                return cached[0], cached[1] > 0
        try:
            with self._reader() as ds:
                data = ds.read(
                    indexes, window=window, out_shape=(len(indexes), *out_hw), resampling=resampling
                )
                mask = ds.dataset_mask(window=window, out_shape=out_hw) > 0
        except (RasterioError, OSError) as exc:
            raise self._read_error(exc, f"the window {tuple(window.flatten())} cannot be read") from exc
        if key is not None:
            self._cache.put(key, data, mask.astype(np.uint8))
        return data, mask

    # ------------------------------------------------------------------------------------ colours
    def _to_source_image(self, data: np.ndarray) -> np.ndarray:
        """(bands, h, w) raster values → (h, w, C) array that cv2.remap accepts (uint8 or float32)."""
        plan = self._bands
        if plan.palette is not None:
            return plan.palette[data[0]]
        img = np.moveaxis(data, 0, -1)
        if img.dtype == np.uint8:
            return np.ascontiguousarray(img)
        return np.ascontiguousarray(img, dtype=np.float32)

    def _to_uint8(self, image: np.ndarray) -> np.ndarray:
        """Remapped values (S, S, C) → (S, S, 3) uint8 RGB (stretch for non-8-bit, grey → 3 channels)."""
        if self._bands.stretch:
            lo, hi = self.stretch_limits()
            scaled = (image.astype(np.float32) - lo) / (hi - lo)
            image = np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)
        else:
            image = image.astype(np.uint8, copy=False)
        if image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        return np.ascontiguousarray(image)

    def stretch_limits(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-band (low, high) values of the 2–98 % percentile stretch, from a decimated sample; cached.

        Sampled from one decimated read (small rasters, or rasters with overviews) or from a grid of small
        windows spread over the raster, never from a full-resolution read of the whole raster.
        """
        if self._stretch_cache is None:
            values = self._sample_values()
            nbands = len(self._bands.indexes)
            lo = np.zeros(nbands, np.float32)
            hi = np.ones(nbands, np.float32)
            for b in range(nbands):
                v = values[b]
                if v.size == 0:
                    dtype = np.dtype(self._dtypes[self._bands.indexes[b] - 1])
                    lo[b], hi[b] = (0.0, float(np.iinfo(dtype).max)) if dtype.kind in "ui" else (0.0, 1.0)
                    continue
                lo[b], hi[b] = np.percentile(v, STRETCH_PERCENTILES)
                if not hi[b] > lo[b]:
                    hi[b] = lo[b] + 1.0
            self._stretch_cache = (lo, hi)
        return self._stretch_cache

    def _sample_values(self) -> list[np.ndarray]:
        """Valid values of each planned band, from a decimated overview read or sampled windows."""
        width, height = self._width, self._height
        idx = list(self._bands.indexes)
        if self._has_overviews or width * height <= STATS_FULL_READ_MAX_PIXELS:
            scale = max(max(width, height) / STATS_MAX_SIDE, 1.0)
            shape = (max(1, round(height / scale)), max(1, round(width / scale)))
            windows = [Window(0, 0, width, height)]
        else:
            side = min(STATS_SAMPLE_SIDE, width, height)
            cols = np.linspace(0, width - side, STATS_SAMPLE_GRID).astype(int)
            rows = np.linspace(0, height - side, STATS_SAMPLE_GRID).astype(int)
            windows = [Window(int(c), int(r), side, side) for r in rows for c in cols]
            shape = (side, side)
        parts: list[list[np.ndarray]] = [[] for _ in idx]
        with self._reader() as ds:
            for w in windows:
                data = ds.read(idx, window=w, out_shape=(len(idx), *shape), resampling=Resampling.nearest)
                mask = ds.dataset_mask(window=w, out_shape=shape) > 0
                if np.issubdtype(data.dtype, np.floating):
                    mask &= np.isfinite(data).all(axis=0)
                for b in range(len(idx)):
                    parts[b].append(data[b][mask].astype(np.float64))
        return [np.concatenate(p) if p else np.zeros(0) for p in parts]


def _valid_lonlat(lon: float, lat: float) -> bool:
    """True for a finite WGS84 position: |lon| ≤ 180°, |lat| ≤ 90° (degrees)."""
    return math.isfinite(lon) and math.isfinite(lat) and abs(lon) <= 180.0 and abs(lat) <= 90.0


def _linear_weights(x: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """(len(x), len(nodes)) matrix of 1-D linear interpolation weights (linear extrapolation at the ends)."""
    k = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, len(nodes) - 2)
    t = (x - nodes[k]) / (nodes[k + 1] - nodes[k])
    w = np.zeros((len(x), len(nodes)))
    rows = np.arange(len(x))
    w[rows, k] = 1.0 - t
    w[rows, k + 1] = t
    return w


def _decimation(col_r: np.ndarray, row_r: np.ndarray) -> tuple[float, float]:
    """Read decimation along raster columns and rows: raster pixels per crop pixel, if above the threshold.

    For raster axis k the crop samples every ‖∂k/∂(crop col, crop row)‖ raster pixels; reading at that step
    (average resampling) keeps the bilinear remap close to 1:1 and free of aliasing.
    """
    s = col_r.shape[0]
    if s < 2:
        return 1.0, 1.0
    d_col = np.hypot(col_r[s // 2, -1] - col_r[s // 2, 0], col_r[-1, s // 2] - col_r[0, s // 2]) / (s - 1)
    d_row = np.hypot(row_r[s // 2, -1] - row_r[s // 2, 0], row_r[-1, s // 2] - row_r[0, s // 2]) / (s - 1)
    fc = float(d_col) if d_col > DECIMATE_ABOVE else 1.0
    fr = float(d_row) if d_row > DECIMATE_ABOVE else 1.0
    return fc, fr
