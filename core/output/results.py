"""A photo's result: the corrected pose in the orthophoto's CRS and WGS84 (true-north heading), the prior,
the quality figures and the detail arrays the result layers are drawn from (``tables.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

import numpy as np
import pyproj
import shapely
from shapely.geometry import Polygon

from ..solver.confidence import PAPER_MIN_RATIOS, confidence_class
from ..types import CONFIDENCE_NONE, STATUS_FAILED, STATUS_OK

OUTLINE_SECTORS = 72
OUTLINE_FAN_GAP_DEG = 90.0

_GEOD = pyproj.Geod(ellps="WGS84")


def candidate_summary(candidates: list[tuple[float, float, float]]) -> str:
    """Search crops as text for the poses table: "x y inliers; …" (crop centre, inliers it contributed),
    most inliers first."""
    ranked = sorted(candidates, key=lambda c: -c[2])
    return "; ".join(f"{x:.2f} {y:.2f} {score:g}" for x, y, score in ranked)


def geodesic_distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance (metres, WGS84 ellipsoid) between two lon/lat points (degrees); NaN if unknown."""
    values = (lon1, lat1, lon2, lat2)
    if any(v is None or not math.isfinite(v) for v in values):
        return math.nan
    _, _, dist_m = _GEOD.inv(lon1, lat1, lon2, lat2)
    return float(dist_m)


