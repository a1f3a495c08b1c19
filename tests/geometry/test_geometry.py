"""Camera models and lifting against hand-computed points (method §5)."""

import math

import numpy as np
import pytest

from loc2.core.geometry.cameras import (
    Equirectangular,
    Pinhole,
    aerial_grid_xy,
    aerial_xy_to_pixel,
    pixel_to_aerial_xy,
)
from loc2.core.geometry.frames import angle_difference_deg
from loc2.core.geometry.lifting import SPREAD_FRACTION, SPREAD_RADIAL_CAP_M, flat_ground_spread_m, lift_tokens
from loc2.core.geometry.pose import Similarity2D


def test_panorama_lifting_published_grid():
    cam = Equirectangular(1428, 714)
    depth = np.full((51, 102), np.nan)
    depth[38, 0] = 10.0  # θ = π·38/50, φ = 0
    depth[25, 51] = 4.0  # θ = π/2, φ = 2π·51/101 (just past the centre column)
    depth[50, 101] = 3.0  # nadir: x = y = 0
    xy = lift_tokens(cam, depth).reshape(51, 102, 2)
    theta = math.pi * 38 / 50
    assert xy[38, 0] == pytest.approx([10 * math.sin(theta), 0.0])
    phi = 2 * math.pi * 51 / 101
    assert xy[25, 51] == pytest.approx([4 * math.cos(phi), -4 * math.sin(phi)])
    assert xy[50, 101] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert np.isnan(xy[0, 0]).all()


def test_panorama_centre_column_looks_along_minus_x_and_right_is_plus_y():
    cam = Equirectangular(360, 180)
    depth = np.full((9, 37), 5.0)
    xy = lift_tokens(cam, depth, published_grid=False).reshape(9, 37, 2)
    centre = xy[4, 18]  # θ ≈ π/2 (pixel-centred), φ = π
    assert centre[0] == pytest.approx(-5.0, rel=1e-3) and abs(centre[1]) < 1e-9
    right = xy[4, 27]  # φ = 2π·27.5/37 ≈ π + 87.6°: almost a quarter turn clockwise
    assert right[1] == pytest.approx(5 * math.sin(math.radians(87.6)), abs=0.01)
    assert right[0] == pytest.approx(-5 * math.cos(math.radians(87.6)), abs=0.01)


def test_pinhole_lifting_published_grid():
    cam = Pinhole(fx=700.0, fy=700.0, cx=616.0, cy=182.0, width=1232, height=364)
    depth = np.full((26, 88), 8.0)
    xy = lift_tokens(cam, depth, stride=14).reshape(26, 88, 2)
    u = np.linspace(0, 1232 / 14, 88)
    for col in (0, 44, 87):
        expected_y = (u[col] - 616 / 14) * 8.0 / (700 / 14)
        assert xy[3, col] == pytest.approx([-8.0, expected_y])


def test_pinhole_from_fov_and_scaling():
    cam = Pinhole.from_fov(800, 600, 90.0)
    assert cam.fx == pytest.approx(400.0) and cam.hfov_deg == pytest.approx(90.0)
    half = cam.scaled(400, 300)
    assert (half.fx, half.cx, half.cy) == pytest.approx((200.0, 200.0, 150.0))


def test_aerial_grid_and_pixels_round_trip():
    grid = aerial_grid_xy(72.0, 41)
    assert grid.shape == (1681, 2)
    assert grid[0] == pytest.approx([-36.0, -36.0]) and grid[40] == pytest.approx([-36.0, 36.0])
    assert grid[1680] == pytest.approx([36.0, 36.0])
    px = aerial_xy_to_pixel(np.array([[0.0, 0.0], [-36.0, 36.0]]), 72.0, 630)
    assert px == pytest.approx(np.array([[315.0, 315.0], [630.0, 0.0]]))
    back = pixel_to_aerial_xy(px, 72.0, 630)
    assert back == pytest.approx(np.array([[0.0, 0.0], [-36.0, 36.0]]))


@pytest.mark.parametrize("heading", [0.0, 45.0, 90.0, 180.0, 271.5])
def test_heading_rotation_round_trip_and_direction(heading):
    R = Similarity2D.from_heading(heading).R
    assert Similarity2D(R, (0, 0)).heading_aerial_deg == pytest.approx(heading % 360)
    forward = R @ np.array([-1.0, 0.0])  # the camera looks along −x of its BEV frame
    # aerial frame: x down (south), y right (east) → bearing = atan2(east, north)
    bearing = math.degrees(math.atan2(forward[1], -forward[0])) % 360
    assert angle_difference_deg(bearing, heading) < 1e-9


def test_angle_difference_folds():
    assert angle_difference_deg(350.0, 10.0) == pytest.approx(20.0)
    assert angle_difference_deg(-170.0, 170.0) == pytest.approx(20.0)
    assert angle_difference_deg(0.0, 180.0) == pytest.approx(180.0)


def test_flat_ground_spread_is_long_along_the_bearing_for_far_tokens():
    step = math.pi / 10  # tokens 18° tall and wide
    h = 1.6
    # centre rays 27° and 9° below the horizon (the latter's token reaches the horizon), 90° apart; and a NaN
    r27, r9 = h / math.tan(math.radians(27)), h / math.tan(math.radians(9))
    xy = np.array([[r27, 0.0], [0.0, -r9], [np.nan, np.nan]])
    spread = flat_ground_spread_m(xy, h, (step, step))
    near, far = h / math.tan(math.radians(36)), h / math.tan(math.radians(18))
    frac = SPREAD_FRACTION / math.sqrt(12)
    np.testing.assert_allclose(spread[0], [frac * (far - near), frac * r27 * step], rtol=1e-9)
    np.testing.assert_allclose(spread[1], [SPREAD_RADIAL_CAP_M, frac * r9 * step], rtol=1e-9)
    assert spread[1, 0] > spread[1, 1]  # 10 m away: pinned across the bearing, not along it
    np.testing.assert_array_equal(spread[2], [0.0, 0.0])
