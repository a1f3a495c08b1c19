"""Refinements of a pose over the whole matching distribution P: the polish (weighted least squares over
the matches near the pose) and the maximum-likelihood refinement (EM, annealed kernel).

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
rather than on the aerial grid points. With flat-ground depth each token's kernel is also stretched by the
ground the token covers (``spread_m``; long along its bearing for far tokens), and the M-step becomes a
Gauss–Newton solve on the kernels' information matrices at a fixed scale.
Frames: ground BEV (metres, camera at the origin), aerial (metres).
"""

from __future__ import annotations

import math

import torch

from ..geometry.pose import Similarity2D, rotation_matrix
from ..model.runtime import fixed_order_sum
from .procrustes import scale_allowed, solved_pose, weighted_procrustes

# Kernel widths of the EM stages, metres (the aerial grid of the demo and published models is 1.6-1.8 m).
SIGMAS_M = (2.0, 1.0, 0.6)
ITERATIONS_PER_STAGE = 10
PER_TOKEN = 64  # aerial points kept per ground token: P's mass beyond them is negligible
OUTLIER_FLOOR = 1e-3  # ε: a token the pose does not explain costs log ε, not −∞
MIN_TOKEN_MASS = 1e-5  # tokens matched less surely than this carry no information
# After a choice without the near ground (``SolverConfig.choose_beyond_m``) the refinement must stay local: an EM
# that slid further than this from its start, metres, followed the near road back to a look-alike along
# the street, so the start is kept.
MAX_SHIFT_M = 3.0


def polish_pose(
    P: torch.Tensor,
    xy_aerial_m: torch.Tensor,
    xy_ground_m: torch.Tensor,
    pose: Similarity2D,
    radii_m: tuple[float, ...],
    with_scale: bool = True,
    scale_range: tuple[float, float] | None = None,
    min_pairs: int = 3,
    per_token: int = 16,
) -> Similarity2D:
    """Weighted least squares over the matches of P near the pose, with shrinking radii.

    Candidate pairs: each ground token's ``per_token`` most probable aerial points. For each radius: the
    pairs whose residual under the current pose is below it, weighted by P, give a new weighted closed-form
    pose (kept if valid, in ``scale_range``, and backed by at least ``min_pairs`` pairs). Unlike the sampled
    refinement this sees every ground token's matches, so the pose averages over all consistent matches
    instead of one round's sample.
    """
    w, ia = torch.topk(P, min(per_token, P.shape[0]), dim=0)  # (k, G)
    ig = torch.arange(P.shape[1], device=P.device).expand_as(ia)
    keep = w > 0
    ia, ig, w = ia[keep], ig[keep], w[keep]
    if len(ia) < min_pairs:
        return pose
    src, dst = xy_ground_m[ig], xy_aerial_m[ia]
    for radius in radii_m:
        near = (pose.apply(src) - dst).norm(dim=-1) < radius
        if int(near.sum()) < min_pairs:
            break
        new = solved_pose(src[near], dst[near], w[near], with_scale, scale_range)
        if new is None:
            break
        pose = new
    return pose


