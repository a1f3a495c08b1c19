"""RANSAC: exact sampling without replacement, pose recovery under heavy outliers, reproducibility."""

import math

import pytest
import torch

import loc2.core.ransac as ransac
from loc2.core.geometry import aerial_grid_xy
from loc2.core.ransac import (
    METRIC_SCALE_RANGE,
    NEAR_GROUND_M,
    POLISH_RADII_M,
    CorrespondenceSampler,
    minimal_sets,
    ransac_pose,
    solver_settings,
)
from loc2.core.refine import MAX_SHIFT_M, maximum_likelihood_pose
from loc2.core.solvers import DEFAULT_SOLVER, SOLVERS


def _confident_matches(n_aerial, target, gen):
    """A dual-softmax P (n_aerial, len(target)) whose column g is confident about aerial point target[g]."""
    logits = torch.randn(n_aerial, len(target), generator=gen)
    logits[target, torch.arange(len(target))] += 9.0
    return torch.softmax(logits, 0) * torch.softmax(logits, 1)


def _scenario(outlier_fraction=0.7, seed=0, scale=1.0):
    """Aerial grid points, ground points and a P whose inlier columns point at the true aerial match."""
    gen = torch.Generator().manual_seed(seed)
    aerial = torch.from_numpy(aerial_grid_xy(72.0, 41)).float()
    n_ground = 2000
    yaw = math.radians(-123.0)
    R = torch.tensor([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    t = torch.tensor([4.2, -7.7])
    inlier = torch.rand(n_ground, generator=gen) >= outlier_fraction
    target = torch.randint(0, len(aerial), (n_ground,), generator=gen)
    ground = ((aerial[target] - t) @ R) / scale  # exact preimages: s·R·g + t = aerial[target]
    ground[~inlier] = torch.rand(int((~inlier).sum()), 2, generator=gen) * 60 - 30
    P = _confident_matches(len(aerial), target, gen)  # one confident (possibly wrong) match per column
    return P, aerial, ground, R, t, inlier


@pytest.mark.parametrize("scale", [1.0, 0.05])
def test_recovers_pose_with_70_percent_outliers(scale):
    P, aerial, ground, R, t, _ = _scenario(0.7, seed=1, scale=scale)
    est = ransac_pose(P, aerial, ground, samples_per_round=2048, generator=torch.Generator().manual_seed(0))
    assert est.valid
    assert float((est.t - t).norm()) < 0.05
    yaw_err = math.degrees(abs(math.atan2(est.R[1, 0], est.R[0, 0]) - math.atan2(R[1, 0], R[0, 0])))
    assert yaw_err < 0.05
    assert abs(float(est.s) - scale) / scale < 1e-3
    assert 0.2 < est.inlier_ratio < 0.4  # ≈ 30 % of the sampled correspondences are true
    assert est.inlier_mask.shape == est.ground_index.shape


def test_reproducible_with_generator_and_flag_without_ransac():
    P, aerial, ground, _, t, _ = _scenario(0.0, seed=2)
    a = ransac_pose(P, aerial, ground, rounds=3, generator=torch.Generator().manual_seed(5))
    b = ransac_pose(P, aerial, ground, rounds=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.t, b.t) and a.num_inliers == b.num_inliers
    direct = ransac_pose(P, aerial, ground, use_ransac=False, generator=torch.Generator().manual_seed(5))
    assert direct.valid and len(direct.ground_index) == 1024
    assert float((direct.t - t).norm()) < 0.05  # no outliers: the weighted solve is exact


def test_no_pose_when_too_few_correspondences():
    P = torch.zeros(9, 4)
    P[0, 0] = 1.0
    P[1, 1] = 1.0
    est = ransac_pose(P, torch.randn(9, 2), torch.randn(4, 2))
    assert not est.valid and est.num_inliers == 0


def _first_draw_frequencies(sampler_fn, n=12000):
    counts = torch.zeros(6)
    for _ in range(n):
        counts[sampler_fn()[0]] += 1
    return counts / n


def test_sampler_is_sequential_sampling_without_replacement():
    q = torch.tensor([[0.4, 0.25, 0.15, 0.1, 0.05, 0.05]])
    gen = torch.Generator().manual_seed(0)
    sampler = CorrespondenceSampler(q)
    expected_second = torch.tensor(
        [sum(q[0, i] * q[0, j] / (1 - q[0, i]) for i in range(6) if i != j) for j in range(6)]
    )
    for draw in (lambda: sampler.draw(2, gen)[1], lambda: sampler._draw_peaked(2, gen)):
        firsts, seconds = torch.zeros(6), torch.zeros(6)
        n = 6000  # frequencies within 0.025 are > 3.5 standard deviations
        for _ in range(n):
            idx = draw()
            assert idx[0] != idx[1]
            firsts[idx[0]] += 1
            seconds[idx[1]] += 1
        assert torch.allclose(firsts / n, q[0], atol=0.025)
        assert torch.allclose(seconds / n, expected_second, atol=0.025)


def test_sampler_returns_distinct_pairs_and_caps_at_support():
    P = torch.zeros(30, 40)
    P[torch.arange(30), torch.arange(30)] = torch.linspace(0.1, 1, 30)
    a, g = CorrespondenceSampler(P).draw(100)
    assert len(a) == 30 and len(set(zip(a.tolist(), g.tolist(), strict=True))) == 30
    assert torch.equal(a, g)  # only the diagonal has probability


def test_minimal_sets_are_distinct():
    prob = torch.rand(500, 50) ** 8
    sets = minimal_sets(prob, 3, torch.Generator().manual_seed(0))
    assert sets.shape == (500, 3)
    assert ((sets[:, 0] != sets[:, 1]) & (sets[:, 1] != sets[:, 2]) & (sets[:, 0] != sets[:, 2])).all()


def test_minimal_sets_per_row_follow_their_row():
    prob = torch.zeros(2, 10)
    prob[0, :3] = 1.0  # row 0 can only pick columns 0-2
    prob[1, 5:9] = torch.tensor([0.1, 0.2, 0.3, 0.4])
    sets = minimal_sets(prob, 3, torch.Generator().manual_seed(1), per_row=50)
    assert sets.shape == (100, 3)
    assert sorted(set(sets[:50].flatten().tolist())) == [0, 1, 2]
    assert set(sets[50:].flatten().tolist()) <= {5, 6, 7, 8}


def _two_places(seed=0):
    """A true pose (scale 1, 25 % of ground tokens) and a look-alike (scale 0.6, 40 %) in one P."""
    gen = torch.Generator().manual_seed(seed)
    aerial = torch.from_numpy(aerial_grid_xy(72.0, 41)).float()
    n = 1000
    ground = torch.rand(n, 2, generator=gen) * 40 - 20
    true_t, fake_t = torch.tensor([3.0, -2.0]), torch.tensor([-15.0, 12.0])
    target = torch.randint(0, len(aerial), (n,), generator=gen)
    which = torch.rand(n, generator=gen)
    true_set, fake_set = which < 0.25, (which >= 0.25) & (which < 0.65)
    # snap each set's moved points to their nearest aerial point (what a grid matcher can do at best)
    for sel, s, t in ((true_set, 1.0, true_t), (fake_set, 0.6, fake_t)):
        target[sel] = torch.cdist(s * ground[sel] + t, aerial).argmin(1)
    logits = torch.randn(len(aerial), n, generator=gen)
    logits[target, torch.arange(n)] += 9.0
    P = torch.softmax(logits, 0) * torch.softmax(logits, 1)
    return P, aerial, ground, true_t


def test_scale_range_rejects_a_look_alike_that_needs_a_wrong_scale():
    P, aerial, ground, true_t = _two_places()
    gen = torch.Generator().manual_seed(0)
    published = ransac_pose(P, aerial, ground, samples_per_round=2048, generator=gen)
    assert abs(float(published.s) - 0.6) < 0.05  # the bigger, wrongly scaled set wins
    gated = ransac_pose(
        P,
        aerial,
        ground,
        samples_per_round=2048,
        generator=torch.Generator().manual_seed(0),
        scale_range=(0.8, 1.25),
    )
    assert 0.8 <= float(gated.s) <= 1.25
    assert float((gated.t - true_t).norm()) < 1.0


def test_polish_averages_over_all_matches():
    P, aerial, ground, true_t = _two_places(seed=3)
    errors = {}  # mean position error over four seeds, metres
    for name, polish in (("refined", ()), ("polished", (2.5, 1.5, 1.0))):
        dists = []
        for seed in range(4):
            est = ransac_pose(
                P,
                aerial,
                ground,
                rounds=5,
                samples_per_round=1024,
                hypotheses_per_round=20,
                generator=torch.Generator().manual_seed(seed),
                scale_range=(0.8, 1.25),
                polish=polish,
            )
            dists.append(float((est.t - true_t).norm()))
        errors[name] = sum(dists) / len(dists)
    # grid snapping leaves up to 0.9 m per point; averaging over all ~250 true matches removes most of it
    assert errors["polished"] < 0.05
    assert errors["polished"] < errors["refined"]


def _along_the_street(seed=0):
    """12 distinctive ground points 8–25 m from the camera matched at the true pose, and the near road
    (every aerial point within 4.9 m of the camera: plain asphalt, repeated markings) matched at a
    look-alike place 9 m further along the street, where it fits as well."""
    gen = torch.Generator().manual_seed(seed)
    aerial = torch.from_numpy(aerial_grid_xy(72.0, 41)).float()
    true_t, fake_t = torch.tensor([2.0, -3.0]), torch.tensor([11.0, -3.0])
    r = 8.0 + 17.0 * torch.rand(12, generator=gen)
    phi = 2 * math.pi * torch.rand(12, generator=gen)
    far = torch.stack([r * torch.cos(phi), r * torch.sin(phi)], 1)
    near_target = ((aerial - fake_t).norm(dim=1) < 4.9).nonzero()[:, 0]
    ground = torch.cat([far, aerial[near_target] - fake_t])
    target = torch.cat([torch.cdist(far + true_t, aerial).argmin(1), near_target])
    P = _confident_matches(len(aerial), target, gen)
    return P, aerial, ground, true_t, fake_t


def test_choosing_beyond_the_near_ground_finds_the_place_not_its_look_alike():
    P, aerial, ground, true_t, fake_t = _along_the_street()
    settings = solver_settings("precise", metric_depth=True)
    kwargs = dict(
        samples_per_round=2048, scale_range=METRIC_SCALE_RANGE, polish=POLISH_RADII_M, likelihood=True
    )
    all_tokens = ransac_pose(P, aerial, ground, generator=torch.Generator().manual_seed(0), **kwargs)
    assert float((all_tokens.t - fake_t).norm()) < 1.0  # the many near tokens outvote the distinctive ones
    chosen = ransac_pose(
        P, aerial, ground, generator=torch.Generator().manual_seed(0), choose_beyond_m=NEAR_GROUND_M, **kwargs
    )
    assert settings["choose_beyond_m"] == NEAR_GROUND_M == 5.0
    assert float((chosen.t - true_t).norm()) < 0.3  # polish and likelihood over all tokens stay there
    assert bool((ground[chosen.ground_index].norm(dim=1) >= NEAR_GROUND_M).all())  # judged on far points
    # only near points: too few matches beyond 5 m, so the pose is chosen on all of them rather than none
    near = ground.norm(dim=1) < NEAR_GROUND_M
    only_near = ransac_pose(
        P[:, near],
        aerial,
        ground[near],
        generator=torch.Generator().manual_seed(0),
        choose_beyond_m=5.0,
        **kwargs,
    )
    assert only_near.valid and float((only_near.t - fake_t).norm()) < 1.0


def test_likelihood_refinement_does_not_slide_to_a_look_alike():
    """Started at the true pose, the EM over all tokens follows the near road 9 m along the street; the
    refinement is local, so the start is kept (``refine.MAX_SHIFT_M``)."""
    P, aerial, ground, true_t, fake_t = _along_the_street()
    start = torch.eye(2), true_t.clone(), torch.tensor(1.0)
    _, slid, _ = maximum_likelihood_pose(P, aerial, ground, *start, scale_range=METRIC_SCALE_RANGE)
    assert float((slid - fake_t).norm()) < 0.5
    _, kept, _ = maximum_likelihood_pose(
        P, aerial, ground, *start, scale_range=METRIC_SCALE_RANGE, max_shift_m=MAX_SHIFT_M
    )
    assert torch.equal(kept, true_t)


def _flat_ground_street(seed=0):
    """Flat-ground depth: the road within 12 m of the camera lifted exactly, the buildings 12–20 m to the
    east lifted 25 % too far (flat-ground depth puts everything standing where its foot would be behind)."""
    gen = torch.Generator().manual_seed(seed)
    aerial = torch.from_numpy(aerial_grid_xy(72.0, 41)).float()
    true_t = torch.tensor([1.3, -2.1])  # R = I: the ground frame is the aerial frame moved by t
    road = aerial[(aerial - true_t).norm(dim=1) < 12.0] - true_t
    along_street_m = 40 * torch.rand(150, generator=gen) - 20  # aerial x: down the image (south)
    east_m = 12 + 8 * torch.rand(150, generator=gen)  # aerial y: right (east)
    walls_target = torch.cdist(torch.stack([along_street_m, east_m], 1) + true_t, aerial).argmin(1)
    ground = torch.cat([road, 1.25 * (aerial[walls_target] - true_t)])
    target = torch.cat([torch.cdist(road + true_t, aerial).argmin(1), walls_target])
    P = _confident_matches(len(aerial), target, gen)
    return P, aerial, ground, true_t


def test_flat_ground_refinement_keeps_the_scale_at_one():
    """The buildings lifted too far pull a free scale below 1 and the position towards them; at scale 1
    the exact road decides and the buildings are outliers."""
    P, aerial, ground, true_t = _flat_ground_street()
    poses = {}
    for flat in (False, True):
        settings = solver_settings("precise", metric_depth=True, flat_ground=flat)
        assert settings["likelihood_unit_scale"] is flat
        poses[flat] = ransac_pose(
            P, aerial, ground, generator=torch.Generator().manual_seed(0), samples_per_round=2048, **settings
        )
    assert float(poses[False].s) < 0.9 and float((poses[False].t - true_t).norm()) > 0.2
    assert float(poses[True].s) == 1.0 and float((poses[True].t - true_t).norm()) < 0.02


def test_solver_settings_name_the_additions():
    assert solver_settings("published", metric_depth=True) == {}
    precise = solver_settings("precise", metric_depth=True)
    assert precise["scale_range"] == METRIC_SCALE_RANGE and precise["polish"] == POLISH_RADII_M
    assert precise["likelihood"] is True
    assert precise["choose_beyond_m"] == NEAR_GROUND_M
    assert precise["likelihood_unit_scale"] is False  # depth maps: the refinement solves the scale
    pinhole = solver_settings("precise", metric_depth=True, panorama=False, flat_ground=True)
    assert pinhole["choose_beyond_m"] is None and pinhole["likelihood_unit_scale"] is False
    relative = solver_settings("precise", metric_depth=False)
    assert relative["scale_range"] is None and relative["choose_beyond_m"] is None  # no metres to go by
    with pytest.raises(ValueError, match="unknown solver 'fast'"):
        solver_settings("fast", metric_depth=True)
    assert SOLVERS == ("precise", "published") and DEFAULT_SOLVER == "precise"  # the UI lists these keys


def test_sampler_draws_are_the_inverse_cdf_of_the_whole_masked_P():
    gen = torch.Generator().manual_seed(5)
    P = torch.rand(37, 150, generator=gen) ** 8  # many tiny entries; rows are not whole blocks (64)
    columns = torch.rand(150, generator=gen) < 0.6
    sampler = CorrespondenceSampler(P, columns)
    cdf = torch.cumsum((P * columns).double().reshape(-1), 0)  # the plain inverse CDF, P-sized
    u = torch.rand(20_000, generator=torch.Generator().manual_seed(9), dtype=torch.float64) * cdf[-1]
    plain = torch.searchsorted(cdf, u, right=True)
    drawn = sampler._draw(20_000, torch.Generator().manual_seed(9))
    assert float((drawn == plain).double().mean()) > 0.999  # the same draws but for float64 rounding
    assert bool(columns[drawn % 150].all()) and bool((P.reshape(-1)[drawn] > 0).all())
    assert sampler.positive == int(torch.count_nonzero(P * columns))


def test_sampler_never_draws_masked_columns_even_when_peaked():
    P = torch.full((20, 70), 1e-6)
    P[3, 5] = P[4, 66] = 50.0  # the two heaviest entries lie in masked columns
    P[7, 10] = 10.0
    columns = torch.ones(70, dtype=torch.bool)
    columns[[5, 66]] = False
    sampler = CorrespondenceSampler(P, columns)
    gen = torch.Generator().manual_seed(0)
    for drawn in (sampler._draw_peaked(300, gen), sampler._draw_peaked(1200, gen)):
        assert len(drawn) == len(set(drawn.tolist())) and bool(columns[drawn % 70].all())
    a, g = sampler.draw(5, gen)
    assert (int(a[0]), int(g[0])) != (3, 5) and bool(columns[g].all())


def test_the_sampler_reads_a_float32_P_without_copying_it():
    P = torch.rand(300, 40, generator=torch.Generator().manual_seed(6))
    assert CorrespondenceSampler(P).P.data_ptr() == P.data_ptr()
    negative = P.clone()
    negative[0, 0] = -1.0  # invalid entries are clamped, in a copy: the caller's P is left as it is
    sampler = CorrespondenceSampler(negative)
    assert float(sampler.P[0, 0]) == 0.0 and float(negative[0, 0]) == -1.0


def test_sampler_scans_P_a_chunk_at_a_time_and_keeps_its_race_small(monkeypatch):
    monkeypatch.setattr(ransac, "_CHUNK_ENTRIES", 1000)  # 37 rows of 150: several chunks
    gen = torch.Generator().manual_seed(7)
    P = torch.rand(37, 150, generator=gen) ** 8
    columns = torch.rand(150, generator=gen) < 0.6
    weights = (P * columns).reshape(-1)
    sampler = CorrespondenceSampler(P, columns)
    assert sampler.total == pytest.approx(float(weights.double().sum()), rel=1e-9)
    assert torch.equal(sampler._heaviest(50), torch.sort(torch.topk(weights, 50).indices).values)
    sampler._split_heavy(50)  # the threshold rule: all above 16^-k × 16 × the mean
    assert len(sampler._heavy) >= 50 and bool((weights[sampler._heavy] > 0).all())
    monkeypatch.setattr(ransac, "HEAVY_CAP", 1)  # more than 1 × 50 above the threshold: the 50 heaviest
    sampler._split_heavy(50)
    assert torch.equal(sampler._heavy, sampler._heaviest(50))
    light = sampler._draw(5000, gen, light=True)
    assert not bool(torch.isin(light, sampler._heavy).any()) and bool(columns[light % 150].all())
