"""Painting a synthetic city into its cell arrays (height, material, building id, albedo) and the shaded
top-down image the orthophoto shows (sun, hill shading and cast shadows)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from .layout import (
    _ASPHALT,
    _GRASS,
    _PAINT,
    _PAVED,
    _SIDEWALK,
    KIND_BUILDING,
    KIND_CAR,
    KIND_ROAD,
    KIND_ROOF_BOX,
    KIND_SIDEWALK,
    KIND_TREE,
    KIND_YARD,
    Building,
    Car,
    Street,
    Tree,
    _jitter,
    _layout_streets,
    _new_building,
    _new_tree,
    _rect,
    _segment_details,
    _split_lots,
    _street_rect,
)

SIDEWALK_HEIGHT_M = 0.15
SUN_AZIMUTH_DEG = 135.0  # grid bearing of the sun (south-east)
SUN_ELEVATION_DEG = 50.0


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