@lru_cache(maxsize=16)
def _to_wgs84(crs_wkt: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(pyproj.CRS.from_user_input(crs_wkt), "EPSG:4326", always_xy=True)


@lru_cache(maxsize=16)
def _from_wgs84(crs_wkt: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs("EPSG:4326", pyproj.CRS.from_user_input(crs_wkt), always_xy=True)


def crs_to_lonlat(crs_wkt: str, x: np.ndarray | float, y: np.ndarray | float):
    """Ortho-CRS coordinates → (lon, lat) WGS84 degrees."""
    return _to_wgs84(crs_wkt).transform(x, y)


def lonlat_to_crs(crs_wkt: str, lon: np.ndarray | float, lat: np.ndarray | float):
    """(lon, lat) WGS84 degrees → ortho-CRS coordinates."""
    return _from_wgs84(crs_wkt).transform(lon, lat)


def geodesic_distances_m(crs_wkt: str, a_xy: np.ndarray, b_xy: np.ndarray) -> np.ndarray:
    """Geodesic distances in metres between matching rows of two (N, 2) ortho-CRS point arrays."""
    a, b = _points(a_xy), _points(b_xy)
    if len(a) == 0:
        return np.zeros(0)
    lon1, lat1 = crs_to_lonlat(crs_wkt, a[:, 0], a[:, 1])
    lon2, lat2 = crs_to_lonlat(crs_wkt, b[:, 0], b[:, 1])
    _, _, dist_m = _GEOD.inv(lon1, lat1, lon2, lat2)
    return np.asarray(dist_m, dtype=np.float64)


def geodesic_area_m2(polygon: Polygon | None, crs_wkt: str) -> float:
    """Area in square metres on the WGS84 ellipsoid of a polygon given in ortho-CRS coordinates."""
    if polygon is None or polygon.is_empty or not crs_wkt:
        return math.nan

    def to_lonlat(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(crs_to_lonlat(crs_wkt, xy[:, 0], xy[:, 1]))

    lonlat = shapely.transform(polygon, to_lonlat)
    area_m2, _ = _GEOD.geometry_area_perimeter(lonlat)
    return float(abs(area_m2))


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _points(a: Any, width: int = 2) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    return arr.reshape(-1, width) if width > 1 else arr.reshape(-1)


def _nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


@dataclass
class PhotoResult:
    """The outcome for one photo. Positions in the ortho CRS (``crs_wkt``) and WGS84; headings in degrees
    clockwise from TRUE north in [0, 360); unknown numbers are NaN (``prior_heading_deg`` is None if unknown).

    On creation the derived values are filled in when missing: lon/lat from x/y (and the reverse) through
    ``crs_wkt``, the prior likewise, ``shift_m`` (geodesic metres, prior → corrected) and ``confidence``
    (:func:`confidence_class` of the inlier ratio; ``none`` unless the status is ``ok``).

    Detail arrays, all in ortho-CRS coordinates: ``inliers_xy_crs`` (N, 2) aerial end of each inlier with
    ``inliers_uv`` (N, 2) its ground pixel (column, row of the input photo), ``inliers_prob`` (N,) and
    ``inliers_resid_m`` (N,); ``layout_xy_crs`` (M, 2) every valid lifted ground point moved by the pose (the
    re-scaled ground layout); ``matches_ground_xy_crs`` / ``matches_aerial_xy_crs`` (K, 2) and ``matches_prob`` (K,)
    the top matches, most probable first. ``candidates`` lists (x, y, inliers) of every search crop: its centre and the inliers it gave the pose.
    """

    photo: str
    status: str
    message: str = ""
    x: float = math.nan
    y: float = math.nan
    lon: float = math.nan
    lat: float = math.nan
    heading_deg: float = math.nan
    prior_x: float = math.nan
    prior_y: float = math.nan
    prior_lon: float = math.nan
    prior_lat: float = math.nan
    prior_heading_deg: float | None = None
    shift_m: float = math.nan
    scale: float = math.nan
    num_inliers: int = 0
    inlier_ratio: float = math.nan
    confidence: str = ""
    runtime_s: float = math.nan
    model: str = ""
    depth: str = ""
    solver: str = ""
    precision: str = ""
    crs_wkt: str = field(default="", repr=False)
    candidates: list[tuple[float, float, float]] = field(default_factory=list, repr=False)
    inliers_xy_crs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    inliers_uv: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    inliers_prob: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    inliers_resid_m: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    layout_xy_crs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    matches_ground_xy_crs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    matches_aerial_xy_crs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)), repr=False)
    matches_prob: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    def __post_init__(self) -> None:
        self.photo = str(self.photo)
        for name in (
            "inliers_xy_crs",
            "inliers_uv",
            "layout_xy_crs",
            "matches_ground_xy_crs",
            "matches_aerial_xy_crs",
        ):
            setattr(self, name, _points(getattr(self, name)))
        for name in ("inliers_prob", "inliers_resid_m", "matches_prob"):
            setattr(self, name, _points(getattr(self, name), width=1))
        for name in ("x", "y", "lon", "lat", "heading_deg", "prior_x", "prior_y", "prior_lon", "prior_lat"):
            setattr(self, name, _nan_if_none(getattr(self, name)))
        self.num_inliers = int(self.num_inliers)
        self.candidates = [tuple(float(v) for v in c) for c in self.candidates]
        if _finite(self.heading_deg):
            self.heading_deg = float(self.heading_deg) % 360.0
        if _finite(self.prior_heading_deg):
            self.prior_heading_deg = float(self.prior_heading_deg) % 360.0
        else:
            self.prior_heading_deg = None
        self._fill_coordinates()
        if not _finite(self.shift_m) and self.ok:
            self.shift_m = geodesic_distance_m(self.prior_lon, self.prior_lat, self.lon, self.lat)
        if not self.confidence:
            self.confidence = confidence_class(self.inlier_ratio) if self.ok else CONFIDENCE_NONE

    def _fill_coordinates(self) -> None:
        if not self.crs_wkt:
            return
        pairs = (("x", "y", "lon", "lat"), ("prior_x", "prior_y", "prior_lon", "prior_lat"))
        for xn, yn, lonn, latn in pairs:
            x, y, lon, lat = (getattr(self, n) for n in (xn, yn, lonn, latn))
            if _finite(x) and _finite(y) and not (_finite(lon) and _finite(lat)):
                lon, lat = crs_to_lonlat(self.crs_wkt, x, y)
                setattr(self, lonn, float(lon))
                setattr(self, latn, float(lat))
            elif _finite(lon) and _finite(lat) and not (_finite(x) and _finite(y)):
                x, y = lonlat_to_crs(self.crs_wkt, lon, lat)
                setattr(self, xn, float(x))
                setattr(self, yn, float(y))

    @property
    def ok(self) -> bool:
        """True when the photo has a corrected pose."""
        return self.status == STATUS_OK and _finite(self.x) and _finite(self.y)

    @property
    def has_prior(self) -> bool:
        return _finite(self.prior_x) and _finite(self.prior_y)

    @property
    def crs(self) -> pyproj.CRS | None:
        """The ortho CRS, or None when ``crs_wkt`` is empty."""
        return pyproj.CRS.from_user_input(self.crs_wkt) if self.crs_wkt else None

    @classmethod
    def failed(
        cls,
        photo: str,
        message: str,
        *,
        status: str = STATUS_FAILED,
        prior_lon: float | None = None,
        prior_lat: float | None = None,
        prior_heading_deg: float | None = None,
        crs_wkt: str = "",
        **kwargs: Any,
    ) -> PhotoResult:
        """A photo without a pose: keeps what is known (the prior) and the reason."""
        return cls(
            photo=str(photo),
            status=status,
            message=message,
            prior_lon=_nan_if_none(prior_lon),
            prior_lat=_nan_if_none(prior_lat),
            prior_heading_deg=prior_heading_deg,
            crs_wkt=crs_wkt,
            **kwargs,
        )

    def outline(self, sectors: int = OUTLINE_SECTORS) -> Polygon | None:
        """The projected ground outline around the corrected position (:func:`ground_outline`)."""
        if not self.ok:
            return None
        return ground_outline(self.layout_xy_crs, (self.x, self.y), sectors=sectors)


