"""Depth for lifting ground tokens: depth maps read from and written to files, and flat-ground depth that
needs no weights.

A :class:`DepthMap` holds metres (or relative units) per pixel of the ground image, NaN where invalid.
Panorama depth is the radial distance along the ray; pinhole depth is z-depth (method §1, §5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import DepthError
from ..geometry.cameras import Camera, Equirectangular, Pinhole


@dataclass
class DepthMap:
    """Per-pixel depth of a ground image.

    Attributes:
        depth_m: (H, W) float32; metres when ``metric``, else relative units; NaN where invalid.
        kind: ``radial`` (distance along the ray, panoramas) or ``z`` (pinhole z-depth).
        metric: True for metric depth; False for depth known only up to scale (the alignment's scale
            then carries the metric scale, method §6).
        max_depth: clip used instead of the preset's (same units as ``depth_m``); None = the preset's.
    """

    depth_m: np.ndarray
    kind: str
    metric: bool = True
    max_depth: float | None = None

    def tokens(
        self,
        rows: int,
        cols: int,
        max_depth: float,
        region_hw: tuple[int, int] | None = None,
        centred: bool = False,
        shift: tuple[float, float] = (0.0, 0.0),
    ) -> np.ndarray:
        """Nearest-neighbour depth on a rows × cols token grid, NaN where invalid or ≥ the clip (method §5).

        ``centred`` samples the pixel at each token's centre, where the token's ray points (pixel-centred
        token grids); otherwise torch's nearest resize, which samples each token's top-left pixel, as the
        published weights were trained. ``region_hw`` restricts the source to the top-left part of the map
        the tokens cover (when the backbone cropped its input to a multiple of its stride). ``shift``
        (columns, rows) in tokens: centres of a panorama's rolled grid (``geometry.cameras.TOKEN_SHIFTS``), columns
        wrapping around; ``centred`` only.
        """
        d = self.depth_m
        if region_hw is not None:
            d = d[: region_hw[0], : region_hw[1]]
        if centred:
            h, w = d.shape
            r = np.clip(np.floor((np.arange(rows) + 0.5 - shift[1]) * h / rows).astype(int), 0, h - 1)
            c = np.floor((np.arange(cols) + 0.5 - shift[0]) * w / cols).astype(int) % w
            out = d[np.ix_(r, c)].astype(np.float64)
        else:
            out = nearest_resize(d, (rows, cols)).astype(np.float64)
        clip = self.max_depth if self.max_depth is not None else max_depth
        out[~np.isfinite(out) | (out <= 0) | (out >= clip)] = np.nan
        return out


def nearest_resize(depth: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """``depth`` (H, W) resized to ``size_hw`` (rows, cols) by torch's nearest neighbour, as the published
    code resizes depth (method §5, §10): output pixel i takes source pixel floor(i · H / rows). Float32."""
    t = torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None, None]
    return F.interpolate(t, size=tuple(size_hw), mode="nearest")[0, 0].numpy()


@runtime_checkable
class DepthProvider(Protocol):
    """Anything that gives a depth map for a ground image and its camera."""

    name: str

    def depth_for(self, image_rgb: np.ndarray, camera: Camera) -> DepthMap: ...


@dataclass
class FlatGroundDepth:
    """Depth of a flat ground plane ``camera_height_m`` below the camera; at or above the horizon invalid.

    Needs no weights. Buildings below the horizon get the depth of the ground behind them, so the
    depth is approximate; it is declared relative so the scale-aware alignment recovers the scale.
    """

    camera_height_m: float = 1.6
    min_elevation_deg: float = 1.0  # pixels closer than this below the horizon are treated as horizon
    name: str = "flat"

    def depth_for(self, image_rgb: np.ndarray, camera: Camera) -> DepthMap:
        h, w = image_rgb.shape[:2]
        v = np.arange(h, dtype=np.float64) + 0.5
        if isinstance(camera, Equirectangular):
            theta = math.pi * v / h  # polar angle from the zenith
            below = theta - math.pi / 2  # angle below the horizon
            ok = below > math.radians(self.min_elevation_deg)
            col = np.where(ok, self.camera_height_m / np.sin(np.where(ok, below, 1.0)), np.nan)
            kind = "radial"
        elif isinstance(camera, Pinhole):
            cy, fy = camera.cy * h / camera.height, camera.fy * h / camera.height
            below = np.arctan2(v - cy, fy)
            ok = below > math.radians(self.min_elevation_deg)
            col = np.where(ok, self.camera_height_m * fy / np.where(ok, v - cy, 1.0), np.nan)
            kind = "z"
        else:
            raise DepthError(f"flat-ground depth: unknown camera model {type(camera).__name__}")
        depth = np.repeat(col[:, None], w, axis=1).astype(np.float32)
        return DepthMap(depth, kind=kind, metric=False)


DEPTH_FORMATS = ("png_mm", "png_256", "npy", "tiff")
DEPTH_WRITE_FORMATS = ("png_mm", "png_256", "npy")
# metres per stored unit of the uint16 PNG formats: millimetres (VIGOR/UniK3D) and 1/256 m (KITTI)
_PNG_SCALES = {"png_mm": 1000.0, "png_256": 256.0}
_PNG_MAX = 65535


@dataclass
class FileDepth:
    """A depth map on disk in one of the published formats.

    Formats: ``png_mm`` (uint16 PNG, millimetres: VIGOR/UniK3D), ``png_256`` (uint16 PNG, value / 256 =
    metres: KITTI/Depth Anything), ``npy`` (float metres), ``tiff`` (float32 metres). With ``fmt=None``
    the suffix decides; a uint16 PNG is read as millimetres for panoramas and /256 for pinhole photos
    (the published conventions). Zero, negative and non-finite values are invalid.
    """

    path: Path
    fmt: str | None = None
    name: str = "file"

    def __post_init__(self):
        self.path = Path(self.path)
        if self.fmt is not None and self.fmt not in DEPTH_FORMATS:
            raise DepthError(
                f"{self.path}: unknown depth format {self.fmt!r}; use one of {', '.join(DEPTH_FORMATS)}"
            )

    def _format_for(self, camera: Camera | None) -> str:
        if self.fmt:
            return self.fmt
        suffix = self.path.suffix.lower()
        if suffix == ".npy":
            return "npy"
        if suffix in (".tif", ".tiff"):
            return "tiff"
        if suffix == ".png":
            return "png_256" if isinstance(camera, Pinhole) else "png_mm"
        raise DepthError(f"{self.path}: cannot tell the depth format from the suffix {suffix!r}")

    def read(self, camera: Camera | None = None) -> np.ndarray:
        """The depth in metres, (H, W) float32, NaN where invalid."""
        if not self.path.is_file():
            raise DepthError(f"{self.path}: depth map not found")
        fmt = self._format_for(camera)
        try:
            if fmt == "npy":
                raw = np.load(self.path, allow_pickle=False).astype(np.float32)
            elif fmt == "tiff":
                import warnings

                import rasterio
                from rasterio.errors import NotGeoreferencedWarning

                with warnings.catch_warnings():
                    warnings.simplefilter(
                        "ignore", NotGeoreferencedWarning
                    )  # depth maps need no georeference
                    with rasterio.open(self.path) as ds:
                        raw = ds.read(1).astype(np.float32)
            else:
                import cv2

                img = cv2.imread(str(self.path), cv2.IMREAD_UNCHANGED)
                if img is None:
                    raise DepthError(f"{self.path}: not a readable PNG")
                if img.dtype != np.uint16 or img.ndim != 2:
                    raise DepthError(
                        f"{self.path}: expected a single-channel uint16 PNG, got {img.dtype} with shape {img.shape}"
                    )
                raw = img.astype(np.float32) / (1000.0 if fmt == "png_mm" else 256.0)
        except DepthError:
            raise
        except Exception as exc:  # numpy/rasterio raise many types on corrupt files
            raise DepthError(f"{self.path}: cannot read depth ({exc})") from exc
        if raw.ndim != 2:
            raise DepthError(f"{self.path}: depth must be one band (H, W), got shape {raw.shape}")
        raw[~np.isfinite(raw) | (raw <= 0)] = np.nan
        return raw

    def depth_for(self, image_rgb: np.ndarray, camera: Camera) -> DepthMap:
        depth = self.read(camera)
        check_depth_size(depth, image_rgb.shape[:2], self.path)
        kind = "z" if isinstance(camera, Pinhole) else "radial"
        return DepthMap(depth, kind=kind, metric=True)


def check_depth_size(depth: np.ndarray, image_hw: tuple[int, int], source: object = "depth map") -> None:
    """Raise DepthError unless the depth map has the image's aspect ratio (sizes may differ)."""
    dh, dw = depth.shape
    ih, iw = image_hw
    if abs(dw / dh - iw / ih) > 0.03 * (iw / ih):  # KITTI: 1242×375 depth for a 1232×364 input is 2.2 % off
        raise DepthError(
            f"{source}: depth map is {dw}×{dh} px but the image is {iw}×{ih} px (a different aspect ratio)"
        )


