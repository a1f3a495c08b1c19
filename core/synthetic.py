"""A deterministic synthetic georeferenced city: height field, orthophoto, panoramas, pinhole photos, depth.

One integer seed gives one city (a new seed is an unseen city): a street grid with asphalt, lane markings,
crosswalks, stop lines and arrows, raised sidewalks (kerb 0.15 m), buildings 5–25 m tall with flat or gable
roofs, rooftop boxes, per-building façade colours and window patterns, round tree canopies and parked cars.
The world is a 2.5-D height field: one height (metres) per square cell, plus a top-down RGB albedo. Tree
canopies are the one exception: the height field (and the orthophoto) holds their upper halves as domes, while
ground-level rendering casts rays against ellipsoidal canopies over trunks, so one sees under street trees.

Renders: the orthophoto (GeoTIFF) and aerial crops from the shaded top-down image; panoramas and pinhole
photos by vectorised ray casting (every image column is a vertical plane: the height field is sampled once
per column, the first sample above each ray comes from a running maximum and one sorted search, then
bisection; tops are solved exactly, walls to ≈ 1–2 mm); depth PNGs in the published formats; JPEGs with EXIF
GPS; whole benchmark folders (:func:`generate_dataset`) and in-memory training pairs
(:func:`sample_training_pair`).

Frames and units:

* **City local frame**: metres east and north of the city's south-west corner, along the axes of the
  projected CRS (grid east / grid north). It maps to CRS coordinates exactly:
  ``xy_crs = origin_xy + xy_local_m``. Horizontal lengths in this frame are CRS (grid) metres; true ground
  metres differ by the projection's scale factor k (≈ 0.99961 at the default site, UTM 32N near Zurich).
* **Cells**: row 0 is the northern edge; cell (row i, col j) covers east ∈ [j·c, (j+1)·c],
  north ∈ [size − (i+1)·c, size − i·c] (c = ``cell_m``), like the orthophoto's pixels.
* **Street frame** (internal): the street grid is rotated by ``rotation_deg`` (counter-clockwise) about the
  city centre; buildings are rectangles in that frame.
* **Headings** (parameters and outputs): degrees clockwise from TRUE north, [0, 360). Rendering happens in the
  CRS grid; a true bearing b has the grid bearing ``b − γ`` where γ is PROJ's meridian convergence
  (``pyproj.Proj(crs).get_factors(lon, lat).meridian_convergence``). Sign verified with pyproj: moving a point
  due north along its meridian near Zurich (8.54° E, west of the 9° E central meridian) moves it towards grid
  bearing +0.338°, and PROJ reports γ = −0.338° there, so grid bearing = true bearing − γ.
* **Depth**: true ground metres along the ray (the renderer marches in ground metres and converts steps to
  grid metres with k and γ of the camera's position). Panorama depth is radial, pinhole depth is z-depth;
  NaN for sky and for rays with no hit within ``max_range_m``.
* **Aerial frame** (see :mod:`loc2.core.geometry`): metres from the crop centre, x down, y right; the crop's
  up direction points to the true-north heading ``up_heading_deg`` and its footprint is true ground metres,
  exactly as :meth:`loc2.core.ortho.Orthophoto.crop` cuts crops from the written GeoTIFF.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pyproj

from .errors import DatasetError
from .geometry import Equirectangular, Pinhole, pixel_to_aerial_xy

DEFAULT_CRS = "EPSG:32632"  # WGS 84 / UTM zone 32N
DEFAULT_ORIGIN_XY = (465_000.0, 5_246_000.0)  # south-west corner, Zurich (≈ 8.54° E, 47.37° N)
GROUND_ALTITUDE_M = 408.0  # altitude of the street level above sea level (EXIF GPSAltitude)
SIDEWALK_HEIGHT_M = 0.15
SUN_AZIMUTH_DEG = 135.0  # grid bearing of the sun (south-east)
SUN_ELEVATION_DEG = 50.0

# Material kinds of the cells.
KIND_ROAD, KIND_SIDEWALK, KIND_YARD, KIND_BUILDING, KIND_ROOF_BOX, KIND_TREE, KIND_CAR, KIND_TRUNK = range(8)

_ASPHALT = (80, 81, 84)
_SIDEWALK = (168, 163, 156)
_GRASS = (92, 124, 64)
_PAVED = (150, 144, 136)
_PAINT = (232, 232, 226)
_OUTSIDE = (104, 118, 84)  # fields around the city
_SKY_ZENITH = np.array([70, 120, 200], np.float32)
_SKY_HORIZON = np.array([200, 220, 240], np.float32)
_HAZE = np.array([190, 200, 210], np.float32)
_FACADES = [
    (222, 210, 188), (236, 232, 224), (200, 196, 190), (168, 88, 64), (150, 118, 98), (214, 190, 140),
    (190, 200, 206), (230, 212, 198), (122, 122, 128), (204, 170, 138), (180, 190, 160), (240, 220, 170),
]  # fmt: skip
_FLAT_ROOFS = [(150, 150, 146), (120, 120, 118), (170, 165, 155), (72, 74, 78), (105, 100, 95)]
_GABLE_ROOFS = [(164, 82, 58), (130, 72, 52), (84, 88, 98), (150, 100, 70), (110, 60, 50)]
_CARS = [(230, 230, 228), (190, 192, 196), (30, 30, 34), (40, 55, 110), (160, 30, 30), (110, 112, 116),
         (20, 80, 60), (200, 160, 60)]  # fmt: skip


# ----------------------------------------------------------------------------------------------- objects
@dataclass(frozen=True)
class Street:
    """A straight street of the grid, in the street frame (metres).

    ``axis`` 0: runs along v at u = ``centre``; ``axis`` 1: runs along u at v = ``centre``. Traffic drives
    on the right. ``half_m`` is half the carriageway (lanes plus parking lane), ``sidewalk_m`` each
    sidewalk's width.
    """

    axis: int
    centre: float
    half_m: float
    sidewalk_m: float
    lanes: int
    lane_m: float
    parking: bool
    trees: bool

    def to_uv(self, s: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Street coordinates (s along the street, t to the right of traffic driving towards +s) → (u, v)."""
        s, t = np.asarray(s, np.float64), np.asarray(t, np.float64)
        if self.axis == 0:
            return np.stack([self.centre + t, s], axis=-1)
        return np.stack([s, self.centre - t], axis=-1)


@dataclass(frozen=True)
class Building:
    """A building: a rectangle [u0, u1] × [v0, v1] in the street frame, with its roof and façade.

    ``height_m`` is the top (ridge for gable roofs), ``eave_m`` the top of the walls. Façade windows repeat every
    ``window_spacing_m`` along a wall and every ``floor_m`` up it; ``window_w``/``window_h`` are their fractions.
    """

    id: int
    u0: float
    u1: float
    v0: float
    v1: float
    height_m: float
    eave_m: float
    roof: str  # 'flat' | 'gable'
    roof_rgb: tuple[int, int, int]
    facade_rgb: tuple[int, int, int]
    window_rgb: tuple[int, int, int]
    floor_m: float
    window_spacing_m: float
    window_w: float
    window_h: float
    shopfront: bool

    @property
    def centre_uv(self) -> tuple[float, float]:
        return (self.u0 + self.u1) / 2, (self.v0 + self.v1) / 2


@dataclass(frozen=True)
class Tree:
    """A tree at (u, v) in the street frame: a trunk and an ellipsoidal canopy of horizontal radius ``radius_m``
    whose top is ``height_m`` above the datum and whose vertical semi-axis is :attr:`canopy_half_m`."""

    u: float
    v: float
    radius_m: float
    height_m: float
    rgb: tuple[int, int, int]

    @property
    def canopy_half_m(self) -> float:
        return min(0.9 * self.radius_m, 0.35 * self.height_m)

    @property
    def canopy_centre_m(self) -> float:
        """Height of the canopy ellipsoid's centre (the trunk reaches up to it)."""
        return self.height_m - self.canopy_half_m


def _new_tree(rng: np.random.Generator, u: float, v: float, radius: tuple, height: tuple) -> Tree:
    return Tree(float(u), float(v), float(rng.uniform(*radius)), float(rng.uniform(*height)),
                _jitter(rng, (62, 98, 48), 14))  # fmt: skip


@dataclass(frozen=True)
class Car:
    """A parked car: a box of ``height_m`` over the rectangle with centre (u, v), oriented along ``axis``."""

    u: float
    v: float
    length_m: float
    width_m: float
    height_m: float
    axis: int
    rgb: tuple[int, int, int]


def _jitter(rng: np.random.Generator, rgb, amount: int = 10) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _pick(rng: np.random.Generator, palette: list) -> tuple[int, int, int]:
    return palette[int(rng.integers(len(palette)))]


