"""KITTI in the published arrangement (raw_data, satmap, split files), as the published evaluation forms it.

Conventions (the arrangement of the published code):

* Split lines ``{date}/{drive}/{frame}.png sx sy θ`` with the fixed perturbations in [−1, 1]
  (``test1_files.txt`` same-area, ``test2_files.txt`` cross-area).
* Intrinsics from ``P_rect_02`` (fx = value 0, cx = 2, fy = 5, cy = 6), x terms scaled by W/1242 and y terms
  by H/375 for the W × H model input (1232 × 364), whatever the raw image size (as the published code).
* Heading: oxts value 5, yaw in radians, counter-clockwise from east.
* The aerial image, as the release builds it from the 512-px tile centred on the GPS (method §10), step by
  step on Pillow images (:func:`kitti_aerial_steps`): rotate by −heading (Pillow's counter-clockwise
  convention and default nearest filter, so the heading points east/right); translate (affine, bilinear) so
  the camera (1.08 m ahead of the GPS, 0.26 m to its right) is at the centre; translate (affine, bilinear)
  the content by (−sx, +sy) · 20 m (right, up) so the camera lies at (+sx, −sy) · 20 m from the centre;
  rotate by α = θ · range degrees (counter-clockwise, nearest); centre-crop 512 px; resize to 504 px
  (Pillow bilinear).
* Hence ``t = 20 m · (−(sx sin α + sy cos α), sx cos α − sy sin α)`` and R is the rotation by −(90° − α)
  (the heading points 90° − α clockwise from up). mpp = 156543.03392 · cos(49.015°) / 2¹⁸ / 2 ≈ 0.196 m.
* The release lays its 41 × 41 aerial points over ``KITTI_GRID_SIZE`` = 100.26 units (not the image's
  512 · mpp = 100.27 m) and turns a solved position into pixels by ``t / 100.26 · 504``, then metres by
  the pixel size: samples carry that factor (``Sample.aerial_unit_m``).

The ground image is read with Pillow and resized to 364 × 1232 (Pillow bilinear); the depth maps
``depth_anythingv2_depth/{date}/{drive}/depth/{frame}.png`` (uint16, value / 256 = metres, z-depth) are
resized to the same size by nearest neighbour (``inputs.depth.nearest_resize``, as the release's
``F.interpolate``), as the image itself is resized anisotropically.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DatasetError
from ..geometry.cameras import Pinhole
from ..geometry.pose import Similarity2D, rotation_matrix
from ..inputs.depth import DepthMap, nearest_resize
from ..inputs.images import resize_rgb
from ..types import KITTI_METRES_PER_PIXEL_512
from .datasets import Sample, _read_lines, open_rgb, parse_orientation, read_depth, read_rgb

KITTI_RAW_SIZE_WH = (1242, 375)  # the intrinsics are scaled from this size, as the published code does
KITTI_TILE_PX = 512
KITTI_CAMERA_GPS_SHIFT_M = (1.08, 0.26)  # camera ahead of / to the right of the GPS, metres
KITTI_SHIFT_RANGE_M = 20.0
KITTI_DEPTH_DIR = "depth_anythingv2_depth"
KITTI_GRID_SIZE = 100.26  # the release's ``grid_size_h``: the span of its aerial points (see above)
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


# One step of the KITTI aerial image: (what it does, the Pillow operation).
AerialStep = tuple[str, Callable[[Image.Image], Image.Image]]


def kitti_aerial_steps(
    heading_rad: float,
    sx: float,
    sy: float,
    rotation_deg: float,
    metres_per_pixel: float = KITTI_METRES_PER_PIXEL_512,
    shift_range_m: float = KITTI_SHIFT_RANGE_M,
    crop_px: int = KITTI_TILE_PX,
) -> list[AerialStep]:
    """The release's steps from the tile centred on the GPS to the 512-px aerial image, in their order
    (method §10; the resize to the model's size follows in :func:`kitti_aerial_image`). Pixel offsets are
    ``metres / metres_per_pixel`` of the tile; an affine step samples the input at (x + c, y + f)."""
    gps_x, gps_y = (v / metres_per_pixel for v in KITTI_CAMERA_GPS_SHIFT_M)
    shift_px = shift_range_m / metres_per_pixel
    # the test line's perturbations are negated before they move the image, as the release does
    move_x, move_y = -sx * shift_px, sy * shift_px

    def translate(dx: float, dy: float) -> Callable[[Image.Image], Image.Image]:
        return lambda im: im.transform(
            im.size, Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy), Image.Resampling.BILINEAR
        )

    return [
        # degrees as the release computes them (heading / π · 180), to the last bit
        ("rotate by -heading (nearest)", lambda im: im.rotate(-heading_rad / math.pi * 180)),
        ("move the camera to the centre (bilinear)", translate(gps_x, gps_y)),
        ("apply the test shift (bilinear)", translate(move_x, move_y)),
        ("rotate by theta * range (nearest)", lambda im: im.rotate(rotation_deg)),
        (f"centre-crop {crop_px} px", lambda im: _centre_crop(im, crop_px)),
    ]


def _centre_crop(image: Image.Image, size_px: int) -> Image.Image:
    """The central ``size_px`` square, its corner rounded as torchvision's ``center_crop`` rounds it."""
    w, h = image.size
    left, top = int(round((w - size_px) / 2.0)), int(round((h - size_px) / 2.0))
    return image.crop((left, top, left + size_px, top + size_px))


def kitti_aerial_image(
    tile: Image.Image,
    heading_rad: float,
    sx: float,
    sy: float,
    rotation_deg: float,
    out_px: int = 504,
    resize_filter: str = "pillow_bilinear",
    shift_range_m: float = KITTI_SHIFT_RANGE_M,
) -> np.ndarray:
    """The aerial image (out_px, out_px, 3) uint8 of one test line: :func:`kitti_aerial_steps` on the RGB
    ``tile`` (at least 512 px, centred on the GPS), then resized to ``out_px`` with ``resize_filter``."""
    image = tile
    for _, step in kitti_aerial_steps(heading_rad, sx, sy, rotation_deg, shift_range_m=shift_range_m):
        image = step(image)
    return resize_rgb(np.asarray(image), (out_px, out_px), resize_filter)


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
        resize_filter: how the ground and aerial images are resized (``inputs.images.RESIZE_FILTERS``; the
            release's Pillow bilinear by default).
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
        resize_filter: str = "pillow_bilinear",
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
        self.resize_filter = resize_filter
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
        ground = resize_rgb(read_rgb(paths["image"]), self.ground_size_hw, self.resize_filter)
        camera = kitti_camera(*read_kitti_intrinsics(paths["calib"]), ground.shape[:2])
        heading = read_kitti_heading_rad(paths["oxts"])
        tile = open_rgb(paths["satmap"])
        if tile.width != tile.height or tile.width < KITTI_TILE_PX:
            raise DatasetError(
                f"{paths['satmap']}: expected a square tile of at least 512 px, got {tile.height}×{tile.width}"
            )
        rotation_deg = e.theta * self.orientation_deg
        aerial = kitti_aerial_image(
            tile,
            heading,
            e.sx,
            e.sy,
            rotation_deg,
            self.aerial_size_px,
            self.resize_filter,
            self.shift_range_m,
        )
        depth = None
        if "depth" in paths:
            d = read_depth(paths["depth"], "png_256")
            if (
                d.shape != ground.shape[:2]
            ):  # resized with the image (375 × 1242 → 364 × 1232 changes the aspect)
                d = nearest_resize(d, ground.shape[:2])
            depth = DepthMap(d, kind="z", metric=True)
        pose_true = kitti_true_pose(e.sx, e.sy, rotation_deg, self.shift_range_m)
        return Sample(
            index=index,
            name=e.name,
            ground_rgb=ground,
            aerial_rgb=aerial,
            aerial_footprint_m=KITTI_GRID_SIZE,
            camera=camera,
            depth=depth,
            pose_true=pose_true,
            prior_heading_aerial_deg=90.0,
            aerial_unit_m=KITTI_TILE_PX * KITTI_METRES_PER_PIXEL_512 / KITTI_GRID_SIZE,
            meta={
                "heading_rad": heading,
                "sx": e.sx,
                "sy": e.sy,
                "theta": e.theta,
                "rotation_deg": rotation_deg,
            },
        )
