"""VIGOR test (or train) positives with the ``splits_new`` labels, as the published evaluation forms them.

Label conventions (``splits_new``):

* A label line has 13 whitespace-separated fields: the panorama file name, then four groups
  ``(tile name, Δ1, Δ2)``; Δ are pixels of the 640-px tile. Only the first group (the positive tile) is used.
* Camera position: ``t = (Δ1, −Δ2) · mpp`` metres, mpp = the city's metres per pixel of the 640-px tile.
  Resizing the tile to the model's size scales the offsets and the pixel size inversely, so ``t`` and the
  footprint (640 · mpp metres) do not change.
* Panoramas are north-aligned (north at the centre column) and tiles north up, so with known orientation R = I.
* Unknown orientation: a fraction ``r ~ U(−o/360, o/360)`` (o = 180) is drawn per sample (seeded here); the
  panorama and its depth, both at the model's input size, are rolled by ``round(r · W)`` columns of that
  size (``np.roll``: content moves to higher columns) and the true rotation is the 2-D rotation by ``2π·r``
  ([[cos, −sin], [sin, cos]]).
* Same-area: all four cities, ``same_area_balanced_{train,test}.txt``. Cross-area: ``pano_label_balanced.txt``
  of NewYork and Seattle (train) or SanFrancisco and Chicago (test).

Images as the release prepares them (method §10): the panorama and the tile read with Pillow and resized with
Pillow's bilinear filter (``resize_filter``) to 714 × 1428 and 630 px; the depth map
``{City}/unik3d_depth/{stem}.png`` (uint16 millimetres, radial) resized to the panorama's input size by
nearest neighbour (``inputs.depth.nearest_resize``, as the release's ``F.interpolate``); then both rolled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..geometry.cameras import Equirectangular
from ..geometry.pose import Similarity2D, rotation_matrix
from ..inputs.depth import DepthMap, nearest_resize
from ..inputs.images import resize_rgb
from .datasets import Sample, _read_lines, parse_orientation, read_depth, read_rgb

VIGOR_CITIES = ("NewYork", "Seattle", "SanFrancisco", "Chicago")
VIGOR_METRES_PER_PIXEL = {
    "NewYork": 0.113248,
    "Seattle": 0.100817,
    "SanFrancisco": 0.118141,
    "Chicago": 0.111262,
}
VIGOR_TILE_PX = 640
VIGOR_LABELS_DIR = "splits_new"
VIGOR_DEPTH_DIR = "unik3d_depth"
VIGOR_CROSS_CITIES = {"train": ("NewYork", "Seattle"), "test": ("SanFrancisco", "Chicago")}


@dataclass(frozen=True)
class VigorEntry:
    """One label line's positive: panorama file, tile file, offsets Δ1, Δ2 (pixels of the 640-px tile)."""

    city: str
    panorama: str
    tile: str
    delta1_px: float
    delta2_px: float


def parse_vigor_label_line(line: str, source: str, city: str) -> VigorEntry:
    """A ``splits_new`` label line → its positive entry; DatasetError naming the file otherwise."""
    fields = line.split()
    if len(fields) != 13:
        raise DatasetError(f"{source}: a label line needs 13 fields, got {len(fields)}: {line[:80]!r}")
    try:
        d1, d2 = float(fields[2]), float(fields[3])
    except ValueError:
        raise DatasetError(f"{source}: offsets are not numbers in {line[:80]!r}") from None
    return VigorEntry(city, fields[0], fields[1], d1, d2)


def vigor_true_position_m(delta1_px: float, delta2_px: float, city: str) -> np.ndarray:
    """Camera position in the aerial frame: t = (Δ1, −Δ2) × the city's metres per pixel (640-px tile)."""
    mpp = VIGOR_METRES_PER_PIXEL[city]
    return np.array([delta1_px * mpp, -delta2_px * mpp])