# ----------------------------------------------------------------------------------------------- layout
def _layout_streets(rng: np.random.Generator, axis: int, half_extent_m: float) -> list[Street]:
    """Streets of one axis spaced 55–110 m apart, covering ±``half_extent_m`` of the street frame."""
    streets = []
    pos = -half_extent_m - rng.uniform(0.0, 40.0)
    while pos < half_extent_m + 60.0:
        lanes = int(rng.choice([1, 1, 2]))
        lane_m = float(rng.uniform(3.0, 3.5))
        parking = bool(rng.random() < 0.65)
        half = lanes * lane_m + (2.3 if parking else 0.0)
        streets.append(
            Street(
                axis=axis,
                centre=float(pos),
                half_m=half,
                sidewalk_m=float(rng.uniform(2.5, 4.5)),
                lanes=lanes,
                lane_m=lane_m,
                parking=parking,
                trees=bool(rng.random() < 0.55),
            )
        )
        pos += rng.uniform(55.0, 110.0)
    return streets


def _split_lots(rng: np.random.Generator, rect: tuple, max_side: float = 30.0) -> list[tuple]:
    """Binary space partition of a block into lots no longer than ``max_side`` metres."""
    u0, u1, v0, v1 = rect
    w, d = u1 - u0, v1 - v0
    if max(w, d) <= max_side:
        return [rect]
    f = rng.uniform(0.35, 0.65)
    if w >= d:
        cut = u0 + w * f
        return _split_lots(rng, (u0, cut, v0, v1), max_side) + _split_lots(rng, (cut, u1, v0, v1), max_side)
    cut = v0 + d * f
    return _split_lots(rng, (u0, u1, v0, cut), max_side) + _split_lots(rng, (u0, u1, cut, v1), max_side)


class _Raster:
    """The city's cell arrays and the street-frame → cell-pixel mapping used while building them.

    Pixel coordinates (x, y) follow OpenCV: pixel centres at integers, x = east / c − 0.5,
    y = (size − north) / c − 0.5.
    """

    def __init__(self, n: int, cell_m: float, rotation_rad: float) -> None:
        self.n = n
        self.cell_m = cell_m
        self.size_m = n * cell_m
        self.cos, self.sin = math.cos(rotation_rad), math.sin(rotation_rad)
        self.centre = self.size_m / 2
        self.height = np.full((n, n), SIDEWALK_HEIGHT_M, np.float32)
        self.kind = np.full((n, n), KIND_YARD, np.uint8)
        self.bid = np.full((n, n), -1, np.int16)
        self.albedo = np.empty((n, n, 3), np.uint8)
        self.albedo[:] = _GRASS
        self.amp = np.full((n, n), 16, np.uint8)  # texture noise amplitude, percent

    def uv_to_px(self, uv: np.ndarray) -> np.ndarray:
        uv = np.asarray(uv, np.float64)
        u, v = uv[..., 0], uv[..., 1]
        east = self.centre + self.cos * u - self.sin * v
        north = self.centre + self.sin * u + self.cos * v
        return np.stack([east / self.cell_m - 0.5, (self.size_m - north) / self.cell_m - 0.5], axis=-1)

    def fill(
        self, polys_uv: list[np.ndarray], *, height=None, kind=None, rgb=None, amp=None, bid=None
    ) -> None:
        """Fill street-frame polygons (arrays (k, 2) or (m, k, 2), metres) into the chosen layers.

        OpenCV fills every pixel an edge touches; rectangles that carry geometry (height, kind or id) are
        first inset by half a cell so that exactly the cells whose centres lie inside are filled. Paint-only
        polygons (markings) keep OpenCV's inclusive edges, so thin lines never vanish.
        """
        exact = height is not None or kind is not None or bid is not None
        pts = []
        for p in polys_uv:
            p = np.asarray(p, np.float64).reshape(-1, np.shape(p)[-2], 2)
            if exact and p.shape[1] == 4:
                p = _inset_quads(p, self.cell_m / 2)
            px = np.round(self.uv_to_px(p) * 16).astype(np.int32)
            pts += list(px)
        layers = [
            (layer, float(value))
            for layer, value in ((self.height, height), (self.kind, kind), (self.amp, amp), (self.bid, bid))
            if value is not None
        ]
        if rgb is not None:
            layers.append((self.albedo, tuple(float(c) for c in rgb)))
        # One call per polygon: a multi-contour fillPoly leaves overlaps of its contours empty (even-odd rule).
        for poly in pts:
            for layer, value in layers:
                if len(poly) == 4:
                    cv2.fillConvexPoly(layer, poly, value, lineType=cv2.LINE_8, shift=4)
                else:
                    cv2.fillPoly(layer, [poly], value, lineType=cv2.LINE_8, shift=4)

    def window(self, u0: float, u1: float, v0: float, v1: float, pad_m: float = 0.0):
        """Cell slices covering a street-frame rectangle, and the (u, v) of those cells' centres; or None."""
        corners = np.array([[u0 - pad_m, v0 - pad_m], [u1 + pad_m, v0 - pad_m], [u1 + pad_m, v1 + pad_m],
                            [u0 - pad_m, v1 + pad_m]])  # fmt: skip
        px = self.uv_to_px(corners)
        x0, y0 = np.floor(px.min(axis=0)).astype(int)
        x1, y1 = np.ceil(px.max(axis=0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.n), min(y1, self.n)
        if x0 >= x1 or y0 >= y1:
            return None
        east = (np.arange(x0, x1, dtype=np.float32) + 0.5) * self.cell_m - self.centre
        north = self.size_m - (np.arange(y0, y1, dtype=np.float32) + 0.5) * self.cell_m - self.centre
        u = self.cos * east[None, :] + self.sin * north[:, None]
        v = -self.sin * east[None, :] + self.cos * north[:, None]
        return (slice(y0, y1), slice(x0, x1)), u, v


def _inset_quads(quads: np.ndarray, d: float) -> np.ndarray:
    """Move each vertex of (m, 4, 2) rectangles ``d`` along both adjacent edges: the rectangle inset by ``d``."""
    nxt = np.roll(quads, -1, axis=1) - quads
    prv = np.roll(quads, 1, axis=1) - quads
    unit = lambda e: e / np.maximum(np.linalg.norm(e, axis=-1, keepdims=True), 1e-12)  # noqa: E731
    return quads + d * (unit(nxt) + unit(prv))


def _rect(u0: float, u1: float, v0: float, v1: float) -> np.ndarray:
    return np.array([[u0, v0], [u1, v0], [u1, v1], [u0, v1]], np.float64)


def _street_rect(street: Street, s0, s1, t0, t1) -> np.ndarray:
    """Rectangle(s) s0 … s1 × t0 … t1 in street coordinates → (4, 2) or (m, 4, 2) street-frame corners."""
    s0, s1, t0, t1 = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (s0, s1, t0, t1)))
    s = np.stack([s0, s1, s1, s0], axis=-1)
    t = np.stack([t0, t0, t1, t1], axis=-1)
    return street.to_uv(s, t)


def _arrow(street: Street, s_tip: float, t: float, direction: int) -> np.ndarray:
    """A straight-ahead arrow (5 m long) whose tip is at ``s_tip`` and points towards ``direction`` · s."""
    s = np.array([0.0, 1.6, 1.6, 5.0, 5.0, 1.6, 1.6])
    w = np.array([0.0, 0.55, 0.15, 0.15, -0.15, -0.15, -0.55])
    return street.to_uv(s_tip - direction * s, t + w)


# ----------------------------------------------------------------------------------------------- building
def _paint_streets(raster: _Raster, streets: list[Street], ext_m: float) -> None:
    """Sidewalks (raised, with paving seams and kerb stones), then carriageways over them."""
    sidewalks, seams, kerbs, roads = [], [], [], []
    s_seams = np.arange(-ext_m, ext_m, 1.5)
    for st in streets:
        h, w = st.half_m, st.sidewalk_m
        for sign in (1.0, -1.0):
            t0, t1 = sorted((sign * h, sign * (h + w)))
            sidewalks.append(_street_rect(st, -ext_m, ext_m, t0, t1))
            k0, k1 = sorted((sign * h, sign * (h + 0.15)))
            kerbs.append(_street_rect(st, -ext_m, ext_m, k0, k1))
            seams.append(_street_rect(st, s_seams, s_seams + 0.05, t0, t1))
        roads.append(_street_rect(st, -ext_m, ext_m, -h, h))
    raster.fill(sidewalks, height=SIDEWALK_HEIGHT_M, kind=KIND_SIDEWALK, rgb=_SIDEWALK, amp=5, bid=-1)
    raster.fill(seams, rgb=(140, 136, 130))
    raster.fill(kerbs, rgb=(196, 194, 190), amp=3)
    raster.fill(roads, height=0.0, kind=KIND_ROAD, rgb=_ASPHALT, amp=8, bid=-1)