def ground_outline(
    layout_xy_crs: np.ndarray,
    camera_xy: tuple[float, float] | np.ndarray,
    sectors: int = OUTLINE_SECTORS,
    fan_gap_deg: float = OUTLINE_FAN_GAP_DEG,
) -> Polygon | None:
    """Outline of the re-scaled ground layout seen from the camera, as a polygon in map coordinates.

    The plane around ``camera_xy`` is cut into ``sectors`` equal azimuth sectors; the farthest finite layout
    point of each sector is a vertex, in azimuth order. When the largest azimuth gap between neighbouring
    vertices exceeds ``fan_gap_deg`` (a pinhole camera sees only its field of view) the camera point closes
    the fan, so the polygon includes the camera. Returns None with fewer than 3 occupied sectors.
    """
    pts = _points(layout_xy_crs)
    pts = pts[np.isfinite(pts).all(axis=1)]
    cam = np.asarray(camera_xy, dtype=np.float64).reshape(2)
    if len(pts) < 3 or not np.isfinite(cam).all():
        return None
    d = pts - cam
    r = np.hypot(d[:, 0], d[:, 1])
    keep = r > 0
    d, r = d[keep], r[keep]
    az = np.arctan2(d[:, 1], d[:, 0]) % (2 * math.pi)
    sector = np.minimum((az / (2 * math.pi) * sectors).astype(np.int64), sectors - 1)
    order = np.lexsort((r, sector))  # by sector, then by distance: the last of each sector is the farthest
    last = np.ones(len(order), dtype=bool)
    last[:-1] = sector[order][1:] != sector[order][:-1]
    chosen = order[last]
    if len(chosen) < 3:
        return None
    chosen = chosen[np.argsort(az[chosen])]
    az_c = az[chosen]
    gaps = np.diff(np.concatenate([az_c, az_c[:1] + 2 * math.pi]))
    largest = int(np.argmax(gaps))
    vertices = cam + d[chosen]
    if math.degrees(gaps[largest]) > fan_gap_deg:
        start = (largest + 1) % len(chosen)
        vertices = np.vstack([cam[None, :], np.roll(vertices, -start, axis=0)])
    polygon = Polygon(vertices)
    if not polygon.is_valid:
        fixed = shapely.make_valid(polygon)
        parts = [g for g in getattr(fixed, "geoms", [fixed]) if isinstance(g, Polygon)]
        if not parts:
            return None
        polygon = max(parts, key=lambda g: g.area)
    return polygon if polygon.area > 0 else None


