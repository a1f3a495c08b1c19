"""Readers for the public benchmarks (VIGOR, KITTI), forming test samples exactly as the published evaluation.

Every sample is in the frames of :mod:`loc2.core.geometry`: the aerial frame has its origin at the centre of
the square aerial image, ``x`` down the image and ``y`` to the right, in metres; the pose maps ground BEV
points onto aerial points, ``xy_aerial ≈ s·R·xy_ground + t``, so ``t`` is the camera position on the aerial
image and R carries the camera heading (``heading = −atan2(R10, R00)``, clockwise from the image's up).

VIGOR label conventions (``splits_new``)
----------------------------------------
* A label line has 13 whitespace-separated fields: the panorama file name, then four groups
  ``(tile name, Δ1, Δ2)``; Δ are pixels of the 640-px tile. Only the first group (the positive tile) is used.
* Camera position: ``t = (Δ1, −Δ2) · mpp`` metres, mpp = the city's metres per pixel of the 640-px tile.
  Resizing the tile to the model's size scales the offsets and the pixel size inversely, so ``t`` and the
  footprint (640 · mpp metres) do not change.
* Panoramas are north-aligned (north at the centre column) and tiles north up, so with known orientation R = I.
* Unknown orientation: a fraction ``r ~ U(−o/360, o/360)`` (o = 180) is drawn per sample (seeded here); the
  panorama and its depth are rolled by ``round(r · W)`` columns (``np.roll``: content moves to higher
  columns) and the true rotation is the 2-D rotation by ``2π·r`` ([[cos, −sin], [sin, cos]]).
* Same-area: all four cities, ``same_area_balanced_{train,test}.txt``. Cross-area: ``pano_label_balanced.txt``
  of NewYork and Seattle (train) or SanFrancisco and Chicago (test).

KITTI conventions (the arrangement of the published code)
---------------------------------------------------------
* Split lines ``{date}/{drive}/{frame}.png sx sy θ`` with the fixed perturbations in [−1, 1]
  (``test1_files.txt`` same-area, ``test2_files.txt`` cross-area).
* Intrinsics from ``P_rect_02`` (fx = value 0, cx = 2, fy = 5, cy = 6), x terms scaled by W/1242 and y terms
  by H/375 for the W × H model input (1232 × 364), whatever the raw image size (as the published code).
* Heading: oxts value 5, yaw in radians, counter-clockwise from east.
* The aerial image, as the published code builds it from the 512-px tile centred on the GPS: rotate by
  −heading (PIL's counter-clockwise convention, so the heading points east/right); translate so the camera
  (1.08 m ahead of the GPS, 0.26 m to its right) is at the centre; translate the content by
  (−sx, +sy) · 20 m (right, up) so the camera lies at (+sx, −sy) · 20 m from the centre; rotate by
  α = θ · range degrees (counter-clockwise); centre-crop 512 px; resize to 504 px. We compose the five steps
  into one affine warp (bilinear) instead of resampling after each.
* Hence ``t = 20 m · (−(sx sin α + sy cos α), sx cos α − sy sin α)`` and R is the rotation by −(90° − α)
  (the heading points 90° − α clockwise from up). Footprint = 512 · mpp, mpp = 156543.03392 · cos(49.015°)
  / 2¹⁸ / 2 ≈ 0.196 m.

Depth maps in the published formats: VIGOR ``{City}/unik3d_depth/{stem}.png`` (uint16 millimetres, radial;
kept at its own resolution and rolled with the panorama), KITTI
``depth_anythingv2_depth/{date}/{drive}/depth/{frame}.png`` (uint16, value / 256 = metres, z-depth; resized
with nearest neighbour to the ground image's size, as the image itself is resized anisotropically).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .depth import DepthMap, FileDepth
from .errors import DatasetError, DepthError
from .geometry import Camera, Equirectangular, Pinhole, heading_from_rotation, rotation_matrix
from .presets import KITTI_METRES_PER_PIXEL_512

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

KITTI_RAW_SIZE_WH = (1242, 375)  # the intrinsics are scaled from this size, as the published code does
KITTI_TILE_PX = 512
KITTI_CAMERA_GPS_SHIFT_M = (1.08, 0.26)  # camera ahead of / to the right of the GPS, metres
KITTI_SHIFT_RANGE_M = 20.0
KITTI_DEPTH_DIR = "depth_anythingv2_depth"
KITTI_SPLIT_FILES = {"same": "test1_files.txt", "cross": "test2_files.txt", "train": "train_files.txt"}


@dataclass
class Sample:
    """One benchmark test pair, ready for :meth:`loc2.core.localizer.Localizer.localize`.

    Attributes:
        index: position in the dataset.
        name: the ground image's path relative to the dataset root.
        ground_rgb: (H, W, 3) uint8 ground image at the model's input size (rolled for VIGOR unknown orientation).
        aerial_rgb: (S, S, 3) uint8 aerial image as the published evaluation forms it.
        aerial_footprint_m: metres across the aerial image.
        camera: the ground camera for ``ground_rgb`` (Equirectangular, or Pinhole with scaled intrinsics).
        depth: the published depth map (rolled with the panorama), or None when no depth folder is used.
        t_true_m: (2,) true camera position in the aerial frame (x down, y right), metres.
        R_true: (2, 2) true rotation of the pose.
        prior_heading_deg: the heading (clockwise from the image's up) the aerial image was prepared for; a
            failed localization falls back to this heading at the centre.
        meta: dataset-specific values (city, roll fraction, perturbations, ...).
    """

    index: int
    name: str
    ground_rgb: np.ndarray
    aerial_rgb: np.ndarray
    aerial_footprint_m: float
    camera: Camera
    depth: DepthMap | None
    t_true_m: np.ndarray
    R_true: np.ndarray
    prior_heading_deg: float = 0.0
    meta: dict = field(default_factory=dict)

    @property
    def yaw_true_deg(self) -> float:
        """atan2(R10, R00) of the true rotation, degrees (the paper's rotation angle)."""
        return math.degrees(math.atan2(self.R_true[1, 0], self.R_true[0, 0]))

    @property
    def heading_true_deg(self) -> float:
        """True heading, degrees clockwise from the aerial image's up direction, in [0, 360)."""
        return heading_from_rotation(self.R_true)


def collate_samples(batch: list[Sample]) -> list[Sample]:
    """``collate_fn`` for a torch DataLoader: keep the samples as a list (depth maps differ in size)."""
    return list(batch)


def parse_orientation(value: str | float | None, dataset: str) -> float:
    """Orientation noise range in degrees: ``known`` → 0, ``unknown`` → 180, or a number (KITTI: 10, 180).

    None gives the default: VIGOR unknown orientation (180), KITTI ±10°.
    """
    if value is None:
        return 180.0 if dataset == "vigor" else 10.0
    if isinstance(value, str):
        key = value.strip().lower()
        if key == "known":
            return 0.0
        if key == "unknown":
            return 180.0
        try:
            value = float(key)
        except ValueError:
            raise DatasetError(f"orientation must be known, unknown or degrees, got {value!r}") from None
    deg = float(value)
    if not 0 <= deg <= 180:
        raise DatasetError(f"orientation range must lie in [0, 180] degrees, got {deg}")
    return deg


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; DatasetError naming the file when missing or unreadable."""
    if not path.is_file():
        raise DatasetError(f"{path}: image not found")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError(f"{path}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def resize_rgb(image: np.ndarray, size_hw: tuple[int, int] | None) -> np.ndarray:
    """Resize to (H, W) (area filter when shrinking, bilinear when enlarging); None keeps the size."""
    if size_hw is None or image.shape[:2] == tuple(size_hw):
        return image
    h, w = size_hw
    shrink = h < image.shape[0] or w < image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def read_depth(path: Path, fmt: str) -> np.ndarray:
    """A published depth map in metres (H, W) float32, NaN where invalid; DatasetError naming the file."""
    try:
        return FileDepth(path, fmt).read()
    except DepthError as exc:
        raise DatasetError(str(exc)) from exc


def _read_lines(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise DatasetError(f"{path}: {what} not found")
    return [line for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------- VIGOR
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
        ground = resize_rgb(read_rgb(paths["panorama"]), self.ground_size_hw)
        r = float(self.rolls[index])
        ground = np.roll(ground, int(round(r * ground.shape[1])), axis=1)
        depth = None
        if "depth" in paths:
            d = read_depth(paths["depth"], "png_mm")
            depth = DepthMap(np.roll(d, int(round(r * d.shape[1])), axis=1), kind="radial", metric=True)
        tile = read_rgb(paths["tile"])
        if tile.shape[0] != tile.shape[1]:
            raise DatasetError(
                f"{paths['tile']}: the tile must be square, got {tile.shape[1]}×{tile.shape[0]}"
            )
        aerial = resize_rgb(tile, (self.aerial_size_px, self.aerial_size_px))
        return Sample(
            index=index,
            name=f"{e.city}/panorama/{e.panorama}",
            ground_rgb=np.ascontiguousarray(ground),
            aerial_rgb=aerial,
            aerial_footprint_m=VIGOR_TILE_PX * VIGOR_METRES_PER_PIXEL[e.city],
            camera=Equirectangular(ground.shape[1], ground.shape[0]),
            depth=depth,
            t_true_m=vigor_true_position_m(e.delta1_px, e.delta2_px, e.city),
            R_true=rotation_matrix(2 * math.pi * r),
            prior_heading_deg=0.0,
            meta={"city": e.city, "tile": e.tile, "roll_fraction": r},
        )


# --------------------------------------------------------------------------------------------- KITTI
@dataclass(frozen=True)
class KittiEntry:
    """One split line: ``date``, ``drive``, ``frame`` (file name) and the perturbations sx, sy, θ in [−1, 1]."""

    date: str
    drive: str
    frame: str
    sx: float
    sy: float
    theta: float

    @property
    def name(self) -> str:
        return f"{self.date}/{self.drive}/{self.frame}"


def parse_kitti_split_line(line: str, source: str) -> KittiEntry:
    """``{date}/{drive}/{frame}.png sx sy θ`` → KittiEntry (a line with the path only has zero perturbations)."""
    fields = line.split()
    parts = fields[0].split("/") if fields else []
    if len(parts) != 3 or len(fields) not in (1, 4):
        raise DatasetError(
            f"{source}: expected '{{date}}/{{drive}}/{{frame}}.png sx sy θ', got {line[:80]!r}"
        )
    try:
        sx, sy, theta = (float(v) for v in fields[1:4]) if len(fields) == 4 else (0.0, 0.0, 0.0)
    except ValueError:
        raise DatasetError(f"{source}: perturbations are not numbers in {line[:80]!r}") from None
    return KittiEntry(parts[0], parts[1], parts[2], sx, sy, theta)


def read_kitti_intrinsics(calib_path: Path) -> tuple[float, float, float, float]:
    """(fx, fy, cx, cy) of ``P_rect_02`` in pixels of the raw image; DatasetError naming the file."""
    for line in _read_lines(calib_path, "calibration file"):
        if line.startswith("P_rect_02:"):
            values = line.split(":", 1)[1].split()
            try:
                v = [float(x) for x in values]
                return v[0], v[5], v[2], v[6]
            except (ValueError, IndexError):
                raise DatasetError(f"{calib_path}: P_rect_02 needs 12 numbers, got {values!r}") from None
    raise DatasetError(f"{calib_path}: no P_rect_02 line")


def read_kitti_heading_rad(oxts_path: Path) -> float:
    """Vehicle yaw (radians, counter-clockwise from east): value 5 of the oxts line."""
    lines = _read_lines(oxts_path, "oxts file")
    try:
        return float(lines[0].split()[5])
    except (ValueError, IndexError):
        raise DatasetError(f"{oxts_path}: expected at least 6 numbers (value 5 = yaw)") from None


def kitti_camera(fx: float, fy: float, cx: float, cy: float, size_hw: tuple[int, int]) -> Pinhole:
    """Intrinsics scaled from the 1242 × 375 raw size to ``size_hw`` (x by W/1242, y by H/375)."""
    h, w = size_hw
    sx, sy = w / KITTI_RAW_SIZE_WH[0], h / KITTI_RAW_SIZE_WH[1]
    return Pinhole(fx * sx, fy * sy, cx * sx, cy * sy, w, h)


def _affine(matrix2x2: np.ndarray, offset: np.ndarray) -> np.ndarray:
    m = np.eye(3)
    m[:2, :2] = matrix2x2
    m[:2, 2] = offset
    return m


def _ccw_about(angle_deg: float, centre: float) -> np.ndarray:
    """Counter-clockwise (as seen on screen) rotation of the content about (centre, centre), pixel (col, row)."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    c = np.array([centre, centre])
    return _affine(rot, c - rot @ c)


def kitti_aerial_transform(
    heading_rad: float,
    sx: float,
    sy: float,
    rotation_deg: float,
    tile_px: int = KITTI_TILE_PX,
    out_px: int = 504,
    metres_per_pixel: float = KITTI_METRES_PER_PIXEL_512,
    shift_range_m: float = KITTI_SHIFT_RANGE_M,
) -> np.ndarray:
    """3 × 3 map from tile pixels to output pixels (col, row; pixel centres at integers) of the published steps.

    Content moves: rotate by −heading (counter-clockwise on screen), move by −(1.08, 0.26) m / mpp, move by
    (sx, −sy) · shift_range / mpp, rotate by ``rotation_deg`` counter-clockwise, centre-crop 512, resize.
    """
    c = (tile_px - 1) / 2.0
    step_heading = _ccw_about(-math.degrees(heading_rad), c)
    gps = np.array(KITTI_CAMERA_GPS_SHIFT_M) / metres_per_pixel
    step_camera = _affine(np.eye(2), -gps)
    shift_px = shift_range_m / metres_per_pixel
    step_shift = _affine(np.eye(2), np.array([sx * shift_px, -sy * shift_px]))
    step_rotate = _ccw_about(rotation_deg, c)
    crop = (tile_px - KITTI_TILE_PX) / 2.0
    step_crop = _affine(np.eye(2), np.array([-crop, -crop]))
    k = out_px / KITTI_TILE_PX
    step_resize = _affine(np.eye(2) * k, np.full(2, 0.5 * k - 0.5))
    return step_resize @ step_crop @ step_rotate @ step_shift @ step_camera @ step_heading


def kitti_true_pose(
    sx: float, sy: float, rotation_deg: float, shift_range_m: float = KITTI_SHIFT_RANGE_M
) -> tuple[np.ndarray, np.ndarray]:
    """(t (2,) metres in the aerial frame, R (2, 2)) for the perturbations of one test line."""
    a = math.radians(rotation_deg)
    t = shift_range_m * np.array(
        [-(sx * math.sin(a) + sy * math.cos(a)), sx * math.cos(a) - sy * math.sin(a)]
    )
    return t, rotation_matrix(-math.radians(90.0 - rotation_deg))


class KittiDataset:
    """KITTI in the published arrangement (raw_data, satmap, split files); a torch map-style dataset.

    Args:
        root: dataset root holding ``raw_data``, ``satmap``, the depth folder and the split files.
        split: ``same`` (test1), ``cross`` (test2) or ``train``.
        orientation: range of the rotation noise in degrees (10 or 180; ``known`` = 0, ``unknown`` = 180).
        split_file: a split file to use instead of ``root/<test1|test2|train>_files.txt``.
        ground_size_hw: model input size of the ground image (intrinsics are scaled to it).
        aerial_size_px: side of the aerial image (the 512-px crop resized).
        depth_dir: depth folder under the root; None gives samples without depth.
        limit: keep only the first ``limit`` samples.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "same",
        orientation: str | float | None = 10.0,
        *,
        split_file: str | Path | None = None,
        ground_size_hw: tuple[int, int] = (364, 1232),
        aerial_size_px: int = 504,
        depth_dir: str | None = KITTI_DEPTH_DIR,
        limit: int | None = None,
        shift_range_m: float = KITTI_SHIFT_RANGE_M,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: KITTI root folder not found")
        if split_file is None:
            if split not in KITTI_SPLIT_FILES:
                raise DatasetError(f"KITTI split must be 'same', 'cross' or 'train', got {split!r}")
            split_file = self.root / KITTI_SPLIT_FILES[split]
        self.split = split
        self.split_file = Path(split_file)
        self.orientation_deg = parse_orientation(orientation, "kitti")
        self.ground_size_hw = ground_size_hw
        self.aerial_size_px = aerial_size_px
        self.depth_dir = depth_dir
        self.shift_range_m = shift_range_m
        lines = _read_lines(self.split_file, "split file")
        self.entries = [parse_kitti_split_line(line, str(self.split_file)) for line in lines]
        if limit is not None:
            self.entries = self.entries[:limit]

    def __len__(self) -> int:
        return len(self.entries)

    def paths(self, index: int) -> dict[str, Path]:
        """The image, calibration, oxts, satellite and depth files of sample ``index``."""
        e = self.entries[index]
        drive = self.root / "raw_data" / e.date / e.drive
        out = {
            "image": drive / "image_02" / "data" / e.frame,
            "calib": self.root / "raw_data" / e.date / "calib_cam_to_cam.txt",
            "oxts": drive / "oxts" / "data" / f"{Path(e.frame).stem}.txt",
            "satmap": self.root / "satmap" / e.date / e.drive / e.frame,
        }
        if self.depth_dir is not None:
            out["depth"] = self.root / self.depth_dir / e.date / e.drive / "depth" / e.frame
        return out

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(index)
        e = self.entries[index]
        paths = self.paths(index)
        ground = resize_rgb(read_rgb(paths["image"]), self.ground_size_hw)
        camera = kitti_camera(*read_kitti_intrinsics(paths["calib"]), ground.shape[:2])
        heading = read_kitti_heading_rad(paths["oxts"])
        tile = read_rgb(paths["satmap"])
        if tile.shape[0] != tile.shape[1] or tile.shape[0] < KITTI_TILE_PX:
            raise DatasetError(
                f"{paths['satmap']}: expected a square tile of at least 512 px, got {tile.shape[:2]}"
            )
        rotation_deg = e.theta * self.orientation_deg
        m = kitti_aerial_transform(
            heading,
            e.sx,
            e.sy,
            rotation_deg,
            tile.shape[0],
            self.aerial_size_px,
            shift_range_m=self.shift_range_m,
        )
        size = self.aerial_size_px
        aerial = cv2.warpAffine(
            tile, m[:2], (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        depth = None
        if "depth" in paths:
            d = read_depth(paths["depth"], "png_256")
            if (
                d.shape != ground.shape[:2]
            ):  # resized with the image (375 × 1242 → 364 × 1232 changes the aspect)
                d = cv2.resize(d, ground.shape[1::-1], interpolation=cv2.INTER_NEAREST)
            depth = DepthMap(d, kind="z", metric=True)
        t, R = kitti_true_pose(e.sx, e.sy, rotation_deg, self.shift_range_m)
        return Sample(
            index=index,
            name=e.name,
            ground_rgb=ground,
            aerial_rgb=aerial,
            aerial_footprint_m=KITTI_TILE_PX * KITTI_METRES_PER_PIXEL_512,
            camera=camera,
            depth=depth,
            t_true_m=t,
            R_true=R,
            prior_heading_deg=90.0,
            meta={
                "heading_rad": heading,
                "sx": e.sx,
                "sy": e.sy,
                "theta": e.theta,
                "rotation_deg": rotation_deg,
            },
        )


def open_dataset(kind: str, root: str | Path, split: str, orientation: str | float | None = None, **kwargs):
    """``vigor`` or ``kitti`` dataset by name (keyword arguments go to the reader)."""
    if kind == "vigor":
        return VigorDataset(root, split, orientation, **kwargs)
    if kind == "kitti":
        return KittiDataset(root, split, orientation, **kwargs)
    raise DatasetError(f"unknown dataset {kind!r}; use vigor or kitti")