def _segment_details(
    rng: np.random.Generator, st: Street, s0: float, s1: float, cross_sidewalks: tuple[float, float]
) -> tuple[list[np.ndarray], list[Car], list[Tree]]:
    """Markings, parked cars and street trees of one street segment between the cross carriageways s0 … s1."""
    paint: list[np.ndarray] = []
    cars: list[Car] = []
    trees: list[Tree] = []
    h, lane, drive = st.half_m, st.lane_m, st.lanes * st.lane_m
    # Centre line: dashed with one lane per direction, solid with two (plus dashed lane dividers).
    dashes = np.arange(s0 + 7.0, s1 - 9.0, 9.0)
    if st.lanes == 1:
        paint.append(_street_rect(st, dashes, dashes + 3.0, -0.075, 0.075))
    else:
        if s1 - s0 > 16.0:
            paint.append(_street_rect(st, s0 + 7.0, s1 - 7.0, -0.1, 0.1))
        for t in (lane, -lane):
            paint.append(_street_rect(st, dashes, dashes + 3.0, t - 0.075, t + 0.075))
    # Crosswalks (zebra stripes) and stop lines at the ends; arrows on the approach lanes.
    stripes = np.arange(-h + 0.4, h - 0.6, 1.0)
    for end, direction in ((s0, -1), (s1, 1)):
        if rng.random() < 0.75:
            a, b = sorted((end - direction * 1.0, end - direction * 4.0))
            paint.append(_street_rect(st, a, b, stripes, stripes + 0.5))
        a, b = sorted((end - direction * 5.0, end - direction * 5.4))
        t0, t1 = (0.0, drive) if direction == 1 else (-drive, 0.0)
        paint.append(_street_rect(st, a, b, t0, t1))
        if rng.random() < 0.6 and s1 - s0 > 30.0:
            for k in range(st.lanes):
                t = direction * (k + 0.5) * lane
                paint.append(_arrow(st, end - direction * 8.0, t, direction))
    # Parked cars in the parking lanes.
    if st.parking:
        for sign in (1.0, -1.0):
            s = s0 + 9.0 + rng.uniform(0.0, 4.0)
            while s < s1 - 13.0:
                length = rng.uniform(4.0, 4.9)
                if rng.random() < 0.75:
                    centre = st.to_uv(s + length / 2, sign * (drive + 1.15))
                    cars.append(
                        Car(
                            u=float(centre[0]),
                            v=float(centre[1]),
                            length_m=float(length),
                            width_m=float(rng.uniform(1.7, 1.9)),
                            height_m=float(rng.uniform(1.4, 1.6)),
                            axis=st.axis,
                            rgb=_jitter(rng, _pick(rng, _CARS), 8),
                        )
                    )
                s += length + rng.uniform(0.7, 3.0)
    # Street trees on both sidewalks.
    if st.trees:
        for sign in (1.0, -1.0):
            s = s0 + cross_sidewalks[0] + 4.0 + rng.uniform(0.0, 3.0)
            while s < s1 - cross_sidewalks[1] - 4.0:
                centre = st.to_uv(s, sign * (h + min(1.2, st.sidewalk_m / 2)))
                trees.append(_new_tree(rng, centre[0], centre[1], (2.0, 3.5), (6.0, 11.0)))
                s += rng.uniform(9.0, 14.0)
    return paint, cars, trees


def _new_building(rng: np.random.Generator, bid: int, rect: tuple, block_height_m: float) -> Building:
    """Random roof, height and façade for a building footprint (street frame rectangle)."""
    u0, u1, v0, v1 = rect
    top = float(np.clip(block_height_m + rng.normal(0.0, 4.0), 5.0, 25.0))
    short = min(u1 - u0, v1 - v0)
    if short <= 16.0 and rng.random() < 0.4:
        rise = float(np.clip(rng.uniform(0.3, 0.5) * short / 2, 1.5, 5.0))
        roof, eave, roof_rgb = "gable", max(top - rise, 3.5), _jitter(rng, _pick(rng, _GABLE_ROOFS), 12)
    else:
        roof, eave, roof_rgb = "flat", top, _jitter(rng, _pick(rng, _FLAT_ROOFS), 10)
    return Building(
        id=bid,
        u0=float(u0),
        u1=float(u1),
        v0=float(v0),
        v1=float(v1),
        height_m=top,
        eave_m=float(eave),
        roof=roof,
        roof_rgb=roof_rgb,
        facade_rgb=_jitter(rng, _pick(rng, _FACADES), 12),
        window_rgb=_jitter(rng, (52, 64, 80), 14),
        floor_m=float(rng.uniform(2.8, 3.6)),
        window_spacing_m=float(rng.uniform(2.0, 3.8)),
        window_w=float(rng.uniform(0.35, 0.6)),
        window_h=float(rng.uniform(0.4, 0.6)),
        shopfront=bool(rng.random() < 0.45),
    )


def _block_contents(
    rng: np.random.Generator, raster: _Raster, rect: tuple, buildings: list[Building], trees: list[Tree]
) -> None:
    """Fill one block (inside its sidewalks): a park, or lots with buildings and yards."""
    u0, u1, v0, v1 = rect
    if u1 - u0 < 6.0 or v1 - v0 < 6.0:
        return
    if rng.random() < 0.1:  # a park: grass, two crossing paths, scattered trees
        raster.fill([_rect(u0, u1, v0, v1)], kind=KIND_YARD, rgb=_jitter(rng, _GRASS, 8), amp=18)
        um, vm = rng.uniform(u0 + 5, u1 - 5), rng.uniform(v0 + 5, v1 - 5)
        raster.fill([_rect(u0, u1, vm - 1.2, vm + 1.2), _rect(um - 1.2, um + 1.2, v0, v1)], rgb=_PAVED, amp=6)
        for _ in range(int(rng.integers(6, 16))):
            tu, tv = rng.uniform(u0 + 3, u1 - 3), rng.uniform(v0 + 3, v1 - 3)
            if abs(tu - um) > 4 and abs(tv - vm) > 4:
                trees.append(_new_tree(rng, tu, tv, (2.5, 4.0), (7.0, 13.0)))
        return
    front = 0.0 if rng.random() < 0.5 else rng.uniform(1.0, 4.0)
    block_height = rng.uniform(8.0, 20.0)
    for lot in _split_lots(rng, rect):
        lu0, lu1, lv0, lv1 = lot
        edges = (abs(lu0 - u0) < 1e-6, abs(lu1 - u1) < 1e-6, abs(lv0 - v0) < 1e-6, abs(lv1 - v1) < 1e-6)
        yard = _GRASS if rng.random() < 0.5 else _PAVED
        raster.fill([_rect(*lot)], kind=KIND_YARD, rgb=_jitter(rng, yard, 8), amp=16 if yard == _GRASS else 8)
        if rng.random() > (0.9 if any(edges) else 0.5):
            if rng.random() < 0.6:
                trees.append(_new_tree(rng, (lu0 + lu1) / 2, (lv0 + lv1) / 2, (2.0, 4.0), (6.0, 12.0)))
            continue
        inset = [front if e else (0.0 if rng.random() < 0.4 else rng.uniform(1.0, 3.0)) for e in edges]
        b = (lu0 + inset[0], lu1 - inset[1], lv0 + inset[2], lv1 - inset[3])
        if b[1] - b[0] < 5.0 or b[3] - b[2] < 5.0:
            continue
        buildings.append(_new_building(rng, len(buildings), b, block_height))


def _paint_building(rng: np.random.Generator, raster: _Raster, b: Building) -> None:
    """Heights (flat or gable roof), kind, id and roof texture of one building; rooftop boxes on flat roofs."""
    if b.roof == "flat":
        rim = tuple(min(255, int(c * 1.18)) for c in b.roof_rgb)
        raster.fill(
            [_rect(b.u0, b.u1, b.v0, b.v1)], height=b.height_m, kind=KIND_BUILDING, rgb=rim, amp=6, bid=b.id
        )
        raster.fill([_rect(b.u0 + 0.35, b.u1 - 0.35, b.v0 + 0.35, b.v1 - 0.35)], rgb=b.roof_rgb, amp=10)
        for _ in range(int(rng.integers(0, 4))):
            w, d = rng.uniform(1.5, 4.0, size=2)
            if b.u1 - b.u0 > w + 2 and b.v1 - b.v0 > d + 2:
                bu, bv = rng.uniform(b.u0 + 1, b.u1 - 1 - w), rng.uniform(b.v0 + 1, b.v1 - 1 - d)
                top = b.height_m + rng.uniform(1.0, 2.5)
                raster.fill(
                    [_rect(bu, bu + w, bv, bv + d)],
                    height=top,
                    kind=KIND_ROOF_BOX,
                    rgb=(186, 186, 182),
                    amp=4,
                )
        return
    win = raster.window(b.u0, b.u1, b.v0, b.v1)
    if win is None:
        return
    sl, u, v = win
    rows, cols = np.nonzero((u >= b.u0) & (u < b.u1) & (v >= b.v0) & (v < b.v1))
    if rows.size == 0:
        return
    u, v = u[rows, cols], v[rows, cols]
    along_u = (b.u1 - b.u0) >= (b.v1 - b.v0)  # the ridge runs along the longer side
    across, lo, hi = (v, b.v0, b.v1) if along_u else (u, b.u0, b.u1)
    d = np.clip(np.abs(across - (lo + hi) / 2) / ((hi - lo) / 2), 0.0, 1.0)
    shade = np.ones(u.shape, np.float32)
    shade[np.mod((across - lo) / 0.33, 1.0) < 0.22] = 0.82  # rows of tiles
    shade[d < 0.04] = 0.7  # ridge
    ys, xs = rows + sl[0].start, cols + sl[1].start
    raster.height[ys, xs] = b.eave_m + (b.height_m - b.eave_m) * (1.0 - d)
    raster.kind[ys, xs] = KIND_BUILDING
    raster.bid[ys, xs] = b.id
    raster.albedo[ys, xs] = np.clip(shade[:, None] * np.array(b.roof_rgb, np.float32), 0, 255).astype(
        np.uint8
    )
    raster.amp[ys, xs] = 5


