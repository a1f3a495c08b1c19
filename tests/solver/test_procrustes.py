"""Weighted Procrustes: exact recovery, weights, scale, reflections and degenerate input."""

import math

import torch

from loc2.core.solver.procrustes import weighted_procrustes


def _random_similarity(b, gen):
    ang = torch.rand(b, generator=gen, dtype=torch.float64) * 2 * math.pi
    R = torch.stack([torch.stack([ang.cos(), -ang.sin()], -1), torch.stack([ang.sin(), ang.cos()], -1)], -2)
    s = torch.rand(b, generator=gen, dtype=torch.float64) * 5 + 0.01
    t = torch.randn(b, 2, generator=gen, dtype=torch.float64) * 50
    return R, t, s


def _apply(R, t, s, pts):
    return s[:, None, None] * torch.einsum("bij,bnj->bni", R, pts) + t[:, None]


def test_recovers_random_similarities_exactly():
    gen = torch.Generator().manual_seed(0)
    R, t, s = _random_similarity(64, gen)
    src = torch.randn(64, 20, 2, generator=gen, dtype=torch.float64) * 30
    R2, t2, s2, valid = weighted_procrustes(src, _apply(R, t, s, src))
    assert valid.all()
    assert torch.allclose(R2, R, atol=1e-9)
    assert torch.allclose(t2, t, atol=1e-8)
    assert torch.allclose(s2, s, atol=1e-9)


def test_weights_ignore_outliers_and_match_subset_solution():
    gen = torch.Generator().manual_seed(1)
    R, t, s = _random_similarity(8, gen)
    src = torch.randn(8, 30, 2, generator=gen, dtype=torch.float64) * 10
    dst = _apply(R, t, s, src)
    dst[:, 20:] += torch.randn(8, 10, 2, generator=gen, dtype=torch.float64) * 40  # outliers
    w = torch.zeros(8, 30, dtype=torch.float64)
    w[:, :20] = torch.rand(8, 20, generator=gen, dtype=torch.float64) + 0.1
    R2, t2, s2, valid = weighted_procrustes(src, dst, w)
    assert valid.all()
    assert torch.allclose(R2, R, atol=1e-9) and torch.allclose(t2, t, atol=1e-8)
    assert torch.allclose(s2, s, atol=1e-9)
    # unweighted, the outliers must spoil the fit
    _, t3, _, _ = weighted_procrustes(src, dst)
    assert (t3 - t).norm(dim=-1).max() > 0.1


def test_without_scale_returns_unit_scale_and_best_rigid_fit():
    gen = torch.Generator().manual_seed(2)
    R, t, _ = _random_similarity(4, gen)
    src = torch.randn(4, 15, 2, generator=gen, dtype=torch.float64)
    dst = _apply(R, t, torch.ones(4, dtype=torch.float64), src)
    R2, t2, s2, valid = weighted_procrustes(src, dst, with_scale=False)
    assert valid.all() and torch.equal(s2, torch.ones(4, dtype=torch.float64))
    assert torch.allclose(R2, R, atol=1e-9) and torch.allclose(t2, t, atol=1e-9)


def test_reflected_data_gives_a_proper_rotation():
    gen = torch.Generator().manual_seed(3)
    src = torch.randn(1, 10, 2, generator=gen, dtype=torch.float64)
    dst = src * torch.tensor([1.0, -1.0], dtype=torch.float64)  # a mirror image
    R, _, s, valid = weighted_procrustes(src, dst)
    assert valid.all()
    assert torch.allclose(torch.linalg.det(R), torch.ones(1, dtype=torch.float64))
    assert torch.isfinite(s).all()


def test_degenerate_sets_are_invalid_not_nan():
    pts = torch.tensor([[[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]])  # coincident
    collinear = torch.tensor([[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]])
    zero_w = torch.zeros(1, 3)
    nan_pts = torch.full((1, 3, 2), float("nan"))
    for src, dst, w in [
        (pts, pts + 1, None),
        (collinear, collinear * 2, None),
        (collinear + torch.tensor([0.0, 1.0]), collinear, zero_w),
        (nan_pts, nan_pts, None),
    ]:
        R, t, s, valid = weighted_procrustes(src, dst, w)
        assert not valid.any()
        assert torch.isfinite(R).all() and torch.isfinite(t).all() and torch.isfinite(s).all()


def test_unbatched_input():
    src = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    dst = src * 2 + torch.tensor([3.0, 4.0])
    R, t, s, valid = weighted_procrustes(src, dst)
    assert R.shape == (2, 2) and t.shape == (2,) and bool(valid)
    assert torch.allclose(t, torch.tensor([3.0, 4.0]), atol=1e-5) and abs(float(s) - 2.0) < 1e-5
