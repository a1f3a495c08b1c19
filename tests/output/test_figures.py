"""The match figure: size, panels, keypoints, match lines, pose arrows, text strip, PNG file."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from loc2.core.errors import ExportError, ImageError
from loc2.core.geometry.cameras import aerial_xy_to_pixel
from loc2.core.geometry.pose import Similarity2D
from loc2.core.localizer import LocalizationResult
from loc2.core.output.figures import (
    AERIAL_HEIGHT_PX,
    ARROW_LENGTH_PX,
    BACKGROUND_RGB,
    GAP_PX,
    LAYOUT_ALPHA,
    LAYOUT_RGB,
    LINE_HEIGHT_PX,
    MAX_PHOTO_WIDTH_PX,
    draw_match_figure,
    figure_kwargs_from_localization,
    figure_text,
    probability_colours,
    save_match_figure,
)
from loc2.core.output.results import PhotoResult

GROUND = np.full((200, 400, 3), 60, dtype=np.uint8)  # scaled ×2.56 to 512 × 1024
AERIAL = np.full((256, 256, 3), 100, dtype=np.uint8)  # scaled ×2 to 512 × 512
AERIAL_X0 = 1024 + GAP_PX


def _figure(**kw):
    args = dict(
        ground_kp_px=np.array([[100.0, 100.0], [300.0, 50.0]]),
        aerial_kp_px=np.array([[40.0, 200.0], [200.0, 40.0]]),
        prob=np.array([0.2, 0.9]),
        layout_px=np.array([[30.0, 30.0]]),
        prior_px=np.array([128.0, 128.0]),
        prior_heading_aerial_deg=180.0,
        pose_px=np.array([160.0, 100.0]),
        pose_heading_aerial_deg=90.0,
        text="a.jpg: inliers 812 (ratio 41.0 %), confidence high\nshift 3.42 m, heading 91.0 deg",
    )
    args.update(kw)
    return draw_match_figure(GROUND, AERIAL, **args)


def _is_red(px) -> bool:
    return px[0] > 200 and px[1] < 60 and px[2] < 60


def test_figure_size_and_panels():
    fig = _figure()
    assert fig.dtype == np.uint8 and fig.ndim == 3
    assert fig.shape == (AERIAL_HEIGHT_PX + 2 * LINE_HEIGHT_PX + 10, 1024 + GAP_PX + 512, 3)
    assert tuple(fig[5, 900]) == (60, 60, 60)  # photo panel
    assert tuple(fig[500, AERIAL_X0 + 500]) == (100, 100, 100)  # aerial panel
    assert tuple(fig[5, 1024 + GAP_PX // 2]) == BACKGROUND_RGB  # gap
    strip = fig[AERIAL_HEIGHT_PX:]
    assert (strip != np.array(BACKGROUND_RGB, dtype=np.uint8)).any(axis=2).sum() > 500  # text was drawn


def test_pose_arrow_is_red_and_prior_arrow_grey():
    fig = _figure()
    # pose (160, 100) in crop pixels → ×2 on the canvas; heading 90° points right
    pc, pr = AERIAL_X0 + 320, 200
    assert _is_red(fig[pr, pc])
    assert _is_red(fig[pr, pc + ARROW_LENGTH_PX // 2])
    assert not _is_red(fig[pr, pc - ARROW_LENGTH_PX // 2])
    assert not _is_red(fig[pr - ARROW_LENGTH_PX // 2, pc])
    # prior (128, 128) → (256, 256); heading 180° points down
    qc, qr = AERIAL_X0 + 256, 256
    grey = fig[qr + ARROW_LENGTH_PX // 2, qc].astype(int)
    assert abs(grey[0] - grey[1]) < 8 and abs(grey[1] - grey[2]) < 8 and grey[0] > 150
    assert tuple(fig[qr - ARROW_LENGTH_PX // 2, qc]) == (100, 100, 100)


def test_keypoints_are_coloured_by_probability():
    fig = _figure()
    low, high = probability_colours(np.array([0.2, 0.9]))
    assert tuple(high) != tuple(low)
    # photo keypoint (300, 50) → (768, 128); aerial point (200, 40) → (400, 80)
    assert np.abs(fig[128, 768].astype(int) - high).max() <= 2
    assert np.abs(fig[80, AERIAL_X0 + 400].astype(int) - high).max() <= 2
    assert np.abs(fig[256, 256].astype(int) - low).max() <= 2


def test_match_lines_cross_the_gap():
    fig = _figure(
        ground_kp_px=np.array([[380.0, 100.0]]), aerial_kp_px=np.array([[20.0, 128.0]]), prob=np.array([0.5])
    )
    gap = fig[:AERIAL_HEIGHT_PX, 1024 : 1024 + GAP_PX]
    assert (gap != np.array(BACKGROUND_RGB, dtype=np.uint8)).any()
    no_lines = _figure(
        ground_kp_px=np.array([[380.0, 100.0]]),
        aerial_kp_px=np.array([[20.0, 128.0]]),
        prob=np.array([0.5]),
        top_matches=0,
    )
    gap = no_lines[:AERIAL_HEIGHT_PX, 1024 : 1024 + GAP_PX]
    assert (gap == np.array(BACKGROUND_RGB, dtype=np.uint8)).all()


def test_marks_never_spill_into_the_text_strip():
    # keypoints just below the images (rows 550 and 540 of the canvas, inside the text strip)
    kw = dict(ground_kp_px=[[100.0, 215.0]], aerial_kp_px=[[40.0, 270.0]], prob=[1.0])
    fig = _figure(**kw)
    text_only = _figure(ground_kp_px=np.zeros((0, 2)), aerial_kp_px=np.zeros((0, 2)), prob=np.zeros(0))
    assert (fig[AERIAL_HEIGHT_PX:] == text_only[AERIAL_HEIGHT_PX:]).all()


def test_layout_dots_are_translucent():
    fig = _figure()
    expected = LAYOUT_ALPHA * np.array(LAYOUT_RGB) + (1 - LAYOUT_ALPHA) * 100
    assert np.abs(fig[60, AERIAL_X0 + 60].astype(float) - expected).max() <= 2


def test_wide_photo_is_capped_and_centred():
    wide = np.full((100, 2000, 3), 30, dtype=np.uint8)
    fig = draw_match_figure(
        wide, AERIAL, ground_kp_px=np.zeros((0, 2)), aerial_kp_px=np.zeros((0, 2)), prob=np.zeros(0)
    )
    h_photo = round(100 * MAX_PHOTO_WIDTH_PX / 2000)
    assert fig.shape == (AERIAL_HEIGHT_PX, MAX_PHOTO_WIDTH_PX + GAP_PX + 512, 3)
    top = (AERIAL_HEIGHT_PX - h_photo) // 2
    assert tuple(fig[top + h_photo // 2, 10]) == (30, 30, 30)
    assert tuple(fig[top - 2, 10]) == BACKGROUND_RGB


def test_bad_images_raise_image_error():
    with pytest.raises(ImageError, match="ground image"):
        draw_match_figure(
            np.zeros((10, 10), dtype=np.uint8), AERIAL, ground_kp_px=[], aerial_kp_px=[], prob=[]
        )
    with pytest.raises(ImageError, match="aerial image"):
        draw_match_figure(GROUND, AERIAL.astype(np.float32), ground_kp_px=[], aerial_kp_px=[], prob=[])


def test_save_match_figure_writes_png(tmp_path):
    out = save_match_figure(
        tmp_path / "figs" / "a.png", GROUND, AERIAL, ground_kp_px=[[1.0, 2.0]], aerial_kp_px=[[3.0, 4.0]],
        prob=[1.0], pose_px=[128.0, 128.0], pose_heading_aerial_deg=0.0, text="x",
    )  # fmt: skip
    read = np.asarray(Image.open(out))
    assert read.shape[2] == 3 and read.shape[0] == AERIAL_HEIGHT_PX + LINE_HEIGHT_PX + 10
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ExportError, match="file"):
        save_match_figure(blocker / "b.png", GROUND, AERIAL, ground_kp_px=[], aerial_kp_px=[], prob=[])


class _Crop:
    footprint_m = 64.0
    size_px = 256

    def crs_to_aerial(self, xy):
        xy = np.atleast_2d(xy)
        return np.column_stack([1000.0 - xy[:, 1], xy[:, 0] - 500.0])

    def true_north_to_heading(self, h):
        return (h - 10.0) % 360.0


def test_figure_kwargs_from_localization():
    loc = LocalizationResult(
        status="ok",
        pose=Similarity2D.from_heading(90.0, (-8.0, 16.0)),
        inliers_ground_px=np.array([[5.0, 6.0]]),
        inliers_xy_aerial_m=np.array([[0.0, 0.0]]),
        inliers_prob=np.array([0.7]),
        layout_xy_aerial_m=np.array([[1.0, 1.0], [2.0, 2.0]]),
    )
    kw = figure_kwargs_from_localization(loc, _Crop(), prior_xy_crs=(500.0, 1000.0), prior_heading_deg=25.0)
    assert kw["pose_px"] == pytest.approx([(16 + 32) * 4, (-8 + 32) * 4])
    assert kw["pose_heading_aerial_deg"] == pytest.approx(90.0)
    assert kw["prior_px"] == pytest.approx([128.0, 128.0])
    assert kw["prior_heading_aerial_deg"] == pytest.approx(15.0)
    assert kw["aerial_kp_px"] == pytest.approx(aerial_xy_to_pixel(np.zeros((1, 2)), 64.0, 256))
    assert kw["layout_px"].shape == (2, 2)
    fig = draw_match_figure(
        GROUND, AERIAL, **kw, text=figure_text(PhotoResult(photo="/x/a.jpg", status="ok"))
    )
    assert _is_red(fig[(-8 + 32) * 4 * 2, AERIAL_X0 + (16 + 32) * 4 * 2 + ARROW_LENGTH_PX // 2])


def test_figure_text():
    res = PhotoResult(photo="/x/a.jpg", status="ok", x=1.0, y=2.0, heading_deg=91.0, num_inliers=812,
                      inlier_ratio=0.41, scale=1.0, shift_m=3.421)  # fmt: skip
    text = figure_text(res)
    assert "a.jpg" in text and "812" in text and "41.0 %" in text and "high" in text and "3.42 m" in text
    assert math.isfinite(res.shift_m)
    failed = figure_text(PhotoResult.failed("/x/b.jpg", "no GPS"))
    assert "failed" in failed and "no GPS" in failed
