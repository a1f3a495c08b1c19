"""Correspondences drawn from the matching probabilities P: exact sampling without replacement ∝ P.

:class:`CorrespondenceSampler` draws distinct (aerial, ground) pairs ∝ P (A, G) for RANSAC's rounds and for
training; :func:`minimal_sets` draws each hypothesis' minimal set within a round's sample.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ..model.runtime import fixed_order_sum

SAMPLER_BLOCK = 64  # entries of a row of P per block of the sampler's two-level cumulative sum
HEAVY_CAP = 64  # the sampler's explicit race holds at most this many times the entries it must draw
_CHUNK_ENTRIES = 1 << 20  # entries of P a full pass over it handles at a time (its temporaries' size)
_BLOCKS_AT_ONCE = 1 << 13  # blocks the sampler sums entry by entry at a time (~10 temporaries of 4 MB)


class CorrespondenceSampler:
    """Draws distinct (aerial, ground) pairs ∝ P: sequential sampling without replacement.

    Exactly the exponential race (entry i arrives at E_i / p_i; the earliest arrivals win), computed
    cheaply: a Poisson process of rate Σp whose arrivals pick entries ∝ p is the superposition of the
    entries' races, so draws with replacement kept at their first occurrence are already exact. When P is
    so peaked that repeats dominate, the heaviest entries race explicitly and the light remainder arrives
    as a Poisson process up to the decisive time.

    P (A, G) is read in place (a copy only when it is not float32 or has negative entries): the sampler
    keeps a float64 sum per block of ``SAMPLER_BLOCK`` entries of a row (1/32 of P's size) and sums a block
    entry by entry only where a draw lands, so each draw is the inverse CDF of all of P without a P-sized
    cumulative sum. ``columns`` (G,) bool: only these ground tokens are drawn (the others as if their
    column of P were 0), without a masked copy of P.
    """

    def __init__(self, P: torch.Tensor, columns: torch.Tensor | None = None):
        if P.dim() != 2:
            raise ValueError(f"P must be (A, G), got shape {tuple(P.shape)}")
        valid = P.dtype == torch.float32 and (P.numel() == 0 or float(P.min()) >= 0)
        self.P = P if valid else P.float().clamp_min(0)
        self.shape = self.P.shape
        self.columns = None if columns is None else columns.to(self.P.device, torch.float32)
        self.blocks_per_row = -(-self.shape[1] // SAMPLER_BLOCK)
        self.block_sum, self.positive, square_sum = self._scan()
        self.block_cdf = torch.cumsum(self.block_sum, 0)
        self.total = float(self.block_cdf[-1]) if len(self.block_cdf) else 0.0
        # Σq² = Σp² / (Σp)² (q = p / Σp) is the chance that two draws with replacement repeat
        self._collision = square_sum / self.total**2 if self.total > 0 else 1.0
        self._heavy: torch.Tensor | None = None
        self._light_cdf: torch.Tensor | None = None

    def _row_chunks(self) -> Iterator[tuple[int, torch.Tensor]]:
        """(first row, weights of the rows (R, G) float32): P's rows times ``columns``, a chunk at a time."""
        rows = max(1, _CHUNK_ENTRIES // max(1, self.shape[1]))
        for r0 in range(0, self.shape[0], rows):
            w = self.P[r0 : r0 + rows]
            yield r0, w if self.columns is None else w * self.columns

    def _scan(self) -> tuple[torch.Tensor, int, float]:
        """Each block's sum (float64), the count of positive entries and Σp² of the weights."""
        a, g = self.shape
        pad = self.blocks_per_row * SAMPLER_BLOCK - g
        sums = torch.empty(a * self.blocks_per_row, dtype=torch.float64, device=self.P.device)
        positive, square_sum = 0, 0.0
        for r0, w in self._row_chunks():
            rows = len(w)
            blocks = torch.nn.functional.pad(w, (0, pad)).view(rows, self.blocks_per_row, SAMPLER_BLOCK)
            sums[r0 * self.blocks_per_row : (r0 + rows) * self.blocks_per_row] = blocks.sum(
                -1, dtype=torch.float64
            ).reshape(-1)
            positive += int(torch.count_nonzero(w))
            # not torch.dot: its split across threads (and so its rounding) depends on the thread count
            square_sum += float(fixed_order_sum(w.reshape(-1).square(), dtype=torch.float64))
        return sums, positive, square_sum

    def _weights_at(self, flat_index: torch.Tensor) -> torch.Tensor:
        """The weights (float32) of entries given by their row-major index into P."""
        w = self.P.reshape(-1)[flat_index]
        return w if self.columns is None else w * self.columns[flat_index % self.shape[1]]

    def _block_entries(self, blocks: torch.Tensor, light: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Row-major indices (n, SAMPLER_BLOCK) of the entries of ``blocks`` and their weights (float64);
        past a row's end weight 0; ``light``: the heavy entries weigh 0 too."""
        g = self.shape[1]
        row = blocks // self.blocks_per_row
        col = (blocks % self.blocks_per_row)[:, None] * SAMPLER_BLOCK + torch.arange(
            SAMPLER_BLOCK, device=blocks.device
        )
        index = row[:, None] * g + col.clamp_max(g - 1)
        w = torch.where(col < g, self._weights_at(index), 0.0).double()
        if light:
            w = w.masked_fill(self._is_heavy(index), 0.0)
        return index, w

    def _is_heavy(self, index: torch.Tensor) -> torch.Tensor:
        """Whether each row-major index is a heavy entry (``_heavy`` is sorted)."""
        at = torch.searchsorted(self._heavy, index).clamp_max(len(self._heavy) - 1)
        return self._heavy[at] == index

    def _draw(self, n: int, generator, light: bool = False) -> torch.Tensor:
        """``n`` row-major indices drawn with replacement ∝ the weights (``light``: heavy ones excluded)."""
        cdf = self._light_cdf if light else self.block_cdf
        u = torch.rand(n, generator=generator, dtype=torch.float64, device=cdf.device) * cdf[-1]
        return torch.cat([self._invert(part, cdf, light) for part in u.split(_BLOCKS_AT_ONCE)])

    def _invert(self, u: torch.Tensor, cdf: torch.Tensor, light: bool) -> torch.Tensor:
        """The entries whose cumulative weight interval holds each ``u``: the block (``cdf``: the blocks'
        cumulative sums), then the entry within it."""
        block = torch.searchsorted(cdf, u, right=True).clamp_max(len(cdf) - 1)
        before = torch.where(block > 0, cdf[(block - 1).clamp_min(0)], 0.0)
        index, w = self._block_entries(block, light)
        within = torch.searchsorted(torch.cumsum(w, 1), (u - before)[:, None], right=True)[:, 0]
        # rounding can carry u past a block's last positive entry: never pick a zero-weight one
        last = SAMPLER_BLOCK - 1 - torch.argmax((w > 0).flip(1).int(), dim=1)
        return index.gather(1, torch.minimum(within, last)[:, None])[:, 0]

    def _first_occurrences(self, drawn: torch.Tensor, keys: torch.Tensor | None = None) -> torch.Tensor:
        """Distinct entries of ``drawn`` ordered by first occurrence (or by smallest ``keys``)."""
        uniq, inverse = torch.unique(drawn, return_inverse=True)
        order = torch.arange(len(drawn), device=drawn.device, dtype=torch.float64) if keys is None else keys
        first = torch.full((len(uniq),), float("inf"), dtype=torch.float64, device=drawn.device)
        first.scatter_reduce_(0, inverse, order, reduce="amin")
        return uniq, first

    def draw(self, count: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` distinct pairs (aerial index (K,), ground index (K,)), in the order they were drawn.

        Which of the two exact methods runs depends on P only (never on the random draws), so the result
        is distributed exactly as sequential sampling without replacement.
        """
        count = min(count, self.positive)
        if count == 0:
            empty = torch.zeros(0, dtype=torch.long, device=self.P.device)
            return empty, empty
        if 2 * count * self._collision < 0.5:  # repeats are rare among 2·count draws
            drawn = self._draw(2 * count, generator)
            while True:
                uniq, first = self._first_occurrences(drawn)
                if len(uniq) >= count:
                    break
                drawn = torch.cat([drawn, self._draw(2 * count, generator)])
            idx = uniq[torch.argsort(first)[:count]]
        else:
            idx = self._draw_peaked(count, generator)
        return idx // self.shape[1], idx % self.shape[1]

    def _draw_peaked(self, count: int, generator) -> torch.Tensor:
        """Exact race: explicit keys for the heaviest entries; the light ones that beat the decisive time."""
        if self._heavy is None:
            self._split_heavy(2 * count)
        p_heavy = self._weights_at(self._heavy)
        keys_heavy = (
            torch.empty_like(p_heavy, dtype=torch.float64).exponential_(generator=generator) / p_heavy
        )
        k_star = float(torch.kthvalue(keys_heavy, min(count, len(keys_heavy))).values)
        light_idx, keys_light = self._light_arrivals(k_star, generator)
        idx = torch.cat([self._heavy, light_idx])
        keys = torch.cat([keys_heavy, keys_light])
        first = torch.topk(keys, min(count, len(keys)), largest=False, sorted=True).indices
        return idx[first]

    def _split_heavy(self, at_least: int) -> None:
        """Entries well above the mean probability are 'heavy' (at least ``at_least`` of them, or all).

        Any split is exact. The threshold falls from 16× the mean by factors of 16 until enough entries
        lie above it (counted a chunk at a time); when that takes more than ``HEAVY_CAP`` × ``at_least``
        entries (a flat P), the ``at_least`` heaviest ones are taken instead, so the split stays small."""
        tau = self.total / self.P.numel() * 16
        while True:
            count = sum(int(torch.count_nonzero(w > tau)) for _, w in self._row_chunks())
            if count >= at_least or tau == 0:
                break
            tau = tau / 16 if tau > 1e-30 else 0.0
        if count <= HEAVY_CAP * at_least:
            parts = [
                (w.reshape(-1) > tau).nonzero()[:, 0] + r0 * self.shape[1] for r0, w in self._row_chunks()
            ]
            self._heavy = torch.cat(parts)  # row-major
        else:
            self._heavy = self._heaviest(at_least)
        rows, cols = self._heavy // self.shape[1], self._heavy % self.shape[1]
        # the light blocks' sums: the blocks holding heavy entries summed again without them
        blocks = torch.unique(rows * self.blocks_per_row + cols // SAMPLER_BLOCK)
        light_sum = self.block_sum.clone()
        for part in blocks.split(_BLOCKS_AT_ONCE):
            light_sum[part] = self._block_entries(part, light=True)[1].sum(1)
        self._light_cdf = torch.cumsum(light_sum, 0)

    def _heaviest(self, k: int) -> torch.Tensor:
        """Row-major indices of the ``k`` heaviest positive entries, sorted (a chunk's top ones at a time)."""
        values, indices = [], []
        for r0, w in self._row_chunks():
            top = torch.topk(w.reshape(-1), min(k, w.numel()))
            both = torch.cat([*values, top.values])  # the running best k only
            best = torch.topk(both, min(k, len(both))).indices
            values, indices = [both[best]], [torch.cat([*indices, top.indices + r0 * self.shape[1]])[best]]
        return torch.sort(indices[0][values[0] > 0]).values

    def _light_arrivals(self, k_star: float, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Light entries whose race time is below ``k_star``, with their times (exact, two ways)."""
        light_mass = float(self._light_cdf[-1])
        expected = k_star * light_mass
        if light_mass == 0:
            empty = torch.zeros(0, dtype=torch.long, device=self.P.device)
            return empty, torch.zeros(0, dtype=torch.float64, device=self.P.device)
        if expected < self.P.numel() / 16:
            # Their superposed arrivals form a Poisson process of rate Σp picking entries ∝ p.
            n = int(torch.poisson(torch.tensor(expected, dtype=torch.float64), generator=generator))
            drawn = self._draw(n, generator, light=True)
            times = torch.rand(n, generator=generator, dtype=torch.float64, device=drawn.device) * k_star
            return self._first_occurrences(drawn, times)
        # Each arrives before k* with probability 1 − exp(−k*·p); its time is then a truncated exponential.
        found = []
        for r0, w in self._row_chunks():
            base = r0 * self.shape[1]
            w = w.reshape(-1)
            lo, hi = torch.searchsorted(
                self._heavy, torch.tensor([base, base + len(w)], device=w.device)
            ).tolist()
            heavy = self._heavy[lo:hi] - base
            w = w.index_fill(0, heavy, 0.0)
            u = torch.rand(len(w), generator=generator, dtype=torch.float32, device=w.device)
            found.append((torch.log(u).neg_() < w * k_star).nonzero()[:, 0] + base)
        idx = torch.cat(found)
        p = self._weights_at(idx).double()  # (float32 light probabilities, float64 times)
        beat = -torch.expm1(-k_star * p)
        v = torch.rand(len(idx), generator=generator, dtype=torch.float64, device=p.device)
        return idx, -torch.log1p(-v * beat) / p


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
