"""``loc2 eval`` prepares samples and solves as the published evaluation does (method §10), on small
constructed inputs: VIGOR's resize-then-roll, the KITTI aerial steps in their order, the solver per dataset."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from loc2.core.evaluation.datasets import DATASET_SOLVER, read_depth
from loc2.core.evaluation.kitti import kitti_aerial_image, kitti_aerial_steps
from loc2.core.evaluation.vigor import VigorDataset
from loc2.core.inputs.depth import nearest_resize
from loc2.core.types import KITTI_METRES_PER_PIXEL_512

SIZE_HW = (64, 128)  # the fixture's 128 × 256 panoramas are halved, as 714 × 1428 is prepared in the release


def test_vigor_unknown_orientation_resizes_then_rolls(vigor_root):
    """Panorama and depth are first resized to the input size (Pillow bilinear, nearest), then both rolled
    by round(r · W) columns of that size; rolling at the file's width and resizing after gives other
    depth columns."""
    ds = VigorDataset(vigor_root, "same", "unknown", seed=3, ground_size_hw=SIZE_HW)
    differs = 0
    for i in range(len(ds)):
        s, paths = ds[i], ds.paths(i)
        r = s.meta["roll_fraction"]
        k = int(round(r * SIZE_HW[1]))
        with Image.open(paths["panorama"]) as im:
            pano = np.asarray(im.convert("RGB").resize(SIZE_HW[::-1], Image.BILINEAR))
        np.testing.assert_array_equal(s.ground_rgb, np.roll(pano, k, axis=1))
        depth_m = read_depth(paths["depth"], "png_mm")  # 128 × 256, NaN where 0 (sky)
        expected = np.roll(nearest_resize(depth_m, SIZE_HW), k, axis=1)
        np.testing.assert_array_equal(s.depth.depth_m, expected)
        # the fixture's depth is 5 m + 1 cm per file column: column j of the rolled input holds 2·((j − k) mod W)
        j = np.arange(SIZE_HW[1])
        np.testing.assert_allclose(s.depth.depth_m[-1], 5 + 0.02 * ((j - k) % SIZE_HW[1]), atol=1e-5)
        rolled_first = nearest_resize(np.roll(depth_m, int(round(r * depth_m.shape[1])), axis=1), SIZE_HW)
        differs += not np.array_equal(rolled_first, expected, equal_nan=True)
    assert differs >= 1  # the order matters on these rolls


def _tile(px: int = 520) -> Image.Image:
    """A tile with texture that no rotation or shift maps onto itself (its centre is the GPS)."""
    rng = np.random.default_rng(7)
    rgb = (rng.integers(0, 256, (px // 8, px // 8, 3), dtype=np.uint8)).repeat(8, 0).repeat(8, 1)
    rgb[px // 2 - 20 : px // 2 + 20, px // 2 + 30 : px // 2 + 90] = (
        255,
        0,
        0,
    )  # something east of the centre
    return Image.fromarray(rgb)


def _release_steps(tile, heading, sx, sy, theta, rotation_range):
    """The release's KITTI aerial image, written out step by step as method §10 lists them."""
    mpp = KITTI_METRES_PER_PIXEL_512
    sat_rot = tile.rotate(-heading / np.pi * 180)
    sat_align = sat_rot.transform(
        sat_rot.size, Image.AFFINE, (1, 0, 1.08 / mpp, 0, 1, 0.26 / mpp), resample=Image.BILINEAR
    )
    gt_shift_x, gt_shift_y = -sx, -sy
    px = 20.0 / mpp
    sat_shift = sat_align.transform(
        sat_align.size, Image.AFFINE, (1, 0, gt_shift_x * px, 0, 1, -gt_shift_y * px), resample=Image.BILINEAR
    )
    sat_rot2 = sat_shift.rotate(theta * rotation_range)
    left = int(round((sat_rot2.width - 512) / 2.0))
    top = int(round((sat_rot2.height - 512) / 2.0))
    crop = sat_rot2.crop((left, top, left + 512, top + 512))
    return np.asarray(crop.resize((504, 504), Image.BILINEAR))


@pytest.mark.parametrize(("heading", "sx", "sy", "theta"), [(0.7, 0.3, -0.45, 0.6), (-2.4, -0.9, 0.2, -0.35)])
def test_kitti_aerial_image_follows_the_release_steps_in_order(heading, sx, sy, theta):
    tile = _tile()
    ours = kitti_aerial_image(tile, heading, sx, sy, theta * 10.0)
    np.testing.assert_array_equal(ours, _release_steps(tile, heading, sx, sy, theta, 10.0))
    names = [name for name, _ in kitti_aerial_steps(heading, sx, sy, theta * 10.0)]
    assert names == [
        "rotate by -heading (nearest)",
        "move the camera to the centre (bilinear)",
        "apply the test shift (bilinear)",
        "rotate by theta * range (nearest)",
        "centre-crop 512 px",
    ]
    # another order of the same steps gives another image: the order is what is pinned
    steps = [step for _, step in kitti_aerial_steps(heading, sx, sy, theta * 10.0)]
    image = tile
    for step in (steps[0], steps[3], steps[1], steps[2], steps[4]):
        image = step(image)
    swapped = np.asarray(image.resize((504, 504), Image.BILINEAR))
    assert np.abs(swapped.astype(int) - ours.astype(int)).max() > 100


def test_each_dataset_has_its_published_solver():
    vigor, kitti = DATASET_SOLVER["vigor"], DATASET_SOLVER["kitti"]
    assert vigor.ransac and vigor.refinement == "published" and vigor.rounds == 20
    assert vigor.samples_per_round == 8192 and vigor.hypotheses_per_round == 100
    assert not kitti.ransac and kitti.direct_samples == 1024 and kitti.with_scale
    for config in (vigor, kitti):
        assert not config.dense_grids and config.scale_range is None and not config.polish_radii_m
        assert not config.likelihood and config.choose_beyond_m is None
    assert math.isclose(vigor.inlier_threshold_m, 2.5) and math.isclose(vigor.soft_threshold_m, 5.0)
