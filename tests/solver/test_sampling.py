"""Correspondences drawn from P: exact sampling without replacement, the sampler's blocks and race, minimal
sets (``core/solver/sampling.py``)."""

import pytest
import torch

import loc2.core.solver.sampling as sampling
from loc2.core.solver.sampling import CorrespondenceSampler, minimal_sets


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
    monkeypatch.setattr(sampling, "_CHUNK_ENTRIES", 1000)  # 37 rows of 150: several chunks
    gen = torch.Generator().manual_seed(7)
    P = torch.rand(37, 150, generator=gen) ** 8
    columns = torch.rand(150, generator=gen) < 0.6
    weights = (P * columns).reshape(-1)
    sampler = CorrespondenceSampler(P, columns)
    assert sampler.total == pytest.approx(float(weights.double().sum()), rel=1e-9)
    assert torch.equal(sampler._heaviest(50), torch.sort(torch.topk(weights, 50).indices).values)
    sampler._split_heavy(50)  # the threshold rule: all above 16^-k × 16 × the mean
    assert len(sampler._heavy) >= 50 and bool((weights[sampler._heavy] > 0).all())
    monkeypatch.setattr(sampling, "HEAVY_CAP", 1)  # more than 1 × 50 above the threshold: the 50 heaviest
    sampler._split_heavy(50)
    assert torch.equal(sampler._heavy, sampler._heaviest(50))
    light = sampler._draw(5000, gen, light=True)
    assert not bool(torch.isin(light, sampler._heavy).any()) and bool(columns[light % 150].all())
