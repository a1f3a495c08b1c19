"""KITTI in the published arrangement (raw_data, satmap, split files), as the published evaluation forms it.

Conventions (the arrangement of the published code):

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

Depth maps: ``depth_anythingv2_depth/{date}/{drive}/depth/{frame}.png`` (uint16, value / 256 = metres,
z-depth; resized with nearest neighbour to the ground image's size, as the image itself is resized
anisotropically).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DatasetError
from ..geometry.cameras import Pinhole
from ..geometry.pose import Similarity2D, rotation_matrix
from ..inputs.depth import DepthMap
from ..types import KITTI_METRES_PER_PIXEL_512
from .datasets import Sample, _read_lines, parse_orientation, read_depth, read_rgb, resize_rgb

KITTI_RAW_SIZE_WH = (1242, 375)  # the intrinsics are scaled from this size, as the published code does
KITTI_TILE_PX = 512
KITTI_CAMERA_GPS_SHIFT_M = (1.08, 0.26)  # camera ahead of / to the right of the GPS, metres
KITTI_SHIFT_RANGE_M = 20.0
KITTI_DEPTH_DIR = "depth_anythingv2_depth"
KITTI_SPLIT_FILES = {"same": "test1_files.txt", "cross": "test2_files.txt", "train": "train_files.txt"}


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
) -> Similarity2D:
    """The true pose (``t`` metres in the aerial frame) for the perturbations of one test line."""
    a = math.radians(rotation_deg)
    t = shift_range_m * np.array(
        [-(sx * math.sin(a) + sy * math.cos(a)), sx * math.cos(a) - sy * math.sin(a)]
    )
    return Similarity2D(rotation_matrix(-math.radians(90.0 - rotation_deg)), t)


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
        pose_true = kitti_true_pose(e.sx, e.sy, rotation_deg, self.shift_range_m)
        return Sample(
            index=index,
            name=e.name,
            ground_rgb=ground,
            aerial_rgb=aerial,
            aerial_footprint_m=KITTI_TILE_PX * KITTI_METRES_PER_PIXEL_512,
            camera=camera,
            depth=depth,
            pose_true=pose_true,
            prior_heading_aerial_deg=90.0,
            meta={
                "heading_rad": heading,
                "sx": e.sx,
                "sy": e.sy,
                "theta": e.theta,
                "rotation_deg": rotation_deg,
            },
        )
