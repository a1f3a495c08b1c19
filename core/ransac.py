"""Pose from matching probabilities: RANSAC over scale-aware Procrustes, batched (method §6).

All hypotheses of all rounds are solved and scored as tensors; nothing loops over hypotheses in Python.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .procrustes import scale_allowed, weighted_procrustes
from .refine import MAX_SHIFT_M, maximum_likelihood_pose
from .runtime import fixed_order_sum
from .solvers import SOLVERS

# Additions to the published solver, used by the "precise" solver of ``loc2 localize`` (README, "Solver"):
# with metric depth the alignment's scale should be ≈ 1, so hypotheses outside this range are look-alikes
# that fit only by shrinking or stretching the ground layout;
METRIC_SCALE_RANGE = (0.8, 1.25)
# and the kept pose is re-solved over all of P's matches near it, with these shrinking radii (metres),
POLISH_RADII_M = (2.5, 1.5, 1.0)
# then refined to the most probable pose under the whole matching distribution (``refine.py``).
# With metric depth, a panorama's pose is chosen without the ground tokens lifted nearer than this to the camera
# (metres): the road just around it is plain asphalt and lane markings that repeat along the street, and
# its many tokens outvote the few distinctive ones, so a look-alike place along the same street won
# (README, "Measured figures": the failure study). The polish and the refinement use every token again.
NEAR_GROUND_M = 5.0
NEAR_FALLBACK_MASS = 0.1  # under this share of P beyond it (a wall right in front): choose on all of P
SAMPLER_BLOCK = 64  # entries of a row of P per block of the sampler's two-level cumulative sum
HEAVY_CAP = 64  # the sampler's explicit race holds at most this many times the entries it must draw
_CHUNK_ENTRIES = 1 << 20  # entries of P a full pass over it handles at a time (its temporaries' size)
_BLOCKS_AT_ONCE = 1 << 13  # blocks the sampler sums entry by entry at a time (~10 temporaries of 4 MB)


def solver_settings(
    solver: str, metric_depth: bool, panorama: bool = True, flat_ground: bool = False
) -> dict:
    """Keyword arguments of :func:`ransac_pose` for a solver name: ``published`` is the paper's protocol
    exactly (method §6); ``precise`` adds, with metric depth only, the scale gate and (panoramas only)
    choosing the pose without the near ground; and the polish and the maximum-likelihood refinement, which
    for a panorama with flat-ground depth keeps the scale at 1.

    A pinhole photo sees the near ground in one direction only, as a large share of its few tokens, and its
    failures were not along a street (README, "Measured figures"), so it keeps every token.

    Flat-ground depth is exact on the ground and too far for everything standing on it: the standing
    points (most of the far ones) pull the fitted scale to about 0.85, so the refinement, where the many
    exact ground points dominate, solves at scale 1 and leaves the standing points as outliers (200
    validation panoramas, 0.5.0 model: median 0.72 → 0.58 m). The choice keeps the scale free within the
    gate, which also absorbs a camera height that is somewhat off."""
    if solver == "published":
        return {}
    if solver != "precise":
        raise ValueError(f"unknown solver {solver!r}; use one of {', '.join(SOLVERS)}")
    return {
        "scale_range": METRIC_SCALE_RANGE if metric_depth else None,
        "polish": POLISH_RADII_M,
        "likelihood": True,
        "choose_beyond_m": NEAR_GROUND_M if metric_depth and panorama else None,
        "likelihood_unit_scale": flat_ground and panorama,
    }


@dataclass
class PoseEstimate:
    """A pose xy_aerial ≈ s·R·xy_ground + t with the correspondences that support it.

    ``aerial_index``/``ground_index`` (K,) are the sampled correspondences the pose was judged on (the
    kept round's sample); ``inlier_mask`` (K,) marks those within the inlier threshold.
    """

    R: torch.Tensor
    t: torch.Tensor
    s: torch.Tensor
    valid: bool
    num_inliers: int
    inlier_mask: torch.Tensor
    score: float
    aerial_index: torch.Tensor
    ground_index: torch.Tensor
    prob: torch.Tensor
    residual_m: torch.Tensor

    @property
    def inlier_ratio(self) -> float:
        n = int(self.inlier_mask.numel())
        return self.num_inliers / n if n else 0.0


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


def _residuals(src: torch.Tensor, dst: torch.Tensor, R, t, s) -> torch.Tensor:
    """‖s·R·src + t − dst‖ in metres for one pose R (2, 2), t (2,), s () and points (N, 2) → (N,)."""
    return (s * src @ R.T + t - dst).norm(dim=-1)


def _score_hypotheses(src: torch.Tensor, dst: torch.Tensor, R, t, s, soft_threshold: float) -> torch.Tensor:
    """Soft inlier counts Σ sigmoid(β(soft_threshold − residual)), β = 5 / soft_threshold, of all hypotheses.

    src, dst: (rounds, K, 2) each round's sampled correspondences; R (rounds, H, 2, 2), t (rounds, H, 2),
    s (rounds, H): that round's hypotheses. Returns (rounds, H). Each round is one matrix product of the
    hypotheses' affine maps with the homogeneous points, then in-place element-wise work.
    """
    beta = 5.0 / soft_threshold
    affine = torch.cat([s[..., None, None] * R, t[..., None]], dim=-1)  # (rounds, H, 2, 3)
    hom = torch.cat([src, torch.ones_like(src[..., :1])], dim=-1).transpose(1, 2)  # (rounds, 3, K)
    out = torch.empty(R.shape[:2], device=src.device)
    for r in range(src.shape[0]):
        px = (affine[r, :, 0] @ hom[r]).sub_(dst[r, :, 0]).square_()  # (H, K)
        py = (affine[r, :, 1] @ hom[r]).sub_(dst[r, :, 1]).square_()
        # sigmoid(z) = 1 / (1 + exp(−z)), z = β(soft_threshold − residual): see _sigmoid_
        out[r] = _sigmoid_(px.add_(py).sqrt_().neg_().add_(soft_threshold).mul_(beta)).sum(-1)
    return out


def _sigmoid_(z: torch.Tensor) -> torch.Tensor:
    """sigmoid(z) in place, as 1 / (1 + exp(−z)). ``torch.sigmoid`` on the CPU finishes each thread's share
    with a scalar loop that rounds differently from its vector loop, so a hypothesis' score (and the pose
    kept) would depend on the thread count; ``exp`` and the arithmetic do not (``runtime.py``)."""
    return z.neg_().exp_().add_(1.0).reciprocal_()


def _soft_score(res: torch.Tensor, soft_threshold: float) -> float:
    return float(fixed_order_sum(_sigmoid_((5.0 / soft_threshold) * (soft_threshold - res))))


def ransac_pose(
    P: torch.Tensor,
    aerial_xy: torch.Tensor,
    ground_xy: torch.Tensor,
    *,
    rounds: int = 20,
    samples_per_round: int = 8192,
    hypotheses_per_round: int = 100,
    minimal_set: int = 3,
    soft_threshold: float = 5.0,
    inlier_threshold: float = 2.5,
    refinements: int = 4,
    with_scale: bool = True,
    use_ransac: bool = True,
    direct_samples: int = 1024,
    generator: torch.Generator | None = None,
    scale_range: tuple[float, float] | None = None,
    polish: tuple[float, ...] = (),
    likelihood: bool = False,
    choose_beyond_m: float | None = None,
    likelihood_unit_scale: bool = False,
    spread_m: torch.Tensor | None = None,
) -> PoseEstimate:
    """Estimate the pose from the matching probability P (A, G) or (1, A, G).

    Args:
        P: matching probabilities between aerial points (rows) and ground tokens (columns).
        aerial_xy: (A, 2) aerial points, aerial frame, metres.
        ground_xy: (G, 2) lifted ground points, ground BEV frame, metres (P must be 0 where invalid).
        rounds, samples_per_round, hypotheses_per_round, minimal_set: the sampling protocol.
        soft_threshold: metres; score = Σ sigmoid(β(soft_threshold − residual)), β = 5 / soft_threshold.
        inlier_threshold: metres, for hard inliers and refinement.
        refinements: at most this many re-solves on the inliers (accepted only if the count grows).
        with_scale: scale-aware alignment (needed for relative depth).
        use_ransac: False gives one weighted solve on ``direct_samples`` correspondences (weights = P).
        generator: a torch.Generator for reproducible sampling.
        scale_range: (lo, hi) scales a hypothesis or refinement may have (metric depth: s ≈ 1); None (the
            published protocol) accepts any.
        polish: after refinement, weighted re-solves over ALL of P with these shrinking inlier radii in
            metres (weights = P on the pairs within the radius); () (the published protocol) skips it.
        likelihood: finally move the pose to the most probable one under all of P
            (:func:`loc2.core.refine.maximum_likelihood_pose`, scale kept in ``scale_range``; with
            ``choose_beyond_m``, kept only if it moved the position at most ``refine.MAX_SHIFT_M``).
        choose_beyond_m: sample, score and refine the hypotheses only on ground points at least this far
            from the camera (metres, metric depth); polish and likelihood then use all of P. Ignored when
            under ``NEAR_FALLBACK_MASS`` of P's mass lies beyond. None (the published protocol): all.
        likelihood_unit_scale: the likelihood refinement solves at scale 1 (flat-ground depth, see
            :func:`solver_settings`); False solves the scale (within ``scale_range``).
        spread_m: (G, 2) metres, each token's ground footprint along and across its bearing
            (``geometry.flat_ground_spread_m``, flat ground): the likelihood refinement then stretches each
            token's kernel by it. None: round kernels.
    """
    if P.dim() == 3:
        P = P[0]
    P = P.float()
    dev = P.device
    aerial_xy = aerial_xy.to(dev, torch.float32)
    ground_xy = ground_xy.to(dev, torch.float32)
    if not use_ransac:
        ia, ig = sample_correspondences(P, direct_samples, generator)
        prob = P[ia, ig]
        R, t, s, valid = weighted_procrustes(ground_xy[ig], aerial_xy[ia], prob, with_scale)
        res = _residuals(ground_xy[ig], aerial_xy[ia], R, t, s)
        mask = res < inlier_threshold
        score = _soft_score(res, soft_threshold)
        return PoseEstimate(R, t, s, bool(valid), int(mask.sum()), mask, score, ia, ig, prob, res)

    sampler = CorrespondenceSampler(P, _far_columns(P, ground_xy, choose_beyond_m))
    samples = [sampler.draw(samples_per_round, generator) for _ in range(rounds)]
    k = min(len(s[0]) for s in samples)
    if k < minimal_set:
        return _no_pose(dev)
    ia = torch.stack([s[0][:k] for s in samples])  # (rounds, K)
    ig = torch.stack([s[1][:k] for s in samples])
    prob = P[ia, ig]  # (rounds, K)
    src_all = ground_xy[ig]  # (rounds, K, 2)
    dst_all = aerial_xy[ia]

    # Minimal sets: per round, hypotheses_per_round draws of `minimal_set` distinct correspondences ∝ P.
    pick = minimal_sets(prob, minimal_set, generator, per_row=hypotheses_per_round)  # (rounds·H, set)
    round_of = torch.arange(rounds, device=dev).repeat_interleave(hypotheses_per_round)
    src_min = src_all[round_of[:, None], pick]
    dst_min = dst_all[round_of[:, None], pick]
    R, t, s, valid = weighted_procrustes(src_min, dst_min, None, with_scale)

    # Score every hypothesis on its round's sample.
    n_h = hypotheses_per_round
    scores = _score_hypotheses(
        src_all,
        dst_all,
        R.view(rounds, n_h, 2, 2),
        t.view(rounds, n_h, 2),
        s.view(rounds, n_h),
        soft_threshold,
    ).reshape(-1)
    if scale_range is not None:
        valid = valid & (s >= scale_range[0]) & (s <= scale_range[1])
    scores = torch.where(valid, scores, torch.full_like(scores, -1.0))
    best = int(torch.argmax(scores))
    if not bool(valid[best]):
        return _no_pose(dev)
    r = int(round_of[best])
    src, dst = src_all[r], dst_all[r]
    R_b, t_b, s_b, res, mask = refine_pose(
        src,
        dst,
        R[best],
        t[best],
        s[best],
        inlier_threshold,
        refinements,
        with_scale,
        minimal_set,
        scale_range,
    )
    if polish:
        R_b, t_b, s_b = polish_pose(P, aerial_xy, ground_xy, R_b, t_b, s_b, polish, with_scale, scale_range)
    if likelihood:
        # chosen without the near ground, the pose must not follow it back to a look-alike (MAX_SHIFT_M)
        max_shift = MAX_SHIFT_M if choose_beyond_m is not None else math.inf
        R_b, t_b, s_b = maximum_likelihood_pose(
            P,
            aerial_xy,
            ground_xy,
            R_b,
            t_b,
            s_b,
            with_scale=with_scale and not likelihood_unit_scale,
            scale_range=scale_range,
            max_shift_m=max_shift,
            spread_m=None if spread_m is None else spread_m.to(dev, torch.float32),
        )
    if polish or likelihood:
        res = _residuals(src, dst, R_b, t_b, s_b)
        mask = res < inlier_threshold
    count = int(mask.sum())
    score = _soft_score(res, soft_threshold)
    return PoseEstimate(R_b, t_b, s_b, True, count, mask, score, ia[r], ig[r], prob[r], res)


def _far_columns(P: torch.Tensor, ground_xy: torch.Tensor, beyond_m: float | None) -> torch.Tensor | None:
    """The ground tokens (G,) bool at least ``beyond_m`` metres from the camera, or None (every token) when
    ``beyond_m`` is None or they hold under ``NEAR_FALLBACK_MASS`` of P's mass."""
    if beyond_m is None:
        return None
    far = ground_xy.norm(dim=-1) >= beyond_m
    column_mass = P.sum(0).double()  # (summing with dtype=float64 would convert all of P first)
    far_mass, mass = fixed_order_sum(column_mass[far]), fixed_order_sum(column_mass)  # any thread count
    return far if float(far_mass) >= NEAR_FALLBACK_MASS * float(mass) else None