def _paint_tree(raster: _Raster, tree: Tree) -> None:
    """The canopy's upper half as a dome in the height field (what is seen from above); never over buildings."""
    r = tree.radius_m
    win = raster.window(tree.u - r, tree.u + r, tree.v - r, tree.v + r)
    if win is None:
        return
    sl, u, v = win
    d2 = ((u - tree.u) ** 2 + (v - tree.v) ** 2) / (r * r)
    dome = tree.canopy_centre_m + tree.canopy_half_m * np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
    kind = raster.kind[sl]
    mask = (d2 < 1.0) & (dome > raster.height[sl]) & (kind != KIND_BUILDING) & (kind != KIND_ROOF_BOX)
    rgb = np.array(tree.rgb, np.float32)
    shade = 0.85 + 0.25 * np.sqrt(np.clip(1.0 - d2, 0.0, 1.0))
    raster.height[sl][mask] = dome[mask]
    raster.kind[sl][mask] = KIND_TREE
    raster.albedo[sl][mask] = np.clip(rgb * shade[..., None], 0, 255).astype(np.uint8)[mask]
    raster.amp[sl][mask] = 30


def _paint_cars(raster: _Raster, cars: list[Car]) -> None:
    """Car boxes with a darker cabin and windscreens seen from above (polygons converted in one batch)."""
    if not cars:
        return
    body, cabin, glass = [], [], []
    for car in cars:
        hl, hw = car.length_m / 2, car.width_m / 2
        if car.axis == 0:  # along v
            body.append(_rect(car.u - hw, car.u + hw, car.v - hl, car.v + hl))
            cabin.append(_rect(car.u - hw + 0.15, car.u + hw - 0.15, car.v - hl * 0.45, car.v + hl * 0.35))
            glass.append(_rect(car.u - hw + 0.2, car.u + hw - 0.2, car.v + hl * 0.15, car.v + hl * 0.35))
        else:
            body.append(_rect(car.u - hl, car.u + hl, car.v - hw, car.v + hw))
            cabin.append(_rect(car.u - hl * 0.45, car.u + hl * 0.35, car.v - hw + 0.15, car.v + hw - 0.15))
            glass.append(_rect(car.u + hl * 0.15, car.u + hl * 0.35, car.v - hw + 0.2, car.v + hw - 0.2))
    body_arr = np.stack(body)
    raster.fill([body_arr], kind=KIND_CAR, amp=2, bid=-1)
    pts_body = np.round(raster.uv_to_px(_inset_quads(body_arr, raster.cell_m / 2)) * 16).astype(np.int32)
    pts_cabin = np.round(raster.uv_to_px(np.stack(cabin)) * 16).astype(np.int32)
    for car, b, c in zip(cars, pts_body, pts_cabin, strict=True):
        cv2.fillPoly(raster.height, [b], float(car.height_m), lineType=cv2.LINE_8, shift=4)
        cv2.fillPoly(raster.albedo, [b], tuple(float(x) for x in car.rgb), lineType=cv2.LINE_8, shift=4)
        cv2.fillPoly(
            raster.albedo, [c], tuple(float(x) * 0.88 for x in car.rgb), lineType=cv2.LINE_8, shift=4
        )
    raster.fill([np.stack(glass)], rgb=(38, 44, 54))


