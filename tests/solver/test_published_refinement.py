"""The release's refinement rule (method §6, §10) against ours, on planted correspondences.

The published rule counts the inliers of the pose being refined and, while that count grows (from 3),
replaces the pose by the weighted re-solve on them without checking it. Ours (``checked``, the precise
solver) keeps a re-solve only when its own inlier count grows, so it can return RANSAC's raw three-point
hypothesis, which depends on the random draws.
"""

import math

import pytest
import torch

from loc2.core.geometry.pose import Similarity2D
from loc2.core.solver.config import PRECISE, PUBLISHED
from loc2.core.solver.procrustes import weighted_procrustes
from loc2.core.solver.ransac import direct_pose, ransac_pose, refine_pose

CLUSTER, OUTLIERS = 40, 20


def _rotation(deg: float) -> torch.Tensor:
    a = math.radians(deg)
    return torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _planted(seed: int = 0):
    """60 correspondences, each its own entry of a diagonal P: 40 that fit one pose up to 0.3 m of noise,
    20 outliers at least 15 m off it. Returns (P (60, 60), xy_aerial_m, xy_ground_m, the planted pose)."""
    gen = torch.Generator().manual_seed(seed)
    R, t, s = _rotation(31.0), torch.tensor([2.5, -4.0]), 1.02
    ground = torch.rand(CLUSTER + OUTLIERS, 2, generator=gen) * 40 - 20
    aerial = s * ground @ R.T + t
    aerial[:CLUSTER] += 0.3 * torch.randn(CLUSTER, 2, generator=gen)
    away = torch.rand(OUTLIERS, 2, generator=gen) - 0.5
    aerial[CLUSTER:] += (
        15.0 * away / away.norm(dim=1, keepdim=True) * (1 + torch.rand(OUTLIERS, 1, generator=gen))
    )
    P = torch.diag(torch.full((CLUSTER + OUTLIERS,), 1.0 / (CLUSTER + OUTLIERS)))
    return P, aerial, ground, Similarity2D(R, t, torch.tensor(s))


def _cluster_solve(aerial, ground) -> Similarity2D:
    """The pose the release ends with here: the closed form on the 40 planted inliers, equal weights."""
    R, t, s, valid = weighted_procrustes(ground[:CLUSTER], aerial[:CLUSTER], torch.ones(CLUSTER))
    assert bool(valid)
    return Similarity2D(R, t, s)


def _distance(a: Similarity2D, b: Similarity2D) -> tuple[float, float, float]:
    """(position m, yaw °, relative scale) between two poses."""
    yaw = math.degrees(
        abs(math.atan2(float(a.R[1, 0]), float(a.R[0, 0])) - math.atan2(float(b.R[1, 0]), float(b.R[0, 0])))
    )
    return float((a.t - b.t).norm()), yaw, abs(float(a.s) / float(b.s) - 1)


def test_published_refinement_gives_the_same_pose_for_every_seed():
    P, aerial, ground, _ = _planted()
    expected = _cluster_solve(aerial, ground)
    checked_offsets = []
    for seed in range(4):
        est = ransac_pose(P, aerial, ground, PUBLISHED, generator=torch.Generator().manual_seed(seed))
        assert est.valid and est.num_inliers == CLUSTER
        dist_m, dyaw, dscale = _distance(est.pose, expected)
        assert dist_m < 1e-4 and dyaw < 1e-4 and dscale < 1e-5, (seed, dist_m, dyaw, dscale)
        checked = ransac_pose(
            P,
            aerial,
            ground,
            PUBLISHED.replace(refinement="checked"),
            generator=torch.Generator().manual_seed(seed),
        )
        checked_offsets.append(_distance(checked.pose, expected)[0])
    # ours keeps the raw three-point hypothesis (its re-solve has no more inliers): seed-dependent, off by cm
    assert max(checked_offsets) > 1e-2 and len({round(d, 6) for d in checked_offsets}) > 1


