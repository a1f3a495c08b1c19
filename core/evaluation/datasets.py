"""Evaluation samples from the public benchmarks (VIGOR: ``vigor.py``, KITTI: ``kitti.py``), formed exactly
as the published evaluation forms them, and what their readers share.

Every sample is in the frames of :mod:`loc2.core.geometry`: the aerial frame has its origin at the centre of
the square aerial image, ``x`` down the image and ``y`` to the right, in metres; the true pose maps ground
BEV points onto aerial points, ``xy_aerial_m ≈ s·R·xy_ground_m + t``, so ``t`` is the camera position on the
aerial image and R carries the camera heading (:class:`~loc2.core.geometry.pose.Similarity2D`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DatasetError, DepthError
from ..geometry.cameras import Camera
from ..geometry.pose import Similarity2D
from ..inputs.depth import DepthMap, FileDepth
from ..solver.config import PUBLISHED, SolverConfig

# The benchmarks ``loc2 eval`` knows, and the camera of their ground images.
DATASETS = ("vigor", "kitti")
DATASET_CAMERA = {"vigor": "panorama", "kitti": "pinhole"}
# The solver of each benchmark's published evaluation (method §10): VIGOR's RANSAC (``eval_vigor.py
# --ransac True``, as the release's README runs it), KITTI's one weighted solve on 1,024 correspondences.
DATASET_SOLVER: dict[str, SolverConfig] = {"vigor": PUBLISHED, "kitti": PUBLISHED.replace(ransac=False)}


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
        pose_true: the true pose (``t``: the camera position in the aerial frame, x down, y right, metres).
        prior_heading_aerial_deg: the heading (clockwise from the image's up) the aerial image was prepared
            for.
        meta: dataset-specific values (city, roll fraction, perturbations, ...).
        aerial_unit_m: metres per unit of the frame the aerial points are laid out in: they span
            ``aerial_footprint_m`` units, so a solved position ``t`` lies ``t · aerial_unit_m`` metres from the
            centre. 1 except for KITTI, whose release lays the points over 100.26 units across an image of
            100.27 m and converts solved positions through pixels (:data:`kitti.KITTI_GRID_SIZE`).
    """

    index: int
    name: str
    ground_rgb: np.ndarray
    aerial_rgb: np.ndarray
    aerial_footprint_m: float
    camera: Camera
    depth: DepthMap | None
    pose_true: Similarity2D
    prior_heading_aerial_deg: float = 0.0
    meta: dict = field(default_factory=dict)
    aerial_unit_m: float = 1.0


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


def open_rgb(path: Path) -> Image.Image:
    """An image file as an RGB Pillow image, read as the release reads it (Pillow, ``convert("RGB")``, no
    EXIF rotation); DatasetError naming the file when missing or unreadable."""
    if not path.is_file():
        raise DatasetError(f"{path}: image not found")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"{path}: not a readable image ({exc})") from None


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB (:func:`open_rgb`)."""
    return np.array(open_rgb(path))


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


def open_dataset(kind: str, root: str | Path, split: str, orientation: str | float | None = None, **kwargs):
    """``vigor`` or ``kitti`` dataset by name (keyword arguments go to the reader)."""
    if kind == "vigor":
        from .vigor import VigorDataset

        return VigorDataset(root, split, orientation, **kwargs)
    if kind == "kitti":
        from .kitti import KittiDataset

        return KittiDataset(root, split, orientation, **kwargs)
    raise DatasetError(f"unknown dataset {kind!r}; use one of {', '.join(DATASETS)}")
