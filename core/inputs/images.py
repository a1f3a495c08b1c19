"""Resizing RGB images to a model's input size, with the filter the model was trained with.

``area`` (our models: the demo model, ``loc2 train``): OpenCV's area filter when shrinking, bilinear when
enlarging. ``pillow_bilinear`` (the published models): Pillow's bilinear filter, ``Image.resize(...,
BILINEAR)``, as torchvision's ``Resize`` applies it to the PIL images the release reads (method §10); when
shrinking, its triangle kernel widens with the scale, so it averages over about twice the area's footprint.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from PIL import Image

from ..errors import ImageError

RESIZE_FILTERS = ("area", "pillow_bilinear")


def resize_rgb(image: np.ndarray, size_hw: tuple[int, int] | None, resize_filter: str = "area") -> np.ndarray:
    """``image`` (H, W, 3) uint8 RGB resized to ``size_hw`` (height, width) pixels with ``resize_filter``
    (``RESIZE_FILTERS``); None or the image's own size returns it unchanged."""
    if size_hw is None or image.shape[:2] == tuple(size_hw):
        return image
    h, w = size_hw
    if resize_filter == "pillow_bilinear":
        resized = Image.fromarray(np.ascontiguousarray(image)).resize((w, h), Image.Resampling.BILINEAR)
        return np.array(resized)  # a writable copy
    if resize_filter != "area":
        raise ValueError(f"unknown resize filter {resize_filter!r}; use one of {', '.join(RESIZE_FILTERS)}")
    shrink = h < image.shape[0] or w < image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def as_rgb_uint8(image: np.ndarray, what: str) -> np.ndarray:
    """Check an (H, W, 3) RGB image; floats in [0, 1] are converted to uint8."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{what}: expected a numpy array (H, W, 3), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"{what}: expected shape (H, W, 3) RGB, got {image.shape}")
    if image.dtype == np.uint8:
        return image
    if np.issubdtype(image.dtype, np.floating):
        if np.nanmin(image) < 0 or np.nanmax(image) > 1:
            raise ImageError(f"{what}: float images must lie in [0, 1]")
        return (image * 255 + 0.5).astype(np.uint8)
    raise ImageError(f"{what}: unsupported dtype {image.dtype} (use uint8 or float in [0, 1])")


def image_tensor(
    image: np.ndarray, size_hw: tuple[int, int], device: torch.device, resize_filter: str = "area"
) -> torch.Tensor:
    """Resize an RGB uint8 image to ``size_hw`` with ``resize_filter`` (``inputs.images``) and make a
    (1, 3, H, W) float tensor in [0, 1]."""
    image = resize_rgb(image, size_hw, resize_filter)
    t = torch.from_numpy(np.ascontiguousarray(image)).to(device)
    return t.permute(2, 0, 1)[None].float().div_(255.0)
