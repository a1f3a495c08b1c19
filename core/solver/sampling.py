"""Correspondences drawn from the matching probabilities P: exact sampling without replacement ∝ P.

:class:`CorrespondenceSampler` draws distinct (aerial, ground) pairs ∝ P (A, G) for RANSAC's rounds and for
training; :func:`minimal_sets` draws each hypothesis' minimal set within a round's sample.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import NamedTuple

import torch

from ..model.runtime import fixed_order_sum

SAMPLER_BLOCK = 32  # entries of a row of P per block of the sampler's two-level cumulative sum
HEAVY_SHARE = 4  # an entry is heavy above total / (HEAVY_SHARE · count): at most HEAVY_SHARE · count of them
_CHUNK_ENTRIES = 1 << 20  # entries of P a full pass over it handles at a time (its temporaries' size)
_BLOCKS_AT_ONCE = 1 << 13  # blocks the sampler sums entry by entry at a time (~10 temporaries of 4 MB)
HEAVY_CAP = 8  # the heavy entries are at most this many times the count drawn
REPEAT_RATE = 0.05  # a light entry's expected arrivals before the horizon, at most
_EXPLICIT_SHARE = 16  # light arrivals above 1/16 of P's entries: race every light entry explicitly instead


class _RacePlan(NamedTuple):
    """What a draw of ``count`` pairs needs, found once per P and count: the heavy entries (row-major index,
    float64 weight), the weight ``tau`` above which an entry is heavy, and the light entries' cumulative
    block sums (float64)."""

    heavy: torch.Tensor
    heavy_weight: torch.Tensor
    tau: float
    light_cdf: torch.Tensor

    @property
    def light_mass(self) -> float:
        return float(self.light_cdf[-1]) if len(self.light_cdf) else 0.0


class CorrespondenceSampler:
    """Draws distinct (aerial, ground) pairs ∝ P: sequential sampling without replacement.

    Exactly the exponential race: entry i arrives at E_i / p_i (E_i ~ Exp(1)); the ``count`` earliest
    arrivals, in order of arrival, are distributed as ``count`` draws ∝ p without replacement. Computed
    cheaply: the entries above total / (HEAVY_SHARE · count) (at most HEAVY_SHARE · count of them) race
    explicitly; the light ones' first arrivals come from a Poisson process of rate Σp_light whose arrivals
    pick entries ∝ p (the superposition of their races), up to a horizon where ``count`` distinct entries are
    expected in all, extended if short. P is read once per image: every round reuses the block sums and
    the heavy entries (:meth:`draw_rounds`).

    P (A, G) is read in place (a copy only when it is not float32 or has negative entries): the sampler
    keeps a float32 sum and maximum per block of ``SAMPLER_BLOCK`` entries of a row and the float64
    cumulative sums of all and of the light blocks (together about a fifth of P's size), and reads a block entry by entry (float64) only where a draw lands, so each draw is the
    inverse CDF of all of P without a P-sized cumulative sum. ``columns`` (G,) bool: only these ground
    tokens are drawn (the others as if their column of P were 0), without a masked copy of P.
    Which random numbers are drawn depends on P, the count and the seed only, never on the thread count.
    """

    def __init__(self, P: torch.Tensor, columns: torch.Tensor | None = None):
        if P.dim() != 2:
            raise ValueError(f"P must be (A, G), got shape {tuple(P.shape)}")
        valid = P.dtype == torch.float32 and (P.numel() == 0 or float(P.min()) >= 0)
        self.P = P if valid else P.float().clamp_min(0)
        self.shape = self.P.shape
        self.columns = None if columns is None else columns.to(self.P.device, torch.float32)
        self.blocks_per_row = -(-self.shape[1] // SAMPLER_BLOCK)
        self.block_sum, self.block_max = self._scan()
        self.block_cdf = torch.cumsum(self.block_sum, 0, dtype=torch.float64)
        self.total = float(self.block_cdf[-1]) if len(self.block_cdf) else 0.0
        self._plans: dict[int, _RacePlan] = {}

    # ---------------------------------------------------------------------------- one pass over P
    def _row_chunks(self) -> Iterator[tuple[int, torch.Tensor]]:
        """(first row, weights of the rows (R, G) float32): P's rows times ``columns``, a chunk at a time."""
        rows = max(1, _CHUNK_ENTRIES // max(1, self.shape[1]))
        for r0 in range(0, self.shape[0], rows):
            w = self.P[r0 : r0 + rows]
            yield r0, w if self.columns is None else w * self.columns

    def _scan(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each block's sum and largest entry (A · blocks_per_row,) float32, row-major: P's only full pass.
        A sum of 64 entries needs no float64; the cumulative sum over the blocks does."""
        a, g = self.shape
        full = g // SAMPLER_BLOCK
        sums = torch.zeros(a, self.blocks_per_row, dtype=torch.float32, device=self.P.device)
        peaks = torch.zeros_like(sums)
        for r0, w in self._row_chunks():
            rows = slice(r0, r0 + len(w))
            if full:
                blocks = w[:, : full * SAMPLER_BLOCK].unflatten(1, (full, SAMPLER_BLOCK))
                sums[rows, :full], peaks[rows, :full] = blocks.sum(-1), blocks.amax(-1)
            if g % SAMPLER_BLOCK:
                sums[rows, full], peaks[rows, full] = (
                    w[:, full * SAMPLER_BLOCK :].sum(-1),
                    w[:, full * SAMPLER_BLOCK :].amax(-1),
                )
        return sums.reshape(-1), peaks.reshape(-1)

    # --------------------------------------------------------------------------- reading blocks
    def _weights_at(self, flat_index: torch.Tensor) -> torch.Tensor:
        """The weights (float32) of entries given by their row-major index into P."""
        w = self.P.reshape(-1)[flat_index]
        return w if self.columns is None else w * self.columns[flat_index % self.shape[1]]

    def _block_weights(self, blocks: torch.Tensor, tau: float = math.inf) -> torch.Tensor:
        """The weights (n, SAMPLER_BLOCK) float64 of the entries of ``blocks``: 0 past a row's end and for
        every entry above ``tau`` (a heavy one). Each block is one row of a sliding-window view of P."""
        g = self.shape[1]
        flat = self.P.reshape(-1)
        col = blocks % self.blocks_per_row
        start = (blocks // self.blocks_per_row) * g + col * SAMPLER_BLOCK
        last = flat.numel() - SAMPLER_BLOCK  # windows starting later would run past P's end
        late = start > last
        w = (
            flat.unfold(0, SAMPLER_BLOCK, 1).index_select(0, start.clamp(0, max(last, 0)))
            if last >= 0
            else None
        )
        if last < 0 or bool(late.any()):
            span = (start[late, None] + torch.arange(SAMPLER_BLOCK, device=flat.device)).clamp_max(
                len(flat) - 1
            )
            tail = flat[span]
            w = tail if last < 0 else w.index_put_((late.nonzero()[:, 0],), tail)
        inside = torch.arange(SAMPLER_BLOCK, device=flat.device) < (g - col * SAMPLER_BLOCK)[:, None]
        if self.columns is not None:
            columns = torch.nn.functional.pad(self.columns, (0, self.blocks_per_row * SAMPLER_BLOCK - g))
            w = w * columns.view(self.blocks_per_row, SAMPLER_BLOCK)[col]
        w = torch.where(inside, w, 0.0).double()
        return w if tau == math.inf else w.masked_fill_(w > tau, 0.0)

    def _entry_index(self, blocks: torch.Tensor, within: torch.Tensor) -> torch.Tensor:
        """Row-major indices of the entries at positions ``within`` of ``blocks``."""
        col = (blocks % self.blocks_per_row) * SAMPLER_BLOCK + within
        return (blocks // self.blocks_per_row) * self.shape[1] + col

    def _draw(self, n: int, generator, plan: _RacePlan | None = None) -> torch.Tensor:
        """``n`` row-major indices drawn with replacement ∝ the weights (with a ``plan``: the light ones)."""
        cdf, tau = (self.block_cdf, math.inf) if plan is None else (plan.light_cdf, plan.tau)
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=cdf.device) * cdf[-1]
        parts = [self._invert(part, cdf, tau) for part in u.split(_BLOCKS_AT_ONCE)]
        return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long, device=cdf.device)

    def _invert(self, u: torch.Tensor, cdf: torch.Tensor, tau: float) -> torch.Tensor:
        """The entries whose cumulative weight interval holds each ``u``: the block (``cdf``: the blocks'
        cumulative sums), then the entry at the same fraction of the block's own float64 sum."""
        block = torch.searchsorted(cdf, u, right=True).clamp_max(len(cdf) - 1)
        before = torch.where(block > 0, cdf[(block - 1).clamp_min(0)], 0.0)
        width = cdf[block] - before
        fraction = torch.where(width > 0, (u - before) / width.clamp_min(1e-300), 0.0).clamp(0.0, 1.0)
        c = torch.cumsum(self._block_weights(block, tau), 1)
        within = torch.searchsorted(c, (fraction * c[:, -1])[:, None], right=True)
        # rounding can carry u past a block's last positive entry: never pick a zero-weight one
        last = torch.searchsorted(
            c, c[:, -1:].contiguous()
        )  # the first entry where the block's sum is reached
        return self._entry_index(block, torch.minimum(within, last)[:, 0])

    # ------------------------------------------------------------------------------------ support
    def _positive_blocks(self) -> torch.Tensor:
        return (self.block_sum > 0).nonzero()[:, 0]

    @property
    def positive(self) -> int:
        """The number of entries with positive weight (read from the positive blocks only)."""
        return sum(
            int(torch.count_nonzero(self._block_weights(part)))
            for part in self._positive_blocks().split(_BLOCKS_AT_ONCE)
        )

    def _support(self, count: int) -> int:
        """min(count, positive entries): each positive block holds at least one, so only when fewer than
        ``count`` blocks are positive are their entries counted."""
        if len(self._positive_blocks()) >= count:
            return count
        return min(count, self.positive)

    # --------------------------------------------------------------------------------- the race
    def _plan(self, count: int) -> _RacePlan:
        """How ``count`` draws split P into heavy and light entries. Any split is exact; this one keeps the
        light entries' repeats rare: it starts from the entries above total / (HEAVY_SHARE · count) and
        lowers the bound to ``REPEAT_RATE`` / the expected horizon while that adds heavy entries (at most
        ``HEAVY_CAP`` · count of them), so that each light entry arrives at most ``REPEAT_RATE`` times on
        average before the horizon."""
        if count not in self._plans:
            plan = self._split(self.total / (HEAVY_SHARE * count))
            for _ in range(8):
                lower = REPEAT_RATE / _expected_horizon(plan.heavy_weight, plan.light_mass, count)
                if lower >= plan.tau:
                    break
                candidate = self._split(lower)
                if len(candidate.heavy) > HEAVY_CAP * count:
                    break
                done = len(candidate.heavy) == len(plan.heavy)
                plan = candidate
                if done:
                    break
            self._plans[count] = plan
        return self._plans[count]

    def _split(self, tau: float) -> _RacePlan:
        """The entries above ``tau`` (heavy; only blocks whose largest entry is above it hold any) and the
        light blocks' cumulative sums."""
        blocks = (self.block_max.double() > tau).nonzero()[:, 0]
        light_sum = self.block_sum.double()
        heavy = [torch.zeros(0, dtype=torch.long, device=self.P.device)]
        for part in blocks.split(_BLOCKS_AT_ONCE):
            w = self._block_weights(part)
            is_heavy = w > tau
            at = is_heavy.nonzero()  # blocks ascending, entries ascending: row-major order
            heavy.append(self._entry_index(part[at[:, 0]], at[:, 1]))
            light_sum[part] = w.masked_fill(is_heavy, 0.0).sum(1)
        heavy_idx = torch.cat(heavy)
        return _RacePlan(heavy_idx, self._weights_at(heavy_idx).double(), tau, torch.cumsum(light_sum, 0))

    def draw(self, count: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` distinct pairs (aerial index (K,), ground index (K,)), in the order they were drawn;
        fewer when P has fewer positive entries."""
        ia, ig = self.draw_rounds(1, count, generator)
        return ia[0], ig[0]

    def draw_rounds(
        self, rounds: int, count: int, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``rounds`` independent draws of ``count`` distinct pairs: aerial and ground indices (rounds, K),
        each row in draw order; K = min(count, positive entries). P is not read again: all rounds race at
        once on the heavy entries and the light blocks found for ``count``."""
        k = self._support(count)
        if k == 0 or rounds == 0:
            empty = torch.zeros(rounds, 0, dtype=torch.long, device=self.P.device)
            return empty, empty
        plan = self._plan(k)
        keys = torch.empty(rounds, len(plan.heavy), dtype=torch.float64, device=self.P.device)
        keys = keys.exponential_(generator=generator) / plan.heavy_weight
        start = torch.zeros(rounds, dtype=torch.float64, device=keys.device)
        end = _horizons(torch.sort(keys, 1).values, plan.light_mass, k + 3 * math.isqrt(k) + 16)
        light = [
            torch.zeros(0, dtype=dtype, device=keys.device)
            for dtype in (torch.long, torch.long, torch.float64)
        ]
        active = torch.ones(rounds, dtype=torch.bool, device=keys.device)
        while True:
            *found, new_end = self._light_arrivals(plan, start, end, active, k, generator)
            light = [torch.cat([old, new]) for old, new in zip(light, found, strict=True)]
            end = end if new_end is None else new_end
            rows, index, time = _first_arrivals(plan.heavy, keys, end, *light, self.P.numel())
            have = torch.bincount(rows, minlength=rounds)
            active = (have < k) & torch.isfinite(end)
            if not bool(active.any()):
                break
            # the light arrivals on each new stretch of time are independent of those before it
            start, end = torch.where(active, end, start), torch.where(active, 2 * end, end)
        idx = _earliest_per_round(rows, index, time, have, k)
        return idx // self.shape[1], idx % self.shape[1]

    def _light_arrivals(
        self, plan: _RacePlan, start: torch.Tensor, end: torch.Tensor, active: torch.Tensor, k: int, generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The light entries' arrivals between ``start`` and ``end`` (rounds,) in the ``active`` rounds: their
        rounds, row-major indices and times (an entry may repeat), and the rounds' new ends (None: as
        given). A Poisson number of draws ∝ p at uniform times; a round where that would take more draws
        than a pass over P races every light entry explicitly instead (its end is then ∞)."""
        device = start.device
        none = torch.zeros(0, dtype=torch.long, device=device)
        if plan.light_mass == 0:
            return none, none, torch.zeros(0, dtype=torch.float64, device=device), None
        span = torch.where(active, end - start, 0.0)
        expected = plan.light_mass * span
        explicit = active & ~(expected <= max(self.P.numel() / _EXPLICIT_SHARE, 4 * k))  # (∞ and NaN too)
        n = torch.poisson(torch.where(explicit, 0.0, expected), generator=generator).long()
        rows = torch.repeat_interleave(torch.arange(len(start), device=device), n)
        index = self._draw(len(rows), generator, plan)
        time = torch.rand(len(rows), generator=generator, dtype=torch.float64, device=device)
        time = start[rows] + time * span[rows]
        if not bool(explicit.any()):
            return rows, index, time, None
        parts = [(rows, index, time)]
        for r in explicit.nonzero()[:, 0].tolist():
            idx, t = self._explicit_light(plan, float(start[r]), k, generator)
            parts.append((torch.full_like(idx, r), idx, t))
        rows, index, time = (torch.cat(p) for p in zip(*parts, strict=True))
        return rows, index, time, torch.where(explicit, math.inf, end)

    def _explicit_light(
        self, plan: _RacePlan, start: float, k: int, generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every light entry's first arrival after ``start`` (start + E / p, memoryless), a chunk of P at a
        time, keeping each chunk's ``k`` earliest: (row-major indices, times)."""
        found, found_time = [], []
        for r0, w in self._row_chunks():
            w = w.reshape(-1).double()
            w = w.masked_fill(w > plan.tau, 0.0)
            t = torch.empty_like(w).exponential_(generator=generator).div_(w).add_(start)  # E/0 = ∞
            best = torch.topk(t, min(k, len(t)), largest=False).indices
            best = best[torch.isfinite(t[best])]
            found.append(best + r0 * self.shape[1])
            found_time.append(t[best])
        return torch.cat(found), torch.cat(found_time)


def _expected_horizon(heavy_weight: torch.Tensor, light_mass: float, target: int) -> float:
    """About (within 1 %) the time T at which ``target`` distinct arrivals are expected:
    Σ_heavy (1 − exp(−p·T)) + light_mass·T = target (∞ when the entries cannot reach it)."""
    if light_mass == 0 and target > len(heavy_weight):
        return math.inf

    def expected(t: float) -> float:
        return float(fixed_order_sum(1.0 - torch.exp(heavy_weight * -t))) + light_mass * t

    hi = target / (light_mass + float(fixed_order_sum(heavy_weight)))
    while expected(hi) < target:
        hi *= 2
    lo = hi / 2
    while hi > 1.01 * lo:
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if expected(mid) < target else (lo, mid)
    return hi


def _horizons(sorted_keys: torch.Tensor, light_mass: float, target: int) -> torch.Tensor:
    """Per round (rows of the heavy keys (rounds, m), sorted), the time by which ``target`` arrivals are
    expected: the heavy ones whose keys precede it plus light_mass × time light ones (∞ without light
    entries: then every heavy key counts)."""
    rounds, m = sorted_keys.shape
    if light_mass == 0:
        return torch.full((rounds,), math.inf, dtype=torch.float64, device=sorted_keys.device)
    if m == 0:
        return torch.full((rounds,), target / light_mass, dtype=torch.float64, device=sorted_keys.device)
    arrived = torch.arange(1, m + 1, dtype=torch.float64, device=sorted_keys.device)
    hit = (arrived + light_mass * sorted_keys) >= target
    j = torch.argmax(hit.int(), 1)  # j heavy keys precede sorted_keys[:, j]
    before = torch.where(j > 0, sorted_keys.gather(1, (j - 1).clamp_min(0)[:, None])[:, 0], 0.0)
    at = sorted_keys.gather(1, j[:, None])[:, 0]
    reached = torch.minimum(at, torch.maximum(before, (target - j) / light_mass))
    short = torch.maximum(sorted_keys[:, -1], torch.full_like(at, (target - m) / light_mass))
    return torch.where(hit.any(1), reached, short)


def _first_arrivals(
    heavy: torch.Tensor,
    keys: torch.Tensor,
    end: torch.Tensor,
    light_rows: torch.Tensor,
    light: torch.Tensor,
    light_time: torch.Tensor,
    numel: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The entries that arrived before each round's ``end`` (rounds,): (round, row-major index, first arrival
    time) of the heavy ones whose keys (rounds, m) are below it and of each light entry at its earliest."""
    early = keys < end[:, None]
    heavy_rows, heavy_at = early.nonzero().unbind(1)
    uniq, inverse = torch.unique(light_rows * numel + light, return_inverse=True)
    first = torch.full((len(uniq),), math.inf, dtype=torch.float64, device=keys.device)
    first.scatter_reduce_(0, inverse, light_time, reduce="amin")
    rows = torch.cat([heavy_rows, uniq // numel])
    return rows, torch.cat([heavy[heavy_at], uniq % numel]), torch.cat([keys[early], first])


def _earliest_per_round(
    rows: torch.Tensor, index: torch.Tensor, time: torch.Tensor, have: torch.Tensor, k: int
) -> torch.Tensor:
    """The ``k`` earliest arrivals of each round, in arrival order: row-major indices (rounds, k).

    ``rows`` comes in two ascending runs (the heavy arrivals, then the light ones); each round's arrivals
    are laid out in a row in their given order and sorted stably by time, so ties keep that order."""
    rounds = len(have)
    runs = (rows[1:] < rows[:-1]).nonzero()[:, 0] + 1  # where the second run starts (if both are there)
    split = int(runs[0]) if len(runs) else len(rows)
    column = torch.empty_like(rows)
    taken = torch.zeros(rounds, dtype=torch.long, device=rows.device)
    for run in (slice(0, split), slice(split, len(rows))):
        r = rows[run]
        count = torch.bincount(r, minlength=rounds)
        first = torch.cumsum(count, 0) - count  # where each round starts within the run
        column[run] = taken[r] + torch.arange(len(r), device=rows.device) - first[r]
        taken += count
    times = torch.full((rounds, int(have.max())), math.inf, dtype=time.dtype, device=time.device)
    times[rows, column] = time
    at = torch.full_like(times, -1, dtype=torch.long)
    at[rows, column] = index
    order = torch.sort(times, dim=1, stable=True).indices[:, :k]
    return at.gather(1, order)


def sample_correspondences(
    P: torch.Tensor, count: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw ``count`` distinct (aerial, ground) pairs with probability ∝ P (A, G); fewer if P has fewer."""
    return CorrespondenceSampler(P).draw(count, generator)


def minimal_sets(
    prob: torch.Tensor, size: int, generator: torch.Generator | None = None, per_row: int = 1
) -> torch.Tensor:
    """``per_row`` sets of ``size`` distinct column indices per row of ``prob`` (N, K), each drawn ∝ prob
    without replacement; returns (N·per_row, size), the sets of row 0 first.

    Draws with replacement and keeps first occurrences (exact, see :class:`CorrespondenceSampler`); the rare
    sets that repeat too often fall back to ``torch.multinomial``.
    """
    n, k = prob.shape
    cdf = torch.cumsum(prob, 1, dtype=torch.float64)
    tries = 4 * size
    u = torch.rand(n, per_row * tries, generator=generator, dtype=torch.float64, device=prob.device)
    drawn = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_max(k - 1).view(n * per_row, tries)
    earlier_same = (drawn[:, :, None] == drawn[:, None, :]).tril(-1).any(-1)
    is_new = ~earlier_same
    rank = torch.cumsum(is_new, 1)
    ok = rank[:, -1] >= size
    out = torch.empty(n * per_row, size, dtype=torch.long, device=prob.device)
    for j in range(size):
        pos = torch.argmax((is_new & (rank == j + 1)).int(), dim=1)
        out[:, j] = drawn.gather(1, pos[:, None])[:, 0]
    if not bool(ok.all()):
        bad = (~ok).nonzero()[:, 0]
        out[bad] = torch.multinomial(
            prob[bad // per_row].float(), size, replacement=False, generator=generator
        )
    return out
