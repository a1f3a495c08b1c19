"""Resizing RGB images with the filter a model was trained with (``core/inputs/images.py``)."""

import numpy as np
import pytest
from PIL import Image

from loc2.core.inputs.images import image_tensor, resize_rgb
from loc2.core.model.presets import KITTI, VIGOR, demo_preset


def _stripes() -> np.ndarray:
    """2 × 8 RGB, every row 0 0 255 255 0 0 255 255 in each channel."""
    row = np.array([0, 0, 255, 255, 0, 0, 255, 255], np.uint8)
    return np.repeat(np.repeat(row[None, :, None], 2, 0), 3, 2)


def test_pillow_bilinear_halving_by_hand():
    """Pillow's bilinear filter widens its triangle with the scale: halving, output column j (centre 2j + 1
    in input pixels) weighs input columns by 1 − |x − c| / 2 over |x − c| < 2, renormalised at the edges:
    (0·.75 + 0·.75 + 255·.25) / 1.75 = 36.4, (255·1.5) / 2 = 191.25, (255·.5) / 2 = 63.75, 255·1.5 / 1.75 = 218.6.
    The area filter averages pairs: 0 255 0 255."""
    out = resize_rgb(_stripes(), (2, 4), "pillow_bilinear")
    np.testing.assert_array_equal(out[0, :, 0], [36, 191, 64, 219])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])
    np.testing.assert_array_equal(resize_rgb(_stripes(), (2, 4), "area")[0, :, 0], [0, 255, 0, 255])
    assert out.flags.writeable


def test_pillow_bilinear_is_pillows_resize():
    rgb = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    expected = np.asarray(Image.fromarray(rgb).resize((29, 14), Image.BILINEAR))
    np.testing.assert_array_equal(resize_rgb(rgb, (14, 29), "pillow_bilinear"), expected)
    assert resize_rgb(rgb, (37, 53), "pillow_bilinear") is rgb  # its own size: unchanged
    with pytest.raises(ValueError, match="unknown resize filter 'cubic'"):
        resize_rgb(rgb, (14, 29), "cubic")


def test_published_presets_resize_as_the_release():
    assert VIGOR.resize_filter == KITTI.resize_filter == "pillow_bilinear"
    assert VIGOR.fp16_backbone and KITTI.fp16_backbone
    demo = demo_preset()
    assert demo.resize_filter == "area" and not demo.fp16_backbone
    rgb = np.random.default_rng(1).integers(0, 256, (40, 80, 3), dtype=np.uint8)
    t = image_tensor(rgb, (20, 40), "cpu", VIGOR.resize_filter)
    expected = np.asarray(Image.fromarray(rgb).resize((40, 20), Image.BILINEAR)).astype(np.float32) / 255
    np.testing.assert_allclose(t[0].permute(1, 2, 0).numpy(), expected, atol=1e-7)
