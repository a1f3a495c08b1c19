"""Resizing RGB images to a model's input size, with the filter the model was trained with.

``area`` (our models: the demo model, ``loc2 train``): OpenCV's area filter when shrinking, bilinear when
enlarging. ``pillow_bilinear`` (the published models): Pillow's bilinear filter, ``Image.resize(...,
BILINEAR)``, as torchvision's ``Resize`` applies it to the PIL images the release reads (method §10); when
shrinking, its triangle kernel widens with the scale, so it averages over about twice the area's footprint.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

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