def _apply_texture_noise(rng: np.random.Generator, raster: _Raster) -> None:
    """Multiply the albedo by fine and blotchy noise scaled by each cell's material amplitude."""
    n = raster.n
    fine = rng.random((n, n), dtype=np.float32)
    fine -= np.float32(0.5)
    coarse_n = max(2, n // 12 + 2)
    coarse = cv2.resize(rng.standard_normal((coarse_n, coarse_n), dtype=np.float32), (n, n),
                        interpolation=cv2.INTER_LINEAR)  # fmt: skip
    noise = cv2.addWeighted(fine, 1.7, coarse, 0.6, 0.0)
    factor = cv2.multiply(noise, raster.amp.astype(np.float32), scale=0.01)
    factor = cv2.add(factor, 1.0)
    raster.albedo = cv2.multiply(raster.albedo, cv2.merge([factor, factor, factor]), dtype=cv2.CV_8U)


def _generate(
    rng: np.random.Generator, raster: _Raster
) -> tuple[list[Street], list[Building], list[Tree], list[Car], tuple]:
    """Lay out and rasterise a whole city into ``raster``.

    Also returns what lies under the tree canopies: (flat cell indices, heights, kinds, albedo).
    """
    half_extent = raster.size_m / 2 * math.sqrt(2.0) + 10.0
    streets_u = _layout_streets(rng, 0, half_extent)
    streets_v = _layout_streets(rng, 1, half_extent)
    ext = half_extent + 80.0
    _paint_streets(raster, streets_u + streets_v, ext)
    paint: list[np.ndarray] = []
    cars: list[Car] = []
    trees: list[Tree] = []
    for along, cross in ((streets_u, streets_v), (streets_v, streets_u)):
        for st in along:
            for a, b in zip(cross[:-1], cross[1:], strict=True):
                p, c, t = _segment_details(rng, st, a.centre + a.half_m, b.centre - b.half_m,
                                           (a.sidewalk_m, b.sidewalk_m))  # fmt: skip
                paint += p
                cars += c
                trees += t
    raster.fill(paint, rgb=_PAINT, amp=4)
    buildings: list[Building] = []
    for a, b in zip(streets_u[:-1], streets_u[1:], strict=True):
        for c, d in zip(streets_v[:-1], streets_v[1:], strict=True):
            rect = (a.centre + a.half_m + a.sidewalk_m, b.centre - b.half_m - b.sidewalk_m,
                    c.centre + c.half_m + c.sidewalk_m, d.centre - d.half_m - d.sidewalk_m)  # fmt: skip
            if raster.window(*rect) is not None:
                _block_contents(rng, raster, rect, buildings, trees)
    for bld in buildings:
        _paint_building(rng, raster, bld)
    _paint_cars(raster, cars)
    _apply_texture_noise(rng, raster)
    before = (raster.height.copy(), raster.kind.copy(), raster.albedo.copy())
    for tree in trees:
        _paint_tree(raster, tree)
    canopy = np.flatnonzero(raster.kind == KIND_TREE)
    leaves = 1.0 + 0.5 * (rng.random(canopy.size, dtype=np.float32) - 0.5)
    flat = raster.albedo.reshape(-1, 3)
    flat[canopy] = np.clip(flat[canopy] * leaves[:, None], 0, 255).astype(np.uint8)
    under = (canopy, before[0].ravel()[canopy], before[1].ravel()[canopy], before[2].reshape(-1, 3)[canopy])
    return streets_u + streets_v, buildings, trees, cars, under


def _sun_vector() -> np.ndarray:
    """Unit vector towards the sun in (grid east, grid north, up)."""
    a, e = math.radians(SUN_AZIMUTH_DEG), math.radians(SUN_ELEVATION_DEG)
    return np.array([math.sin(a) * math.cos(e), math.cos(a) * math.cos(e), math.sin(e)])


def _cast_shadows(height_m: np.ndarray, cell_m: float) -> np.ndarray:
    """Fraction in shadow (float32, 0 … 1) of every cell, computed on a ≈ 0.4 m grid and smoothed back up."""
    n = height_m.shape[0]
    f = max(1, int(round(0.4 / cell_m)))
    m = n // f
    coarse = height_m[: m * f, : m * f].reshape(m, f, m, f).max(axis=(1, 3))
    step = f * cell_m
    sun = _sun_vector()
    rise_per_m = math.tan(math.radians(SUN_ELEVATION_DEG))
    reach = int(math.ceil((float(coarse.max()) - float(coarse.min())) / rise_per_m / step)) + 1
    shadow = np.zeros((m, m), bool)
    horiz = math.hypot(sun[0], sun[1])
    for s in range(1, min(reach, m)):
        dx = int(round(s * sun[0] / horiz))  # towards the sun: +x is east
        dy = int(round(-s * sun[1] / horiz))  # +y (rows) is south
        if abs(dx) >= m or abs(dy) >= m:
            break
        dist = math.hypot(dx, dy) * step
        src = coarse[max(dy, 0) : m + min(dy, 0), max(dx, 0) : m + min(dx, 0)]
        dst = coarse[max(-dy, 0) : m + min(-dy, 0), max(-dx, 0) : m + min(-dx, 0)]
        view = shadow[max(-dy, 0) : m + min(-dy, 0), max(-dx, 0) : m + min(-dx, 0)]
        view |= src - dst > dist * rise_per_m
    out = np.zeros((n, n), np.float32)
    soft = cv2.GaussianBlur(shadow.astype(np.float32), (3, 3), 0.8)  # soften the coarse grid's stairs
    out[: m * f, : m * f] = cv2.resize(soft, (m * f, m * f), interpolation=cv2.INTER_LINEAR)
    return out


def _shade_top_down(height_m: np.ndarray, albedo: np.ndarray, cell_m: float) -> np.ndarray:
    """Top-down view: albedo × hill shading of the height field × cast shadows (uint8 RGB)."""
    dz_de = cv2.Sobel(height_m, cv2.CV_32F, 1, 0, ksize=3, scale=1.0 / (8.0 * cell_m))
    dz_dn = cv2.Sobel(height_m, cv2.CV_32F, 0, 1, ksize=3, scale=-1.0 / (8.0 * cell_m))  # rows run south
    np.clip(dz_de, -3.0, 3.0, out=dz_de)
    np.clip(dz_dn, -3.0, 3.0, out=dz_dn)
    sun = _sun_vector()
    shade = (sun[2] - dz_de * sun[0] - dz_dn * sun[1]) / (
        np.sqrt(1.0 + dz_de * dz_de + dz_dn * dz_dn) * sun[2]
    )
    shade = shade.astype(np.float32)
    shade *= 1.0 - 0.45 * _cast_shadows(height_m, cell_m)
    np.clip(shade, 0.3, 1.35, out=shade)
    return cv2.multiply(albedo, cv2.merge([shade, shade, shade]), dtype=cv2.CV_8U)


# ----------------------------------------------------------------------------------------------- the city
@dataclass
class RayHits:
    """Per-pixel result of :meth:`SyntheticCity.trace` (NaN where a ray hits nothing within range).

    ``horizontal_m``: horizontal ground distance to the hit; ``radial_m``: distance along the ray (metres);
    ``hit_xy_m``: the hit point in the local frame (H, W, 2); ``hit_z_m``: its height; ``wall``: the ray hit
    a vertical face of the height field; ``tree_id``: index into ``city.trees`` of a canopy hit (else −1);
    ``camera_z_m``: the camera's height above the datum.
    """

    rgb: np.ndarray
    horizontal_m: np.ndarray
    radial_m: np.ndarray
    hit_xy_m: np.ndarray
    hit_z_m: np.ndarray
    wall: np.ndarray
    tree_id: np.ndarray
    camera_z_m: float


class SyntheticCity:
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

    # ------------------------------------------------------------------------------- coordinates
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

    def aerial_to_local(self, xy_aerial_m, center_xy_m, up_heading_deg: float = 0.0) -> np.ndarray:
        """Aerial-frame metres (x down, y right; true ground metres) → local metres. (..., 2)."""
        from .ortho import aerial_to_local_en

        en = aerial_to_local_en(np.asarray(xy_aerial_m, np.float64), up_heading_deg)
        return np.asarray(center_xy_m, np.float64) + self.ground_en_to_local(en, center_xy_m)

    def local_to_aerial(self, xy_local_m, center_xy_m, up_heading_deg: float = 0.0) -> np.ndarray:
        """Inverse of :meth:`aerial_to_local`. (..., 2)."""
        from .ortho import local_en_to_aerial

        d = np.asarray(xy_local_m, np.float64) - np.asarray(center_xy_m, np.float64)
        return local_en_to_aerial(self.local_to_ground_en(d, center_xy_m), up_heading_deg)

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

    # ------------------------------------------------------------------------------ ray casting
    def _cell_index(self, east: np.ndarray, north: np.ndarray) -> np.ndarray:
        """Flat indices into the padded (n+2)² arrays of the cells holding local points (border outside)."""
        n = self.n
        col = np.clip(np.floor(east * (1.0 / self.cell_m)), -1, n).astype(np.int64) + 1
        row = np.clip(np.floor((self.size_m - north) * (1.0 / self.cell_m)), -1, n).astype(np.int64) + 1
        return row * (n + 2) + col

    def trace(
        self,
        position_xy_m: tuple[float, float],
        heading_deg: float,
        bearing_offsets_rad: np.ndarray,
        tan_elevation: np.ndarray,
        camera_height_m: float = 1.6,
        max_range_m: float = 80.0,
    ) -> RayHits:
        """Cast one ray per pixel from a camera at a local point, ``camera_height_m`` above the ground there.

        Column w looks along the true bearing ``heading_deg`` + ``bearing_offsets_rad[w]`` (clockwise); a ray
        rises ``tan_elevation`` (shape (H, 1) or (H, W)) metres per horizontal metre. Every column is a vertical
        plane, so the height field is sampled once per column every ≈ 0.75 cell out to ``max_range_m`` (ground
        metres), the first sample that rises above each ray is found with a running maximum and one sorted
        search, and the hit is refined by bisection to a few millimetres. Tree canopies (ellipsoids) are
        intersected analytically.
        """
        p0 = np.asarray(position_xy_m, np.float64)
        gamma, k = self.grid_factors(p0)
        offsets = np.asarray(bearing_offsets_rad, np.float64)
        n_cols = offsets.size
        tau = np.broadcast_to(np.asarray(tan_elevation, np.float64), (np.shape(tan_elevation)[0], n_cols))
        n_rows = tau.shape[0]
        z0 = float(self.ground_height(p0)) + camera_height_m
        bearing = math.radians(heading_deg - gamma) + offsets  # grid bearings of the columns
        de, dn = k * np.sin(bearing), k * np.cos(bearing)  # grid metres per ground metre
        step = 0.75 * self.cell_m / k
        n_steps = int(math.ceil(max_range_m / step))
        r = step * np.arange(1, n_steps + 1)
        idx = self._cell_index(p0[0] + de[:, None] * r[None, :], p0[1] + dn[:, None] * r[None, :])
        heights = self._height_pad.ravel()
        rise = np.maximum.accumulate((heights[idx] - z0) / r[None, :], axis=1)  # (W, K) non-decreasing
        offset_key = 4.0 * np.arange(n_cols)  # arctan ∈ (−π/2, π/2): columns stay apart and sorted
        keys = (np.arctan(rise) + offset_key[:, None]).ravel()
        cols = np.broadcast_to(np.arange(n_cols), (n_rows, n_cols))
        first = np.searchsorted(keys, (np.arctan(tau) + offset_key[None, :]).ravel()).reshape(n_rows, n_cols)
        first -= cols * n_steps

        hv, hc = np.nonzero(first < n_steps)
        t = tau[hv, hc]
        lo = first[hv, hc] * step
        hi = lo + step
        for _ in range(max(5, int(math.ceil(math.log2(step / 0.0015))))):
            mid = 0.5 * (lo + hi)
            above = z0 + mid * t > heights[self._cell_index(p0[0] + de[hc] * mid, p0[1] + dn[hc] * mid)]
            lo = np.where(above, mid, lo)
            hi = np.where(above, hi, mid)
        # The ray entered the higher cell through its side below the top: a wall. Otherwise it came down
        # onto a top surface, solved exactly (steep rays would magnify the bisection's horizontal error).
        top = heights[self._cell_index(p0[0] + de[hc] * hi, p0[1] + dn[hc] * hi)]
        is_wall = z0 + lo * t < top - 0.01
        r_hit = 0.5 * (lo + hi)
        down = ~is_wall & (t < -1e-9)
        r_hit[down] = np.clip((top[down] - z0) / t[down], lo[down], hi[down])
        horiz = np.full((n_rows, n_cols), np.inf)
        horiz[hv, hc] = r_hit
        inside_hi = np.full((n_rows, n_cols), np.nan)
        inside_hi[hv, hc] = hi
        wall = np.zeros((n_rows, n_cols), bool)
        wall[hv, hc] = is_wall

        tree_id = self._trace_trees(p0, z0, k, bearing, tau, horiz, max_range_m)
        found = np.isfinite(horiz)
        hit_xy = np.full((n_rows, n_cols, 2), np.nan)
        hit_xy[..., 0] = np.where(found, p0[0] + de[None, :] * horiz, np.nan)
        hit_xy[..., 1] = np.where(found, p0[1] + dn[None, :] * horiz, np.nan)
        hit_z = np.where(found, z0 + tau * horiz, np.nan)
        rgb = self._background(p0, z0, tau, de, dn)
        wall &= tree_id < 0
        fv, fc = np.nonzero(found & (tree_id < 0))
        if fv.size:
            hi = inside_hi[fv, fc]
            idx_in = self._cell_index(p0[0] + de[fc] * hi, p0[1] + dn[fc] * hi)
            rgb[fv, fc] = self._shade_hits(
                hit_xy[fv, fc], hit_z[fv, fc], idx_in, wall[fv, fc], de[fc], dn[fc]
            )
        tv, tc = np.nonzero(tree_id >= 0)
        if tv.size:
            rgb[tv, tc] = self._shade_trees(hit_xy[tv, tc], hit_z[tv, tc], tree_id[tv, tc], k)
        radial = np.where(found, horiz * np.sqrt(1.0 + tau * tau), np.nan)
        haze = (1.0 - np.exp(-np.nan_to_num(radial[found]) / 450.0))[:, None]
        rgb[found] = rgb[found] * (1.0 - haze) + _HAZE * haze
        return RayHits(
            rgb=np.clip(rgb + 0.5, 0, 255).astype(np.uint8),
            horizontal_m=np.where(found, horiz, np.nan).astype(np.float32),
            radial_m=radial.astype(np.float32),
            hit_xy_m=hit_xy,
            hit_z_m=hit_z,
            wall=wall,
            tree_id=tree_id,
            camera_z_m=z0,
        )

    def _trace_trees(
        self,
        p0: np.ndarray,
        z0: float,
        k: float,
        bearing: np.ndarray,
        tau: np.ndarray,
        horiz: np.ndarray,
        max_range_m: float,
    ) -> np.ndarray:
        """Intersect the rays with the canopy ellipsoids; shortens ``horiz`` in place, returns tree ids (−1)."""
        tree_id = np.full(horiz.shape, -1, np.int32)
        trees = self._trees
        if trees is None:
            return tree_id
        offset = (trees["xy"] - p0) / k  # ground metres (the rotation γ is already in ``bearing``)
        dist = np.hypot(offset[:, 0], offset[:, 1])
        radius = trees["radius"] / k
        for j in np.flatnonzero(dist - radius < max_range_m):
            delta = bearing - math.atan2(offset[j, 0], offset[j, 1])
            along, across = dist[j] * np.cos(delta), dist[j] * np.sin(delta)
            cols = np.flatnonzero((np.abs(across) < radius[j]) & (along > -radius[j]))
            if cols.size == 0:
                continue
            a2 = (
                radius[j] ** 2 - across[cols] ** 2
            )  # squared half-width of the plane's cut through the canopy
            c2 = trees["half"][j] ** 2 * a2 / radius[j] ** 2  # squared half-height of that cut
            dz = z0 - trees["centre_z"][j]
            t = tau[:, cols]
            qa = 1.0 / a2 + t * t / c2
            qb = 2.0 * (-along[cols] / a2 + t * dz / c2)
            qc = along[cols] ** 2 / a2 + dz * dz / c2 - 1.0
            disc = qb * qb - 4.0 * qa * qc
            s = (-qb - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * qa)
            closer = (disc >= 0.0) & (s > 0.0) & (s < np.minimum(horiz[:, cols], max_range_m))
            if closer.any():
                horiz[:, cols] = np.where(closer, s, horiz[:, cols])
                tree_id[:, cols] = np.where(closer, j, tree_id[:, cols])
        return tree_id

    def _shade_trees(
        self, hit_xy: np.ndarray, hit_z: np.ndarray, tree_id: np.ndarray, k: float
    ) -> np.ndarray:
        """Foliage colour (N, 3): the tree's colour, sun shading from the ellipsoid's normal, leafy noise."""
        trees = self._trees
        d = (hit_xy - trees["xy"][tree_id]) / k
        r2 = (trees["radius"][tree_id] / k) ** 2
        normal = np.stack(
            [d[:, 0] / r2, d[:, 1] / r2, (hit_z - trees["centre_z"][tree_id]) / trees["half"][tree_id] ** 2]
        )
        normal /= np.linalg.norm(normal, axis=0)
        light = np.clip(np.tensordot(_sun_vector(), normal, axes=1), 0.0, 1.0)
        q = np.floor(np.stack([hit_xy[:, 0], hit_xy[:, 1], hit_z]) / 0.12)
        leaves = np.mod(np.sin(q[0] * 12.9898 + q[1] * 78.233 + q[2] * 37.719) * 43758.5453, 1.0)
        shade = (0.42 + 0.5 * light) * (0.75 + 0.5 * leaves)
        return trees["rgb"][tree_id] * shade[:, None].astype(np.float32)

    def _background(
        self, p0: np.ndarray, z0: float, tau: np.ndarray, de: np.ndarray, dn: np.ndarray
    ) -> np.ndarray:
        """Colours of rays without a hit: sky above the horizon, hazy distant ground below it. (H, W, 3)."""
        elev = np.arctan(tau)
        w = np.clip(elev / (math.pi / 2), 0.0, 1.0)[..., None] ** 0.6
        rgb = _SKY_HORIZON * (1.0 - w) + _SKY_ZENITH * w
        below = tau < 0
        if below.any():
            rr, cc = np.nonzero(below)
            dist = z0 / -tau[rr, cc]
            ground = self._top_pad.reshape(-1, 3)[
                self._cell_index(p0[0] + de[cc] * dist, p0[1] + dn[cc] * dist)
            ]
            haze = (1.0 - np.exp(-dist / 450.0))[:, None]
            rgb[rr, cc] = ground * (1.0 - haze) + _HAZE * haze
        return rgb.astype(np.float32)

    def _shade_hits(
        self,
        hit_xy: np.ndarray,
        z_hit: np.ndarray,
        idx_in: np.ndarray,
        wall: np.ndarray,
        e_dir: np.ndarray,
        n_dir: np.ndarray,
    ) -> np.ndarray:
        """RGB (N, 3) float of height-field hits: the top-down image on top surfaces, materials on walls."""
        out = self._top_pad.reshape(-1, 3)[idx_in].astype(np.float32)
        if not wall.any():
            return out
        w = np.flatnonzero(wall)
        kind = self._kind_pad.ravel()[idx_in[w]]
        albedo = self._albedo_pad.reshape(-1, 3)[idx_in[w]].astype(np.float32)
        top = self._height_pad.ravel()[idx_in[w]]
        z = z_hit[w]
        sun = _sun_vector()
        horiz = np.hypot(e_dir[w], n_dir[w])
        facing = np.clip(
            -(e_dir[w] * sun[0] + n_dir[w] * sun[1]) / horiz, 0.0, 1.0
        )  # normal ≈ towards camera
        colour = albedo * (0.55 + 0.35 * facing)[:, None]
        is_car = kind == KIND_CAR
        colour[is_car & (z > 0.95) & (z < top - 0.08)] = (38, 44, 54)
        colour[is_car & (z < 0.35)] = (25, 25, 27)
        colour[kind == KIND_ROOF_BOX] = 175.0 * (0.6 + 0.35 * facing[kind == KIND_ROOF_BOX])[:, None]
        is_bld = np.flatnonzero(kind == KIND_BUILDING)
        if is_bld.size:
            bid = self._bid_pad.ravel()[idx_in[w[is_bld]]]
            ok = bid >= 0
            colour[is_bld[ok]] = self._facade_colours(hit_xy[w[is_bld[ok]]], z[is_bld[ok]], bid[ok])
        out[w] = colour
        return out

    def _facade_colours(self, hit_xy: np.ndarray, z: np.ndarray, bid: np.ndarray) -> np.ndarray:
        """Façade colour with windows of wall hits on buildings ``bid`` at local points and heights ``z``."""
        uv = self.local_to_street(hit_xy)
        rect = self._facades["rect"][bid]
        dist = np.abs(np.stack([uv[:, 0] - rect[:, 0], uv[:, 0] - rect[:, 1], uv[:, 1] - rect[:, 2],
                                uv[:, 1] - rect[:, 3]], axis=1))  # fmt: skip
        edge = np.argmin(dist, axis=1)  # 0: −u wall, 1: +u wall, 2: −v wall, 3: +v wall
        along = np.where(edge < 2, uv[:, 1] - rect[:, 2], uv[:, 0] - rect[:, 0])
        r = self._raster
        normal_u = np.array([-1.0, 1.0, 0.0, 0.0])[edge]
        normal_v = np.array([0.0, 0.0, -1.0, 1.0])[edge]
        normal_e = r.cos * normal_u - r.sin * normal_v
        normal_n = r.sin * normal_u + r.cos * normal_v
        sun = _sun_vector()
        shade = 0.62 + 0.38 * np.clip(normal_e * sun[0] + normal_n * sun[1], 0.0, 1.0)
        floor_m, spacing, win_w, win_h, eave, shop = self._facades["params"][bid].T
        fz = z / floor_m
        fs = along / spacing
        frac_z, frac_s = fz - np.floor(fz), fs - np.floor(fs)
        window = (np.abs(frac_z - 0.5) < win_h / 2) & (np.abs(frac_s - 0.5) < win_w / 2)
        window &= (fz >= 1.0) & (z < eave - 0.5)
        window |= (shop > 0) & (z > 0.45) & (z < 2.6) & (np.abs(frac_s - 0.5) < 0.42)
        colour = self._facades["facade"][bid] * shade[:, None]
        colour[(frac_z < 0.035) & (fz >= 1.0)] *= 0.88  # floor bands
        glass = self._facades["window"][bid] * (0.8 + 0.4 * frac_z)[:, None]
        colour[window] = glass[window]
        return colour

    # ------------------------------------------------------------------------------ cameras
    def trace_panorama(
        self,
        position_xy_m: tuple[float, float],
        heading_deg: float,
        size_hw: tuple[int, int] = (512, 1024),
        camera_height_m: float = 1.6,
        max_range_m: float = 80.0,
    ) -> RayHits:
        """Rays of an equirectangular panorama (:class:`~loc2.core.geometry.Equirectangular` layout): row 0
        zenith, last row nadir, centre column along ``heading_deg`` (true north), columns clockwise."""
        h, w = size_hw
        offsets = 2.0 * math.pi * (np.arange(w) + 0.5) / w - math.pi
        theta = math.pi * (np.arange(h) + 0.5) / h
        tau = (np.cos(theta) / np.sin(theta))[:, None]
        return self.trace(position_xy_m, heading_deg, offsets, tau, camera_height_m, max_range_m)

    def render_panorama(
        self,
        position_xy_m: tuple[float, float],
        heading_deg: float,
        size_hw: tuple[int, int] = (512, 1024),
        camera_height_m: float = 1.6,
        max_range_m: float = 80.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rgb (H, W, 3) uint8, radial depth (H, W) float32 metres, NaN for sky / beyond ``max_range_m``)."""
        hits = self.trace_panorama(position_xy_m, heading_deg, size_hw, camera_height_m, max_range_m)
        return hits.rgb, hits.radial_m

    def trace_pinhole(
        self,
        position_xy_m: tuple[float, float],
        heading_deg: float,
        camera: Pinhole,
        camera_height_m: float = 1.6,
        max_range_m: float = 80.0,
    ) -> RayHits:
        """Rays of a level pinhole camera looking along ``heading_deg`` (true north); x right, y down."""
        a = (np.arange(camera.width) + 0.5 - camera.cx) / camera.fx
        b = (np.arange(camera.height) + 0.5 - camera.cy) / camera.fy
        tau = -b[:, None] / np.sqrt(1.0 + a * a)[None, :]
        return self.trace(position_xy_m, heading_deg, np.arctan(a), tau, camera_height_m, max_range_m)

    def render_pinhole(
        self,
        position_xy_m: tuple[float, float],
        heading_deg: float,
        camera: Pinhole,
        camera_height_m: float = 1.6,
        max_range_m: float = 80.0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(rgb (H, W, 3) uint8, z-depth (H, W) float32 metres along the optical axis, NaN where no hit)."""
        hits = self.trace_pinhole(position_xy_m, heading_deg, camera, camera_height_m, max_range_m)
        a = (np.arange(camera.width) + 0.5 - camera.cx) / camera.fx
        z = hits.horizontal_m / np.sqrt(1.0 + a * a)[None, :].astype(np.float32)
        return hits.rgb, z.astype(np.float32)


# ----------------------------------------------------------------------------------------------- files
def write_depth_png(path: str | Path, depth_m: np.ndarray, kind: str) -> Path:
    """Write depth in a published format: ``radial`` → uint16 PNG millimetres (VIGOR), ``z`` → uint16 PNG
    value/256 = metres (KITTI). 0 = invalid (NaN, ≤ 0, or beyond the format's range). Returns the path."""
    from .errors import ExportError

    path = Path(path)
    if kind not in ("radial", "z"):
        raise ValueError(f"depth kind must be 'radial' or 'z', got {kind!r}")
    scale = 1000.0 if kind == "radial" else 256.0
    d = np.asarray(depth_m, np.float64) * scale
    valid = np.isfinite(d) & (d >= 0.5) & (d <= 65535.0)
    out = np.where(valid, np.rint(np.where(valid, d, 0.0)), 0).astype(np.uint16)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), out):
        raise ExportError(f"{path}: could not write the depth PNG")
    return path