class AerialCropLike(Protocol):
    """What :func:`photo_result_from_localization` needs of ``core.ortho.AerialCrop``."""

    crs: pyproj.CRS

    def aerial_to_crs(self, xy_aerial_m: np.ndarray) -> np.ndarray: ...

    def heading_to_true_north(self, heading_aerial_deg: float) -> float: ...


def photo_result_from_localization(
    photo: str,
    loc: Any,
    crop: AerialCropLike,
    *,
    prior_lon: float | None = None,
    prior_lat: float | None = None,
    prior_heading_deg: float | None = None,
    model: str = "",
    depth: str = "",
    solver: str = "",
    precision: str = "",
    runtime_s: float = math.nan,
    candidates: list[tuple[float, float, float]] | None = None,
    top_matches: int = 50,
    confidence_min_ratios: tuple[float, float] = PAPER_MIN_RATIOS,
) -> PhotoResult:
    """A :class:`PhotoResult` from a ``LocalizationResult`` (aerial frame) and the crop it was computed on.

    Aerial-frame points go to the ortho CRS with ``crop.aerial_to_crs``; the heading (clockwise from the
    crop's up) goes to true north with ``crop.heading_to_true_north``. The prior is lon/lat WGS84 degrees
    and a true-north heading. Matches are the ``top_matches`` most probable inliers. The confidence class
    uses ``confidence_min_ratios`` (the model's: ``Preset.confidence_min_ratios_for``).
    """
    crs_wkt = crop.crs.to_wkt()
    common = dict(
        prior_lon=_nan_if_none(prior_lon),
        prior_lat=_nan_if_none(prior_lat),
        prior_heading_deg=prior_heading_deg,
        model=model,
        depth=depth,
        solver=solver,
        precision=precision,
        runtime_s=runtime_s,
        crs_wkt=crs_wkt,
        candidates=list(candidates or []),
    )
    if not loc.ok:
        return PhotoResult(photo=str(photo), status=loc.status, message=loc.message, **common)
    pose = loc.pose
    xy = crop.aerial_to_crs(np.asarray(pose.t, dtype=np.float64).reshape(1, 2))[0]
    inl_aerial = _points(loc.inliers_xy_aerial_m)
    inl_ground = _points(loc.inliers_xy_ground_m)
    prob = _points(loc.inliers_prob, width=1)
    top = np.argsort(-prob, kind="stable")[: max(int(top_matches), 0)]
    moved = pose.apply(inl_ground[top])
    layout = _points(loc.layout_xy_aerial_m)

    def to_crs(a: np.ndarray) -> np.ndarray:
        return crop.aerial_to_crs(a) if len(a) else np.zeros((0, 2))

    return PhotoResult(
        photo=str(photo),
        status=STATUS_OK,
        message=loc.message,
        x=float(xy[0]),
        y=float(xy[1]),
        heading_deg=float(crop.heading_to_true_north(pose.heading_aerial_deg)),
        scale=float(pose.s),
        num_inliers=int(loc.num_inliers),
        inlier_ratio=float(loc.inlier_ratio),
        confidence=confidence_class(float(loc.inlier_ratio), confidence_min_ratios),
        inliers_xy_crs=to_crs(inl_aerial),
        inliers_uv=_points(loc.inliers_ground_px),
        inliers_prob=prob,
        inliers_resid_m=_points(loc.inliers_residual_m, width=1),
        layout_xy_crs=to_crs(layout[np.isfinite(layout).all(axis=1)]),
        matches_ground_xy_crs=to_crs(moved),
        matches_aerial_xy_crs=to_crs(inl_aerial[top]),
        matches_prob=prob[top],
        **common,
    )