def refine_pose(
    src: torch.Tensor,
    dst: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    s: torch.Tensor,
    inlier_threshold: float = 2.5,
    refinements: int = 4,
    with_scale: bool = True,
    minimal_count: int = 3,
    scale_range: tuple[float, float] | None = None,
):
    """Re-solve on the hard inliers (within ``inlier_threshold`` metres) up to ``refinements`` times,
    keeping a refinement only when the inlier count grows and is at least ``minimal_count`` (and its scale
    lies in ``scale_range`` when one is given).

    Returns (R, t, s, residuals (N,), inlier mask (N,)) of the kept pose.
    """
    res = _residuals(src, dst, R, t, s)
    mask = res < inlier_threshold
    for _ in range(refinements):
        R_n, t_n, s_n, ok = weighted_procrustes(src, dst, mask.float(), with_scale)
        if not bool(ok):
            break
        res_n = _residuals(src, dst, R_n, t_n, s_n)
        mask_n = res_n < inlier_threshold
        if int(mask_n.sum()) <= int(mask.sum()) or int(mask_n.sum()) < minimal_count:
            break
        if not scale_allowed(s_n, scale_range):
            break
        R, t, s, res, mask = R_n, t_n, s_n, res_n, mask_n
    return R, t, s, res, mask


def polish_pose(
    P: torch.Tensor,
    aerial_xy: torch.Tensor,
    ground_xy: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    s: torch.Tensor,
    radii_m: tuple[float, ...],
    with_scale: bool = True,
    scale_range: tuple[float, float] | None = None,
    min_pairs: int = 3,
    per_token: int = 16,
):
    """Weighted least squares over the matches of P near the pose, with shrinking radii.

    Candidate pairs: each ground token's ``per_token`` most probable aerial points. For each radius: the
    pairs whose residual under the current pose is below it, weighted by P, give a new weighted closed-form
    pose (kept if valid, in ``scale_range``, and backed by at least ``min_pairs`` pairs). Unlike the sampled
    refinement this sees every ground token's matches, so the pose averages over all consistent matches
    instead of one round's sample. Returns (R, t, s).
    """
    w, ia = torch.topk(P, min(per_token, P.shape[0]), dim=0)  # (k, G)
    ig = torch.arange(P.shape[1], device=P.device).expand_as(ia)
    keep = w > 0
    ia, ig, w = ia[keep], ig[keep], w[keep]
    if len(ia) < min_pairs:
        return R, t, s
    src, dst = ground_xy[ig], aerial_xy[ia]
    for radius in radii_m:
        near = _residuals(src, dst, R, t, s) < radius
        if int(near.sum()) < min_pairs:
            break
        R_n, t_n, s_n, ok = weighted_procrustes(src[near], dst[near], w[near], with_scale)
        if not bool(ok) or not scale_allowed(s_n, scale_range):
            break
        R, t, s = R_n, t_n, s_n
    return R, t, s


def _no_pose(device) -> PoseEstimate:
    empty_i = torch.zeros(0, dtype=torch.long, device=device)
    empty_f = torch.zeros(0, device=device)
    return PoseEstimate(
        torch.eye(2, device=device),
        torch.zeros(2, device=device),
        torch.tensor(1.0, device=device),
        False,
        0,
        torch.zeros(0, dtype=torch.bool, device=device),
        0.0,
        empty_i,
        empty_i,
        empty_f,
        empty_f,
    )