def _exif_dms(value_deg: float):
    """Degrees → (deg, min, sec) EXIF rationals, seconds to 1/10000 (exact integer arithmetic)."""
    from PIL.TiffImagePlugin import IFDRational

    total = int(round(abs(value_deg) * 3600 * 10000))
    deg, rem = divmod(total, 3600 * 10000)
    minutes, sec = divmod(rem, 60 * 10000)
    return IFDRational(deg, 1), IFDRational(minutes, 1), IFDRational(sec, 10000)


def write_jpeg_with_exif(
    path: str | Path,
    rgb: np.ndarray,
    lon: float,
    lat: float,
    altitude_m: float,
    heading_deg: float,
    timestamp: datetime,
    focal_35mm: int | None = None,
    quality: int = 92,
    model: str = "SyntheticCity",
) -> Path:
    """Write an RGB image as JPEG with EXIF GPS position, altitude, true-north image direction, time and
    (pinhole) 35 mm-equivalent focal length, through Pillow's Exif API. Returns the path."""
    from PIL import ExifTags, Image
    from PIL.TiffImagePlugin import IFDRational

    path = Path(path)
    gps_tags, base = ExifTags.GPS, ExifTags.Base
    exif = Image.Exif()
    exif[base.Make] = "Loc2 synthetic"
    exif[base.Model] = model
    exif[base.Orientation] = 1
    exif[ExifTags.IFD.GPSInfo] = {
        gps_tags.GPSVersionID: b"\x02\x03\x00\x00",
        gps_tags.GPSLatitudeRef: "N" if lat >= 0 else "S",
        gps_tags.GPSLatitude: _exif_dms(lat),
        gps_tags.GPSLongitudeRef: "E" if lon >= 0 else "W",
        gps_tags.GPSLongitude: _exif_dms(lon),
        gps_tags.GPSAltitudeRef: 0 if altitude_m >= 0 else 1,
        gps_tags.GPSAltitude: IFDRational(int(round(abs(altitude_m) * 100)), 100),
        gps_tags.GPSImgDirectionRef: "T",
        gps_tags.GPSImgDirection: IFDRational(int(round((heading_deg % 360.0) * 100)) % 36000, 100),
        gps_tags.GPSMapDatum: "WGS-84",
    }
    sub = {base.DateTimeOriginal: timestamp.strftime("%Y:%m:%d %H:%M:%S")}
    if focal_35mm is not None:
        sub[base.FocalLengthIn35mmFilm] = int(focal_35mm)
    exif[ExifTags.IFD.Exif] = sub
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgb, np.uint8)).save(path, "JPEG", quality=quality, exif=exif)
    return path