def depth_file_for(directory: Path, photo: Path) -> FileDepth:
    """The depth map for ``photo`` in ``directory``: same stem, suffix .png, .npy, .tif or .tiff."""
    directory = Path(directory)
    for suffix in (".png", ".npy", ".tif", ".tiff"):
        candidate = directory / f"{Path(photo).stem}{suffix}"
        if candidate.is_file():
            return FileDepth(candidate)
    raise DepthError(f"{directory}: no depth map named {Path(photo).stem}.png/.npy/.tif for {photo}")


def write_depth(path: str | Path, depth_m: np.ndarray, fmt: str, beyond_range: str = "saturate") -> Path:
    """Write metres in a published format: ``png_mm`` (uint16 millimetres, ≤ 65.535 m), ``png_256`` (uint16,
    value / 256 = metres, ≤ 255.99 m) or ``npy`` (float32). Invalid (NaN, ≤ 0) → 0. Depths beyond a PNG
    format's range are stored as its largest value (``beyond_range="saturate"``) or as invalid 0
    (``"invalid"``). Returns the path; DepthError when the format is unknown or the file cannot be written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    d = np.asarray(depth_m, dtype=np.float64)
    if fmt == "npy":
        np.save(path, d.astype(np.float32))
        return path
    if fmt not in _PNG_SCALES:
        raise DepthError(f"{path}: unknown depth format {fmt!r}; use one of {', '.join(DEPTH_WRITE_FORMATS)}")
    if beyond_range not in ("saturate", "invalid"):
        raise ValueError(f"beyond_range must be 'saturate' or 'invalid', got {beyond_range!r}")
    scaled = d * _PNG_SCALES[fmt]
    keep = np.isfinite(scaled) & (scaled > 0)
    if beyond_range == "invalid":
        keep &= scaled <= _PNG_MAX
    values = np.where(keep, np.rint(np.where(keep, scaled, 0.0)), 0)
    import cv2

    if not cv2.imwrite(str(path), np.clip(values, 0, _PNG_MAX).astype(np.uint16)):
        raise DepthError(f"{path}: cannot write the depth PNG")
    return path
