"""What a synthetic city is made of and where it stands: materials, streets, lots, buildings, trees and cars,
all in the street frame (metres; the street grid rotated about the city centre)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