def maximum_likelihood_pose(
    P: torch.Tensor,
    xy_aerial_m: torch.Tensor,
    xy_ground_m: torch.Tensor,
    pose: Similarity2D,
    *,
    sigmas_m: tuple[float, ...] = SIGMAS_M,
    iterations: int = ITERATIONS_PER_STAGE,
    per_token: int = PER_TOKEN,
    floor: float = OUTLIER_FLOOR,
    with_scale: bool = True,
    scale_range: tuple[float, float] | None = None,
    max_shift_m: float = math.inf,
    spread_m: torch.Tensor | None = None,
) -> Similarity2D:
    """Refine ``pose`` (e.g. RANSAC's) by EM on L above.

    Args:
        P: (A, G) matching probabilities (aerial points × ground tokens; 0 for invalid tokens).
        xy_aerial_m: (A, 2) aerial points; xy_ground_m: (G, 2) lifted ground points.
        sigmas_m: kernel widths of the stages, metres, coarse to fine.
        iterations: EM iterations per stage.
        per_token: aerial points kept per ground token (the most probable).
        floor: ε, the likelihood floor of a token the pose does not explain.
        with_scale: solve the scale (False: s = 1, as the orthogonal alignment).
        scale_range: the scale is clamped into this range (metric depth: s ≈ 1), None leaves it free.
        max_shift_m: the starting pose is returned when the refined position moved further than this
            (``MAX_SHIFT_M`` after a choice without the near ground; by default no limit).
        spread_m: (G, 2) metres, how far each token's match may lie from its lifted point along its bearing
            and across it (``geometry.lifting.flat_ground_spread_m``): each token's kernel is widened by its
            own footprint, and the pose is solved by Gauss–Newton at a fixed scale (the starting one, or 1
            without ``with_scale``; ``scale_range`` unused). None: the round kernel above with the
            closed-form alignment.

    Returns the refined pose: the starting pose when no token is matched or it slid away; when a step
    degenerates, the starting pose (footprint kernels) or the pose before that step (round kernels).
    """
    mass = P.sum(0)  # (G,)
    keep = mass > MIN_TOKEN_MASS
    if int(keep.sum()) < 3:
        return pose
    src, dst, q, token_weight = _token_candidates(P, xy_aerial_m, xy_ground_m, mass, keep, per_token)
    if spread_m is not None:
        scale = pose.s if with_scale else torch.ones_like(pose.s)
        step = _footprint_pose(
            src * scale, dst, q, token_weight, spread_m[keep], pose.R, pose.t, sigmas_m, iterations, floor
        )
        if step is None or float((step[1] - pose.t).norm()) > max_shift_m:
            return pose
        return Similarity2D(step[0], step[1], scale)
    refined, degenerate = _round_kernel_pose(
        src, dst, q, token_weight, pose, sigmas_m, iterations, floor, with_scale, scale_range
    )
    if degenerate:  # the pose before the degenerate step, wherever it got to
        return refined
    return refined if float((refined.t - pose.t).norm()) <= max_shift_m else pose


