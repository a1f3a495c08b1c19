"""Maximum-likelihood refinement: sub-cell poses from the whole matching distribution, robust to outliers."""

import math

import torch

from loc2.core.geometry.cameras import aerial_grid_xy
from loc2.core.geometry.pose import Similarity2D
from loc2.core.solver.refine import maximum_likelihood_pose

FOOTPRINT_M, GRID = 72.0, 41
CELL_M = FOOTPRINT_M / (GRID - 1)


def _ml(P, aerial, ground, R, t, s, **kwargs):
    """maximum_likelihood_pose from the pose (R, t, s), as a tuple (the same objects when it keeps the start)."""
    pose = maximum_likelihood_pose(P, aerial, ground, Similarity2D(R, t, s), **kwargs)
    return pose.R, pose.t, pose.s


def _rotation(deg: float) -> torch.Tensor:
    a = math.radians(deg)
    return torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _bilinear_P(targets_xy: torch.Tensor, n_aerial: int) -> torch.Tensor:
    """P (A, G) spreading each token's mass over the 4 grid points around its continuous aerial point, with
    bilinear weights: the distribution's mean is the point itself, its mode only the nearest grid point."""
    rc = (targets_xy + FOOTPRINT_M / 2) / CELL_M  # continuous (row, col) on the grid
    r0, c0 = rc.floor().long().unbind(1)
    fr, fc = rc[:, 0] - r0, rc[:, 1] - c0
    P = torch.zeros(n_aerial, len(targets_xy))
    cols = torch.arange(len(targets_xy))
    for dr, dc, w in (
        (0, 0, (1 - fr) * (1 - fc)),
        (1, 0, fr * (1 - fc)),
        (0, 1, (1 - fr) * fc),
        (1, 1, fr * fc),
    ):
        P[(r0 + dr) * GRID + (c0 + dc), cols] += 0.5 * w  # each token matched with probability 0.5
    return P


def _scenario(seed: int = 0, scale: float = 1.0, outliers: float = 0.5):
    gen = torch.Generator().manual_seed(seed)
    aerial = torch.from_numpy(aerial_grid_xy(FOOTPRINT_M, GRID)).float()
    R, t = _rotation(-37.0), torch.tensor([3.3, -5.1])
    ground = torch.rand(800, 2, generator=gen) * 40 - 20
    targets = scale * ground @ R.T + t
    outlier = torch.rand(800, generator=gen) < outliers
    targets[outlier] = torch.rand(int(outlier.sum()), 2, generator=gen) * 60 - 30  # anywhere on the crop
    return _bilinear_P(targets, len(aerial)), aerial, ground, R, t


def test_recovers_the_sub_cell_pose_under_half_outliers():
    P, aerial, ground, R, t = _scenario()
    # start 1.2 m and 3° off, as RANSAC on grid points leaves it
    R0, t0, s0 = _rotation(-34.0), t + torch.tensor([0.9, -0.8]), torch.tensor(1.04)
    R1, t1, s1 = _ml(P, aerial, ground, R0, t0, s0)
    # the narrow final kernel pulls each token a little towards its nearest grid point: a few cm remain
    assert float((t1 - t).norm()) < 0.15
    yaw_err = math.degrees(abs(math.atan2(R1[1, 0], R1[0, 0]) - math.atan2(R[1, 0], R[0, 0])))
    assert yaw_err < 0.3
    assert abs(float(s1) - 1.0) < 0.01


def test_scale_is_kept_in_the_metric_range():
    # the ground layout is 30 % too large (depth too far): the free scale would be 0.7, the gate keeps 0.8
    P, aerial, ground, R, t = _scenario(seed=1, scale=0.7, outliers=0.2)
    free = _ml(P, aerial, ground, R, t, torch.tensor(0.8))
    gated = _ml(P, aerial, ground, R, t, torch.tensor(0.8), scale_range=(0.8, 1.25))
    assert abs(float(free[2]) - 0.7) < 0.01
    assert abs(float(gated[2]) - 0.8) < 1e-6
    no_scale = _ml(P, aerial, ground, R, t, torch.tensor(1.0), with_scale=False)
    assert float(no_scale[2]) == 1.0


