"""Maximum-likelihood refinement of a pose over the whole matching distribution (EM, annealed kernel).

RANSAC keeps a pose that one sample of correspondences agrees with; its refinements count hard inliers
within a radius. This module treats P (A, G) as what it is, a distribution over where each ground token
lies on the aerial image, and finds the pose that makes the lifted ground layout most probable:

    L(s, R, t) = Σ_g m_g · log(ε + Σ_a q_g(a) · exp(−‖a − (s·R·y_g + t)‖² / 2σ²))

with m_g = Σ_a P(a, g) (how surely token g is matched at all), q_g = P(·, g) / m_g (where it is, over its
``per_token`` most probable aerial points) and ε a floor for tokens the pose does not explain (outliers).
Expectation–maximisation climbs L: the E-step gives each (token, aerial point) pair the responsibility
m_g · q_g(a)·k / (ε + Σ q_g·k); the M-step is the weighted closed-form alignment (method §6) on all pairs,
computed per token (the closed form is linear in the aerial points).
σ shrinks over the stages (coarse to fine), so the pose settles on the sub-cell centre of the matches
rather than on the aerial grid points. Frames: ground BEV (metres, camera at the origin), aerial (metres).
"""

from __future__ import annotations

import math

import torch

from .procrustes import scale_allowed, weighted_procrustes

# Kernel widths of the EM stages, metres (the aerial grid of the demo and published models is 1.6-1.8 m).
SIGMAS_M = (2.0, 1.0, 0.6)
ITERATIONS_PER_STAGE = 10
PER_TOKEN = 64  # aerial points kept per ground token: P's mass beyond them is negligible
OUTLIER_FLOOR = 1e-3  # ε: a token the pose does not explain costs log ε, not −∞
MIN_TOKEN_MASS = 1e-5  # tokens matched less surely than this carry no information
# After a choice without the near ground (``ransac.NEAR_GROUND_M``) the refinement must stay local: an EM
# that slid further than this from its start, metres, followed the near road back to a look-alike along
# the street, so the start is kept.
MAX_SHIFT_M = 3.0


def maximum_likelihood_pose(
    P: torch.Tensor,
    aerial_xy: torch.Tensor,
    ground_xy: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    s: torch.Tensor,
    *,
    sigmas_m: tuple[float, ...] = SIGMAS_M,
    iterations: int = ITERATIONS_PER_STAGE,
    per_token: int = PER_TOKEN,
    floor: float = OUTLIER_FLOOR,
    with_scale: bool = True,
    scale_range: tuple[float, float] | None = None,
    max_shift_m: float = math.inf,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Refine ``xy_aerial ≈ s·R·xy_ground + t`` from a starting pose (e.g. RANSAC's) by EM on L above.

    Args:
        P: (A, G) matching probabilities (aerial points × ground tokens; 0 for invalid tokens).
        aerial_xy: (A, 2) aerial points, metres; ground_xy: (G, 2) lifted ground points, metres.
        R, t, s: the starting pose (2, 2), (2,), ().
        sigmas_m: kernel widths of the stages, metres, coarse to fine.
        iterations: EM iterations per stage.
        per_token: aerial points kept per ground token (the most probable).
        floor: ε, the likelihood floor of a token the pose does not explain.
        with_scale: solve the scale (False: s = 1, as the orthogonal alignment).
        scale_range: the scale is clamped into this range (metric depth: s ≈ 1), None leaves it free.
        max_shift_m: the starting pose is returned when the refined position moved further than this
            (``MAX_SHIFT_M`` after a choice without the near ground; by default no limit).

    Returns (R, t, s); the starting pose when no token is matched, a step degenerates or it slid away.
    """
    start = R, t, s
    mass = P.sum(0)  # (G,)
    keep = mass > MIN_TOKEN_MASS
    if int(keep.sum()) < 3:
        return R, t, s
    P_kept = P[:, keep]
    prob, index = torch.topk(P_kept, min(per_token, P_kept.shape[0]), dim=0)  # (k, G')
    token_weight = mass[keep]
    q = prob / token_weight  # where each token lies, over its k aerial points
    dst = aerial_xy[index]  # (k, G', 2)
    src = ground_xy[keep]  # (G', 2)
    for sigma in sigmas_m:
        for _ in range(iterations):
            moved = s * src @ R.T + t  # (G', 2)
            lik = q * torch.exp(-(dst - moved).square().sum(-1) / (2 * sigma**2))  # (k, G')
            resp = lik * (token_weight / (floor + lik.sum(0)))
            # The closed form is linear in the aerial points: all of a token's pairs act as one pair, its
            # responsibility-weighted mean aerial point with their summed weight (same pose, k× less work).
            weight = resp.sum(0)
            target = (resp[..., None] * dst).sum(0) / weight.clamp_min(1e-30)[:, None]
            step = _weighted_alignment(src, target, weight, with_scale, scale_range)
            if step is None:
                return R, t, s
            R, t, s = step
    return (R, t, s) if float((t - start[1]).norm()) <= max_shift_m else start


def _weighted_alignment(
    src: torch.Tensor,
    dst: torch.Tensor,
    weights: torch.Tensor,
    with_scale: bool,
    scale_range: tuple[float, float] | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """The weighted closed form; a scale outside ``scale_range`` is clamped into it (t re-solved for the
    clamped scale: t = X̄ − s·R·Ȳ). None when the solve is degenerate."""
    R, t, s, ok = weighted_procrustes(src, dst, weights, with_scale)
    if not bool(ok):
        return None
    if not with_scale or scale_allowed(s, scale_range):
        return R, t, s
    s = s.clamp(*scale_range)
    wn = weights / weights.sum()
    t = (wn[:, None] * dst).sum(0) - s * R @ (wn[:, None] * src).sum(0)
    return R, t, s