def _token_candidates(
    P: torch.Tensor,
    xy_aerial_m: torch.Tensor,
    xy_ground_m: torch.Tensor,
    mass: torch.Tensor,
    keep: torch.Tensor,
    per_token: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """For the kept tokens (G'): their points (G', 2), their ``per_token`` most probable aerial points
    (k, G', 2), where each lies over them q (k, G') and how surely it is matched m_g (G',)."""
    prob, index = torch.topk(P, min(per_token, P.shape[0]), dim=0)  # (k, G); P[:, keep] would copy P
    prob, index = prob[:, keep], index[:, keep]  # (k, G')
    token_weight = mass[keep]
    q = prob / token_weight  # where each token lies, over its k aerial points
    return xy_ground_m[keep], xy_aerial_m[index], q, token_weight


def _round_kernel_pose(
    src: torch.Tensor,
    dst: torch.Tensor,
    q: torch.Tensor,
    token_weight: torch.Tensor,
    pose: Similarity2D,
    sigmas_m: tuple[float, ...],
    iterations: int,
    floor: float,
    with_scale: bool,
    scale_range: tuple[float, float] | None,
) -> tuple[Similarity2D, bool]:
    """The EM of :func:`maximum_likelihood_pose` with round kernels: the weighted closed form as M-step.
    ``src`` (G', 2) the kept tokens, ``dst``/``q`` (k, G') their aerial candidates and probabilities.
    Returns (the pose, whether a step degenerated: then the pose is the one before it)."""
    R, t, s = pose.R, pose.t, pose.s
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
                return Similarity2D(R, t, s), True
            R, t, s = step
    return Similarity2D(R, t, s), False


# a quarter turn anticlockwise: J·v is v turned by 90°, and d(R(θ)·y)/dθ = J·R(θ)·y
_QUARTER_TURN = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
GAUSS_NEWTON_STEPS = 2  # per EM iteration


def _footprint_pose(
    src: torch.Tensor,
    dst: torch.Tensor,
    q: torch.Tensor,
    token_weight: torch.Tensor,
    spread_m: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    sigmas_m: tuple[float, ...],
    iterations: int,
    floor: float,
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The EM of :func:`maximum_likelihood_pose` with each token's kernel stretched by its footprint.

    ``src`` (G', 2) are the kept tokens' points at the fixed scale, ``dst``/``q`` (k, G') their aerial
    candidates and probabilities. Token g's kernel has variances σ² + spread_r² along its bearing (turned
    into the aerial frame by the current R) and σ² + spread_t² across it, scaled to the same total mass as
    a round kernel (a stretched kernel's peak is lower). The M-step minimises Σ_g rᵀ·W_g·r over (θ, t),
    r = x̄_g − R·y_g − t, W_g the token's summed responsibility times its kernel's information matrix, by
    Gauss–Newton in float64. Returns (R, t), or None when a step is singular."""
    dtype, f64 = R.dtype, torch.float64
    R, t, src, dst, q, token_weight, spread_m = (
        v.to(f64) for v in (R, t, src, dst, q, token_weight, spread_m)
    )
    bearing = src / src.norm(dim=1, keepdim=True).clamp_min(1e-9)
    turn = _QUARTER_TURN.to(src.device)
    for sigma in sigmas_m:
        var_r, var_t = sigma**2 + spread_m[:, 0].square(), sigma**2 + spread_m[:, 1].square()
        norm = sigma**2 / torch.sqrt(var_r * var_t)
        for _ in range(iterations):
            along = bearing @ R.T  # (G', 2) aerial frame
            across = along @ turn.T
            diff = dst - (src @ R.T + t)  # (k, G', 2)
            mahal = (diff * along).sum(-1).square() / var_r + (diff * across).sum(-1).square() / var_t
            lik = q * torch.exp(-0.5 * mahal) * norm
            resp = lik * (token_weight / (floor + lik.sum(0)))
            weight = resp.sum(0)
            target = (resp[..., None] * dst).sum(0) / weight.clamp_min(1e-30)[:, None]
            info = weight[:, None, None] * (
                _outer(along) / var_r[:, None, None] + _outer(across) / var_t[:, None, None]
            )
            step = _rigid_gauss_newton(src, target, info, R, t)
            if step is None:
                return None
            R, t = step
    return R.to(dtype), t.to(dtype)


def _outer(v: torch.Tensor) -> torch.Tensor:
    return v[:, :, None] * v[:, None, :]


def _rigid_gauss_newton(
    src: torch.Tensor, target: torch.Tensor, info: torch.Tensor, R: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Gauss–Newton steps on (θ, t) of Σ_g rᵀ·info_g·r, r = target_g − R·src_g − t; None when singular."""
    eye = torch.eye(2, dtype=src.dtype, device=src.device).expand(len(src), 2, 2)
    turn = _QUARTER_TURN.to(src.device)
    for _ in range(GAUSS_NEWTON_STEPS):
        moved = src @ R.T
        residual = target - moved - t
        jacobian = torch.cat([(moved @ turn.T)[..., None], eye], dim=2)  # (G, 2, 3)
        hessian = torch.einsum("gia,gij,gjb->ab", jacobian, info, jacobian)
        gradient = torch.einsum("gia,gij,gj->a", jacobian, info, residual)
        delta, status = torch.linalg.solve_ex(hessian, gradient)
        if int(status) != 0 or not bool(torch.isfinite(delta).all()):
            return None
        R = torch.from_numpy(rotation_matrix(float(delta[0]))).to(src) @ R
        t = t + delta[1:]
    return R, t


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
    wn = weights / fixed_order_sum(weights)  # the same at any thread count (model/runtime.py)
    t = (wn[:, None] * dst).sum(0) - s * R @ (wn[:, None] * src).sum(0)
    return R, t, s
