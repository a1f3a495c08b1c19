"""Correspondences drawn from P: exact sampling without replacement, the sampler's blocks and race, minimal
sets (``core/solver/sampling.py``)."""

import collections
import math

import pytest
import torch

import loc2.core.solver.sampling as sampling
from loc2.core.solver.sampling import CorrespondenceSampler, minimal_sets


def _chi_square_bound(df: int, z: float = 3.29) -> float:
    """The chi-square quantile at the standard normal quantile ``z`` (3.29: 1 − 0.0005), Wilson–Hilferty."""
    return df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3


def _exact_first_and_pairs(q: torch.Tensor) -> tuple[torch.Tensor, dict[tuple[int, int], float]]:
    """Sequential sampling of two without replacement ∝ q, by enumeration: the first draw's probabilities and
    each unordered pair's."""
    q = (q / q.sum()).double()
    pairs = {}
    for i in range(len(q)):
        for j in range(i + 1, len(q)):
            pairs[(i, j)] = float(q[i] * q[j] / (1 - q[i]) + q[j] * q[i] / (1 - q[j]))
    return q, pairs


def _chi_square(first: torch.Tensor, second: torch.Tensor, q: torch.Tensor) -> tuple[float, float]:
    """Chi-square statistics of the first draws and of the unordered pairs against the exact probabilities."""
    n = len(first)
    p_first, p_pairs = _exact_first_and_pairs(q)
    counts = torch.bincount(first, minlength=len(q)).double()
    chi_first = float(((counts - n * p_first) ** 2 / (n * p_first)).sum())
    low, high = torch.minimum(first, second).tolist(), torch.maximum(first, second).tolist()
    observed = collections.Counter(zip(low, high, strict=True))
    chi_pairs = sum((observed.get(pair, 0) - n * p) ** 2 / (n * p) for pair, p in p_pairs.items())
    return chi_first, chi_pairs


WEIGHTS_4x5 = {
    "spread": torch.tensor([7, 3, 12, 1, 9, 4, 15, 2, 6, 11, 5, 8, 14, 10, 3, 13, 6, 2, 9, 4.0]),  # all light
    "peaked": torch.tensor([60, 1, 2, 1, 3, 45, 1, 2, 2, 1, 30, 3, 1, 2, 1, 1, 2, 3, 1, 2.0]),  # heavy race
}


@pytest.mark.parametrize(
    ("weights", "explicit"), [("spread", False), ("peaked", False), ("spread", True), ("peaked", True)]
)
def test_draws_follow_sequential_sampling_without_replacement_exactly(weights, explicit, monkeypatch):
    """First draws and unordered pairs of 6,000 rounds of two draws from a 4 × 5 P against the exact
    probabilities (enumeration), by chi-square at the 1 − 0.0005 quantile; ``explicit``: the light
    entries race one by one instead of arriving as a Poisson process."""
    if explicit:
        monkeypatch.setattr(sampling, "_EXPLICIT_SHARE", 1e9)
    q = WEIGHTS_4x5[weights]
    sampler = CorrespondenceSampler(q.view(4, 5))
    a, g = sampler.draw_rounds(6000, 2, torch.Generator().manual_seed(0))
    idx = a * 5 + g
    assert bool((idx[:, 0] != idx[:, 1]).all())
    if weights == "peaked":
        assert len(sampler._plans[2].heavy) > 0  # the explicit race of the heavy entries ran
    chi_first, chi_pairs = _chi_square(idx[:, 0], idx[:, 1], q)
    assert chi_first < _chi_square_bound(19)
    assert chi_pairs < _chi_square_bound(189)


def test_the_chi_square_bounds_fail_a_sampler_that_is_slightly_wrong():
    """The same statistics reject draws ∝ q^1.5 (without replacement) where q is meant: the test has teeth."""
    q = WEIGHTS_4x5["spread"]
    gen = torch.Generator().manual_seed(0)
    wrong = torch.stack([torch.multinomial(q**1.5, 2, replacement=False, generator=gen) for _ in range(6000)])
    chi_first, chi_pairs = _chi_square(wrong[:, 0], wrong[:, 1], q)
    assert chi_first > _chi_square_bound(19) and chi_pairs > _chi_square_bound(189)


@pytest.mark.slow
def test_draws_of_a_peaked_P_match_torch_multinomial_without_replacement():
    """On a VIGOR-like peaked P (a few hundred strong matches in many weak entries) the mean P of the draws
    at each position of the sequence matches torch.multinomial's (the published sampling)."""
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(300, 400, generator=gen)
    logits[torch.randint(0, 300, (400,), generator=gen), torch.arange(400)] += 8.0
    P = torch.softmax(logits, 0) * torch.softmax(logits, 1)
    k, rounds = 600, 200
    a, g = CorrespondenceSampler(P).draw_rounds(rounds, k, gen)
    ours = P[a, g].double()
    theirs = torch.stack(
        [P.reshape(-1)[torch.multinomial(P.reshape(-1), k, generator=gen)] for _ in range(rounds)]
    )
    for part in (slice(0, 100), slice(350, 450), slice(500, 600)):  # strong, the change-over, weak
        m_ours, m_theirs = float(ours[:, part].mean()), float(theirs[:, part].double().mean())
        assert m_ours == pytest.approx(m_theirs, rel=0.05)
    assert len({tuple(r) for r in (a * 400 + g).tolist()}) == rounds  # rounds differ


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
    for count in (300, 1200):
        a, g = sampler.draw_rounds(3, count, gen)
        for row in (a * 70 + g).tolist():
            assert len(row) == len(set(row)) == count
        assert bool(columns[g].all())
    a, g = sampler.draw(5, gen)
    assert (int(a[0]), int(g[0])) == (7, 10) and bool(columns[g].all())


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
    assert sampler.total == pytest.approx(float(weights.double().sum()), rel=1e-6)
    block = sampling.SAMPLER_BLOCK
    first_blocks = sampler.block_max.view(37, -(-150 // block))[:, 0]
    assert torch.equal(first_blocks, (P * columns)[:, :block].amax(1))
    plan = sampler._plan(50)
    heavy = (weights.double() > plan.tau).nonzero()[:, 0]
    assert torch.equal(plan.heavy, heavy) and len(heavy) <= sampling.HEAVY_CAP * 50
    assert float(plan.light_cdf[-1]) == pytest.approx(
        float(weights.double().sum() - weights[heavy].double().sum())
    )
    light = sampler._draw(5000, gen, plan)
    assert not bool(torch.isin(light, plan.heavy).any()) and bool(columns[light % 150].all())


def test_rounds_are_independent_and_draw_their_count_even_from_a_support_just_large_enough():
    P = torch.zeros(30, 40)
    P.view(-1)[torch.randperm(1200, generator=torch.Generator().manual_seed(2))[:100]] = torch.logspace(
        0, -12, 100
    )  # weights over 12 decades: the light tail needs the explicit race
    a, g = CorrespondenceSampler(P).draw_rounds(4, 100, torch.Generator().manual_seed(0))
    assert a.shape == (4, 100)
    for row in (a * 40 + g).tolist():
        assert sorted(row) == sorted((P.view(-1) > 0).nonzero()[:, 0].tolist())