def roll_panorama(
    ground_rgb: np.ndarray, depth_m: np.ndarray | None, fraction: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """The panorama (H, W, 3) and its depth (H, W) or None, both at the model's input size, rolled by
    round(fraction · W) columns (content to higher columns): a yaw of 2π · fraction (method §10)."""
    shift = int(round(fraction * ground_rgb.shape[1]))
    rolled = None if depth_m is None else np.roll(depth_m, shift, axis=1)
    return np.roll(ground_rgb, shift, axis=1), rolled


class VigorDataset:
    """VIGOR test (or train) positives with the ``splits_new`` labels; a torch map-style dataset.

    Args:
        root: dataset root holding the city folders and ``splits_new``.
        split: ``same`` (same-area) or ``cross`` (cross-area).
        orientation: ``known``, ``unknown`` or the roll range o in degrees (r ~ U(−o/360, o/360)).
        train: read the training split instead of the test split.
        seed: seeds the per-sample roll (the same for a given seed, whatever ``limit`` or worker order).
        ground_size_hw: size the panorama is resized to (the model's input); None keeps the file's size.
        aerial_size_px: side the 640-px tile is resized to.
        resize_filter: how the panorama and the tile are resized (``inputs.images.RESIZE_FILTERS``; the
            release's Pillow bilinear by default).
        depth_dir: folder of depth maps inside each city folder; None gives samples without depth.
        limit: keep only the first ``limit`` samples.
        cities: restrict to these cities (default: those of the split).
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "same",
        orientation: str | float | None = "known",
        *,
        train: bool = False,
        seed: int = 0,
        ground_size_hw: tuple[int, int] | None = (714, 1428),
        aerial_size_px: int = 630,
        resize_filter: str = "pillow_bilinear",
        depth_dir: str | None = VIGOR_DEPTH_DIR,
        limit: int | None = None,
        cities: tuple[str, ...] | None = None,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: VIGOR root folder not found")
        if split not in ("same", "cross"):
            raise DatasetError(f"VIGOR split must be 'same' or 'cross', got {split!r}")
        self.split = split
        self.train = train
        self.orientation_deg = parse_orientation(orientation, "vigor")
        self.seed = seed
        self.ground_size_hw = ground_size_hw
        self.aerial_size_px = aerial_size_px
        self.resize_filter = resize_filter
        self.depth_dir = depth_dir
        if cities is None:
            cities = VIGOR_CITIES if split == "same" else VIGOR_CROSS_CITIES["train" if train else "test"]
        self.cities = tuple(cities)
        self.entries = self._read_entries()
        half = self.orientation_deg / 360.0
        rng = np.random.default_rng(seed)
        # One roll fraction per label line, drawn for the whole split so a limit does not change them.
        self.rolls = rng.uniform(-half, half, len(self.entries)) if half > 0 else np.zeros(len(self.entries))
        if limit is not None:
            self.entries = self.entries[:limit]
            self.rolls = self.rolls[:limit]

    def _label_file(self, city: str) -> Path:
        folder = self.root / VIGOR_LABELS_DIR / city
        if self.split == "same":
            return folder / ("same_area_balanced_train.txt" if self.train else "same_area_balanced_test.txt")
        return folder / "pano_label_balanced.txt"

    def _read_entries(self) -> list[VigorEntry]:
        entries: list[VigorEntry] = []
        for city in self.cities:
            if city not in VIGOR_METRES_PER_PIXEL:
                raise DatasetError(f"unknown VIGOR city {city!r}; known: {', '.join(VIGOR_CITIES)}")
            sat_list = self.root / VIGOR_LABELS_DIR / city / "satellite_list.txt"
            tiles = {line.strip() for line in _read_lines(sat_list, "satellite list")}
            label_file = self._label_file(city)
            for line in _read_lines(label_file, "label file"):
                entry = parse_vigor_label_line(line, str(label_file), city)
                if entry.tile not in tiles:
                    raise DatasetError(f"{label_file}: tile {entry.tile} is not listed in {sat_list}")
                entries.append(entry)
        return entries

    def __len__(self) -> int:
        return len(self.entries)

    def paths(self, index: int) -> dict[str, Path]:
        """The panorama, tile and depth files of sample ``index``."""
        e = self.entries[index]
        city = self.root / e.city
        out = {"panorama": city / "panorama" / e.panorama, "tile": city / "satellite" / e.tile}
        if self.depth_dir is not None:
            out["depth"] = city / self.depth_dir / f"{Path(e.panorama).stem}.png"
        return out

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(index)
        e = self.entries[index]
        paths = self.paths(index)
        ground = resize_rgb(read_rgb(paths["panorama"]), self.ground_size_hw, self.resize_filter)
        depth_m = None
        if "depth" in paths:
            depth_m = read_depth(paths["depth"], "png_mm")
            if depth_m.shape != ground.shape[:2]:
                depth_m = nearest_resize(depth_m, ground.shape[:2])
        r = float(self.rolls[index])
        ground, depth_m = roll_panorama(ground, depth_m, r)
        depth = None if depth_m is None else DepthMap(depth_m, kind="radial", metric=True)
        tile = read_rgb(paths["tile"])
        if tile.shape[0] != tile.shape[1]:
            raise DatasetError(
                f"{paths['tile']}: the tile must be square, got {tile.shape[1]}×{tile.shape[0]}"
            )
        aerial = resize_rgb(tile, (self.aerial_size_px, self.aerial_size_px), self.resize_filter)
        return Sample(
            index=index,
            name=f"{e.city}/panorama/{e.panorama}",
            ground_rgb=np.ascontiguousarray(ground),
            aerial_rgb=aerial,
            aerial_footprint_m=VIGOR_TILE_PX * VIGOR_METRES_PER_PIXEL[e.city],
            camera=Equirectangular(ground.shape[1], ground.shape[0]),
            depth=depth,
            pose_true=Similarity2D(
                rotation_matrix(2 * math.pi * r), vigor_true_position_m(e.delta1_px, e.delta2_px, e.city)
            ),
            prior_heading_aerial_deg=0.0,
            meta={"city": e.city, "tile": e.tile, "roll_fraction": r},
        )
