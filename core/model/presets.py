"""Model presets: the input sizes, footprints and depth conventions each checkpoint was trained with.

Frames: the aerial image is north up unless ``aerial_heading_aligned`` (then the camera's prior heading
points to the image's right, east). Footprints are metres across the square aerial crop.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

from ..solver.confidence import PAPER_MIN_RATIOS
from ..types import AERIAL_CROPS, MODEL_DEMO, MODEL_KITTI, MODEL_VIGOR

CameraKind = Literal["panorama", "pinhole"]


@dataclass(frozen=True)
class Preset:
    """Everything the pipeline needs to know about one trained model's inputs.

    Attributes:
        name: preset name (``vigor``, ``kitti``, ``demo`` or a checkpoint's own).
        camera: ``panorama`` (equirectangular, 360°) or ``pinhole``.
        ground_size_hw: ground image size fed to the backbone, (height, width) pixels.
        aerial_size_px: side of the square aerial image fed to the backbone, pixels.
        aerial_footprint_m: ground extent of the aerial crop, metres across.
        max_depth_m: depth clip; tokens at or beyond it are invalid.
        depth_kind: ``radial`` (distance along the ray) or ``z`` (pinhole z-depth).
        aerial_heading_aligned: the aerial crop is rotated so the prior heading points east.
        backbone: backbone name understood by :func:`loc2.core.backbone.build_backbone`.
        embed_dim: backbone feature width (channels).
        desc_dim: descriptor width of the matcher heads.
        head_widths: channel widths of the residual blocks of each head.
        aerial_grid: side of the aerial point grid (aerial_grid² points).
        temperature: dual-softmax temperature τ.
        published_grid: bearings of ground tokens follow the published grid convention (method §5).
        fov_deg: horizontal field of view used when a pinhole photo gives no intrinsics.
        resize_filter: how images are resized to the input sizes (``inputs.images.RESIZE_FILTERS``): ``area``
            (ours) or ``pillow_bilinear`` (the published models, as the release resizes them).
        fp16_backbone: on CUDA the whole backbone is cast to fp16, weights and activations, as the release runs
            it (the published models); otherwise fp16 autocast there. The CPU always runs float32.
        confidence_min_ratios: camera kind → (medium, high), the lowest inlier ratio of those confidence
            classes for this model, calibrated on held-out data (:meth:`confidence_min_ratios_for`).
    """

    name: str
    camera: CameraKind
    ground_size_hw: tuple[int, int]
    aerial_size_px: int
    aerial_footprint_m: float
    max_depth_m: float
    depth_kind: Literal["radial", "z"]
    aerial_heading_aligned: bool = False
    backbone: str = "dinov2_vitl14"
    embed_dim: int = 1024
    desc_dim: int = 128
    head_widths: tuple[int, ...] = (512, 256, 128)
    aerial_grid: int = 41
    temperature: float = 0.1
    published_grid: bool = True
    fov_deg: float = 90.0
    resize_filter: str = "area"
    fp16_backbone: bool = False
    confidence_min_ratios: dict = field(default_factory=dict, compare=False, hash=False)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def confidence_min_ratios_for(self, camera_kind: str) -> tuple[float, float]:
        """(medium, high) inlier-ratio thresholds for photos of ``camera_kind``: the model's own; the paper's
        when the model has none; never above ``low`` for a camera its calibration leaves out (its ratio was
        not found to tell good poses from bad ones there)."""
        if not self.confidence_min_ratios:
            return PAPER_MIN_RATIOS
        ratios = self.confidence_min_ratios.get(camera_kind)
        if not ratios:
            return math.inf, math.inf
        medium, high = ratios
        return float(medium), math.inf if high is None else float(high)

    def replace(self, **changes) -> Preset:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """JSON-serialisable description (for checkpoint sidecars)."""
        d = dataclasses.asdict(self)
        d["ground_size_hw"] = list(self.ground_size_hw)
        d["head_widths"] = list(self.head_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Preset:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        kw["ground_size_hw"] = tuple(kw["ground_size_hw"])
        if "head_widths" in kw:
            kw["head_widths"] = tuple(kw["head_widths"])
        return cls(**kw)


# VIGOR tiles are 640 px at 0.10-0.12 m/px; 72 m is the footprint used for our own orthophotos.
VIGOR = Preset(
    name=MODEL_VIGOR,
    camera="panorama",
    ground_size_hw=(714, 1428),
    aerial_size_px=AERIAL_CROPS[MODEL_VIGOR][1],
    aerial_footprint_m=AERIAL_CROPS[MODEL_VIGOR][0],
    max_depth_m=35.0,
    depth_kind="radial",
    resize_filter="pillow_bilinear",
    fp16_backbone=True,
)

KITTI = Preset(
    name=MODEL_KITTI,
    camera="pinhole",
    ground_size_hw=(364, 1232),
    aerial_size_px=AERIAL_CROPS[MODEL_KITTI][1],
    aerial_footprint_m=AERIAL_CROPS[MODEL_KITTI][0],
    max_depth_m=40.0,
    depth_kind="z",
    aerial_heading_aligned=True,
    resize_filter="pillow_bilinear",
    fp16_backbone=True,
)

PRESETS: dict[str, Preset] = {p.name: p for p in (VIGOR, KITTI)}  # the published models (types.py)


def demo_preset() -> Preset:
    """The demo model: frozen ImageNet EfficientNet-Lite0 features, narrower heads, panoramas, VIGOR-like
    footprint (72 m, 41 × 41 aerial points)."""
    return VIGOR.replace(
        name=MODEL_DEMO,
        backbone="efficientnet_lite0",
        embed_dim=152,
        desc_dim=64,
        head_widths=(96, 64),
        ground_size_hw=(160, 320),
        aerial_size_px=AERIAL_CROPS[MODEL_DEMO][1],
        aerial_footprint_m=AERIAL_CROPS[MODEL_DEMO][0],
        max_depth_m=35.0,
        published_grid=False,
        resize_filter="area",
        fp16_backbone=False,
        extra={"frozen_backbone": True},
    )


def get_preset(name: str) -> Preset:
    """Look a preset up by name; raises ``KeyError`` naming the known ones."""
    try:
        return PRESETS[name.lower()]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(sorted(PRESETS))}") from None