def test_without_matched_tokens_the_start_pose_is_returned():
    aerial = torch.from_numpy(aerial_grid_xy(FOOTPRINT_M, GRID)).float()
    P = torch.zeros(len(aerial), 50)
    P[0, :2] = 0.5  # two tokens: too few for an alignment
    R0, t0, s0 = _rotation(10.0), torch.tensor([1.0, 2.0]), torch.tensor(1.0)
    R1, t1, s1 = _ml(P, aerial, torch.rand(50, 2), R0, t0, s0)
    assert R1 is R0 and t1 is t0 and s1 is s0


def _yaw_deg(R: torch.Tensor) -> float:
    return math.degrees(math.atan2(float(R[1, 0]), float(R[0, 0])))


def _ranged_scenario(seed: int = 2):
    """Flat ground seen from a panorama: tokens 3-20 m away, each matched (P = 0.5, bilinear) where its true
    ground point lies, but far tokens' matches scattered along their bearing (a long, narrow footprint)."""
    gen = torch.Generator().manual_seed(seed)
    aerial = torch.from_numpy(aerial_grid_xy(FOOTPRINT_M, GRID)).float()
    R, t = _rotation(23.0), torch.tensor([-2.2, 1.7])
    range_m = 3 + 17 * torch.rand(600, generator=gen)
    bearing_rad = 2 * math.pi * torch.rand(600, generator=gen)
    unit = torch.stack([torch.cos(bearing_rad), torch.sin(bearing_rad)], 1)
    ground = range_m[:, None] * unit
    radial_m = 0.25 * range_m * torch.randn(600, generator=gen)  # along the bearing only
    targets = (ground + radial_m[:, None] * unit) @ R.T + t
    spread_m = torch.stack([0.25 * range_m, torch.full_like(range_m, 0.05)], 1)
    return _bilinear_P(targets, len(aerial)), aerial, ground, R, t, spread_m


def test_footprints_keep_range_errors_out_of_the_heading():
    P, aerial, ground, R, t, spread_m = _ranged_scenario()
    R0, t0, s0 = _rotation(25.0), t + torch.tensor([0.5, -0.4]), torch.tensor(1.0)
    round_kernel = _ml(P, aerial, ground, R0, t0, s0, with_scale=False)
    stretched = _ml(P, aerial, ground, R0, t0, s0, with_scale=False, spread_m=spread_m)
    err_round = abs(_yaw_deg(round_kernel[0]) - _yaw_deg(R))
    err_stretched = abs(_yaw_deg(stretched[0]) - _yaw_deg(R))
    assert err_stretched < 0.5 * err_round and err_stretched < 0.3
    assert float((stretched[1] - t).norm()) < float((round_kernel[1] - t).norm())
    assert float(stretched[2]) == 1.0


def test_without_footprints_the_stretched_refinement_is_the_round_one():
    P, aerial, ground, R, t = _scenario(seed=3, outliers=0.3)
    R0, t0, s0 = _rotation(-35.0), t + torch.tensor([0.6, 0.5]), torch.tensor(1.0)
    round_kernel = _ml(P, aerial, ground, R0, t0, s0, with_scale=False)
    zero = _ml(P, aerial, ground, R0, t0, s0, with_scale=False, spread_m=torch.zeros(len(ground), 2))
    # the same likelihood; Gauss-Newton and the closed form reach the same optimum
    assert torch.allclose(zero[0], round_kernel[0], atol=1e-4)
    assert torch.allclose(zero[1], round_kernel[1], atol=1e-3)


def test_a_footprint_refinement_that_slides_away_keeps_the_start():
    P, aerial, ground, R, t, spread_m = _ranged_scenario(seed=4)
    R0, t0, s0 = _rotation(25.0), t + torch.tensor([1.5, 0.0]), torch.tensor(1.0)
    R1, t1, s1 = _ml(P, aerial, ground, R0, t0, s0, with_scale=False, spread_m=spread_m, max_shift_m=0.5)
    assert R1 is R0 and t1 is t0 and s1 is s0