def focal_35mm_for_hfov(width: int, height: int, hfov_deg: float) -> float:
    """35 mm-equivalent focal length (mm) of a horizontal field of view, with the diagonal convention of
    :meth:`loc2.core.photos.Photo.hfov_from_exif` (the image diagonal spans 43.27 mm)."""
    width_mm = math.hypot(36.0, 24.0) * width / math.hypot(width, height)
    return width_mm / 2 / math.tan(math.radians(hfov_deg) / 2)


def hfov_for_focal_35mm(width: int, height: int, focal_35mm: float) -> float:
    """Inverse of :func:`focal_35mm_for_hfov` (degrees)."""
    width_mm = math.hypot(36.0, 24.0) * width / math.hypot(width, height)
    return math.degrees(2 * math.atan(width_mm / 2 / focal_35mm))


TRUTH_COLUMNS = [
    "photo", "x", "y", "lon", "lat", "heading_deg", "prior_x", "prior_y", "prior_lon", "prior_lat",
    "prior_heading_deg", "camera", "hfov_deg", "crs", "depth", "camera_height_m", "width", "height",
]  # fmt: skip


def generate_dataset(
    out_dir: str | Path,
    seed: int,
    n_panoramas: int = 8,
    n_pinhole: int = 4,
    prior_sigma_m: float = 5.0,
    heading_sigma_deg: float = 10.0,
    pano_size_hw: tuple[int, int] = (512, 1024),
    ortho_mpp: float = 0.1,
    *,
    pinhole_size_hw: tuple[int, int] = (384, 1152),
    pinhole_hfov_deg: float = 90.0,
    size_m: float = 300.0,
    cell_m: float = 0.1,
    camera_height_m: float = 1.6,
    max_range_m: float = 80.0,
    ortho_compress: str = "deflate",
    city: SyntheticCity | None = None,
) -> Path:
    """Write a complete synthetic benchmark to ``out_dir`` and return ``out_dir``.

    Contents: ``ortho.tif`` (RGB GeoTIFF, ``ortho_mpp`` metres/pixel), ``photos/pano_NNN.jpg`` and
    ``photos/pinhole_NNN.jpg`` (EXIF GPS = prior), ``depth/<stem>.png`` (panorama: uint16 mm radial; pinhole:
    uint16 value/256 m z-depth; 0 invalid) and ``truth.csv`` (:data:`TRUTH_COLUMNS`; x, y in the CRS, headings
    in degrees from true north, ``photo``/``depth`` relative to ``out_dir``). Camera positions lie on streets
    or sidewalks ≥ 2 m from buildings and ≥ 20 m inside the city; headings are uniform. Priors = truth +
    N(0, ``prior_sigma_m``²) on each CRS axis and N(0, ``heading_sigma_deg``²) on the heading. The pinhole
    field of view is snapped to the nearest one whose 35 mm-equivalent focal length is a whole millimetre
    (EXIF stores an integer), so the EXIF-derived field of view equals ``hfov_deg`` in truth.csv.
    """
    out = Path(out_dir)
    ph, pw = pinhole_size_hw
    if n_pinhole and abs(pw / ph - 2.0) <= 0.04:
        raise ValueError(f"pinhole_size_hw {pinhole_size_hw} is 2:1, which readers take for a 360° panorama")
    city = city if city is not None else SyntheticCity(seed, size_m=size_m, cell_m=cell_m)
    (out / "photos").mkdir(parents=True, exist_ok=True)
    (out / "depth").mkdir(parents=True, exist_ok=True)
    city.write_orthophoto(out / "ortho.tif", ortho_mpp, compress=ortho_compress)
    rng = np.random.default_rng([int(seed), 0xDA7A])
    total = n_panoramas + n_pinhole
    positions = city.sample_positions(rng, total, margin_m=20.0, clearance_m=2.0)
    headings = rng.uniform(0.0, 360.0, size=total)
    prior_offsets = rng.normal(0.0, prior_sigma_m, size=(total, 2))
    heading_noise = rng.normal(0.0, heading_sigma_deg, size=total)
    f35 = max(1, int(round(focal_35mm_for_hfov(pw, ph, pinhole_hfov_deg))))
    pin_hfov = hfov_for_focal_35mm(pw, ph, f35)
    start = datetime(2024, 6, 21, 10, 0, 0)
    rows = []
    for i in range(total):
        pano = i < n_panoramas
        stem = f"pano_{i:03d}" if pano else f"pinhole_{i - n_panoramas:03d}"
        pos, heading = positions[i], float(headings[i])
        if pano:
            rgb, depth = city.render_panorama(pos, heading, pano_size_hw, camera_height_m, max_range_m)
            hfov, kind, focal = 360.0, "radial", None
        else:
            cam = Pinhole.from_fov(pw, ph, pin_hfov)
            rgb, depth = city.render_pinhole(pos, heading, cam, camera_height_m, max_range_m)
            hfov, kind, focal = pin_hfov, "z", f35
        xy = city.local_to_crs(pos)
        prior_xy = xy + prior_offsets[i]
        lon, lat = city.local_to_lonlat(pos)
        prior_lon, prior_lat = city.local_to_lonlat(city.crs_to_local(prior_xy))
        prior_heading = (heading + heading_noise[i]) % 360.0
        altitude = GROUND_ALTITUDE_M + float(city.ground_height(pos)) + camera_height_m
        photo = write_jpeg_with_exif(out / "photos" / f"{stem}.jpg", rgb, prior_lon, prior_lat, altitude,
                                     prior_heading, start + timedelta(seconds=10 * i), focal,
                                     model=f"SyntheticCity seed {city.seed}")  # fmt: skip
        depth_path = write_depth_png(out / "depth" / f"{stem}.png", depth, kind)
        rows.append({
            "photo": photo.relative_to(out).as_posix(), "x": f"{xy[0]:.4f}", "y": f"{xy[1]:.4f}",
            "lon": f"{lon:.9f}", "lat": f"{lat:.9f}", "heading_deg": f"{heading:.4f}",
            "prior_x": f"{prior_xy[0]:.4f}", "prior_y": f"{prior_xy[1]:.4f}", "prior_lon": f"{prior_lon:.9f}",
            "prior_lat": f"{prior_lat:.9f}", "prior_heading_deg": f"{prior_heading:.4f}",
            "camera": "panorama" if pano else "pinhole", "hfov_deg": f"{hfov:.4f}", "crs": city.crs_string,
            "depth": depth_path.relative_to(out).as_posix(), "camera_height_m": f"{camera_height_m:.3f}",
            "width": rgb.shape[1], "height": rgb.shape[0],
        })  # fmt: skip
    with open(out / "truth.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=TRUTH_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return out


# ----------------------------------------------------------------------------------------------- training
def sample_training_pair(
    city: SyntheticCity,
    rng: np.random.Generator,
    camera: str = "panorama",
    ground_size_hw: tuple[int, int] = (128, 256),
    aerial_size_px: int = 128,
    footprint_m: float = 72.0,
    max_offset_m: float | None = None,
    hfov_deg: float = 90.0,
    up_heading_deg: float | None = 0.0,
    camera_height_m: float = 1.6,
    max_range_m: float = 60.0,
) -> dict:
    """One ground/aerial training pair rendered in memory (no disk).

    The camera stands at a random free street/sidewalk position with a uniform random true heading; the
    aerial crop (``footprint_m`` true ground metres, ``aerial_size_px`` pixels, up = true-north heading
    ``up_heading_deg``; ``None`` draws it uniformly; KITTI-style crops pass prior heading − 90) is centred at
    a point up to ``max_offset_m`` (default footprint/4) from the camera, uniform over that disk.

    Returns a dict: ``ground_rgb`` (H, W, 3) uint8; ``depth_m`` (H, W) float32, NaN invalid; ``depth_kind``
    ('radial' | 'z'); ``camera`` (Equirectangular | Pinhole); ``aerial_rgb`` (S, S, 3) uint8; ``footprint_m``;
    ``xy_aerial_m`` (2,) the true camera position in the aerial frame (x down, y right, metres from the crop
    centre); ``heading_crop_deg`` the true heading clockwise from the crop's up; ``heading_deg`` (true north);
    ``up_heading_deg``; ``position_xy_m`` and ``aerial_center_xy_m`` (local frame); ``position_crs``.
    """
    if camera not in ("panorama", "pinhole"):
        raise ValueError(f"camera must be 'panorama' or 'pinhole', got {camera!r}")
    max_offset = footprint_m / 4 if max_offset_m is None else float(max_offset_m)
    margin = footprint_m * math.sqrt(2.0) / 2 + max_offset + 1.0
    position = city.sample_positions(rng, 1, margin_m=margin)[0]
    heading = float(rng.uniform(0.0, 360.0))
    up = float(rng.uniform(0.0, 360.0)) if up_heading_deg is None else float(up_heading_deg) % 360.0
    rho, phi = max_offset * math.sqrt(rng.random()), rng.uniform(0.0, 2 * math.pi)
    centre = position + city.ground_en_to_local(
        np.array([rho * math.sin(phi), rho * math.cos(phi)]), position
    )
    h, w = ground_size_hw
    if camera == "panorama":
        cam: Equirectangular | Pinhole = Equirectangular(width=w, height=h)
        rgb, depth = city.render_panorama(position, heading, (h, w), camera_height_m, max_range_m)
        kind = "radial"
    else:
        cam = Pinhole.from_fov(w, h, hfov_deg)
        rgb, depth = city.render_pinhole(position, heading, cam, camera_height_m, max_range_m)
        kind = "z"
    return {
        "ground_rgb": rgb,
        "depth_m": depth,
        "depth_kind": kind,
        "camera": cam,
        "aerial_rgb": city.render_aerial(centre, footprint_m, aerial_size_px, up),
        "footprint_m": float(footprint_m),
        "xy_aerial_m": city.local_to_aerial(position, centre, up),
        "heading_crop_deg": (heading - up) % 360.0,
        "heading_deg": heading,
        "up_heading_deg": up,
        "position_xy_m": position,
        "aerial_center_xy_m": centre,
        "position_crs": city.local_to_crs(position),
    }