def test_published_rule_replaces_the_pose_without_checking_it():
    """From a start whose inliers are the 40 planted ones, the published rule returns their re-solve; the
    checked rule returns the start, since the re-solve has no more inliers of its own."""
    P, aerial, ground, planted = _planted()
    start = Similarity2D(planted.R @ _rotation(0.8), planted.t + torch.tensor([0.4, -0.3]), planted.s * 1.01)
    assert int(((start.apply(ground) - aerial).norm(dim=1) < 2.5).sum()) == CLUSTER
    pose, residual, mask = refine_pose(ground, aerial, start, rule="published")
    expected = _cluster_solve(aerial, ground)
    assert max(_distance(pose, expected)) < 1e-5
    torch.testing.assert_close(residual, (expected.apply(ground) - aerial).norm(dim=1), rtol=0, atol=1e-5)
    assert int(mask.sum()) == CLUSTER
    kept, _, kept_mask = refine_pose(ground, aerial, start, rule="checked")
    assert kept is start and int(kept_mask.sum()) == CLUSTER


def test_published_rule_needs_more_than_three_inliers_to_start():
    """3 before the first step: a pose with exactly 3 inliers is not refined; with 4 it is."""
    _, aerial, ground, planted = _planted()
    residual = (planted.apply(ground) - aerial).norm(dim=1)
    order = torch.argsort(residual)
    for count, refined in ((3, False), (4, True)):
        keep = order[:count].tolist() + list(range(CLUSTER, CLUSTER + OUTLIERS))
        src, dst = ground[keep], aerial[keep]
        pose, _, mask = refine_pose(src, dst, planted, inlier_threshold_m=0.5, rule="published")
        assert (pose is not planted) == refined and int(mask.sum()) >= (count if refined else 3)


def test_published_rule_steps_while_the_count_grows():
    """A start that sees only part of the cluster: each re-solve sees more of it, until the count stops
    growing; at most ``refinements`` replacements."""
    P, aerial, ground, planted = _planted(seed=1)
    start = Similarity2D(planted.R @ _rotation(4.0), planted.t + torch.tensor([1.5, 0.0]), planted.s)
    counts = [int(((start.apply(ground) - aerial).norm(dim=1) < 2.5).sum())]
    assert 3 < counts[0] < CLUSTER
    one, _, _ = refine_pose(ground, aerial, start, refinements=1, rule="published")
    four, _, mask = refine_pose(ground, aerial, start, refinements=4, rule="published")
    # one step: the re-solve on the start's inliers, whatever its own count
    first_mask = (start.apply(ground) - aerial).norm(dim=1) < 2.5
    R1, t1, s1, _ = weighted_procrustes(ground, aerial, first_mask.float())
    assert max(_distance(one, Similarity2D(R1, t1, s1))) < 1e-5
    assert int(mask.sum()) == CLUSTER and max(_distance(four, _cluster_solve(aerial, ground))) < 1e-4


def test_solvers_refinement_rules():
    assert PUBLISHED.refinement == "published" and PRECISE.refinement == "checked"
    with pytest.raises(ValueError, match="unknown refinement"):
        PUBLISHED.replace(refinement="sometimes")


def test_direct_solve_is_one_weighted_closed_form_on_1024_draws():
    """KITTI's published solver (method §10): 1,024 distinct correspondences drawn from P, weights = P."""
    gen = torch.Generator().manual_seed(0)
    P = torch.rand(300, 200, generator=gen) ** 8
    aerial, ground = torch.randn(300, 2, generator=gen) * 20, torch.randn(200, 2, generator=gen) * 20
    config = PUBLISHED.replace(ransac=False)
    assert config.direct_samples == 1024 and config.with_scale
    d = direct_pose(P, aerial, ground, config, generator=torch.Generator().manual_seed(1))
    pairs = {(int(a), int(g)) for a, g in zip(d.aerial_index, d.ground_index, strict=True)}
    assert len(d.aerial_index) == 1024 and len(pairs) == 1024
    torch.testing.assert_close(d.prob, P[d.aerial_index, d.ground_index])
    R, t, s, _ = weighted_procrustes(ground[d.ground_index], aerial[d.aerial_index], d.prob)
    assert max(_distance(d.pose, Similarity2D(R, t, s))) < 1e-6
