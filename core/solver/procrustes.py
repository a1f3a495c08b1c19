"""Weighted 2-D similarity alignment (Umeyama), batched over a leading dimension (method §6)."""

from __future__ import annotations

import torch

from ..geometry.pose import Similarity2D
from ..model.runtime import fixed_order_sum

RANK_EPS = 1e-6  # relative size of the smaller singular value of H below which H counts as rank-deficient


def weighted_procrustes(
    src: torch.Tensor,
    dst: torch.Tensor,
    weights: torch.Tensor | None = None,
    with_scale: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Best similarity with dst ≈ s·R·src + t in the weighted least-squares sense.

    Args:
        src: (B, N, 2) or (N, 2) source points (ground BEV, metres).
        dst: same shape, destination points (aerial frame, metres).
        weights: (B, N) or (N,) non-negative weights, or None for equal weights.
        with_scale: solve for s; otherwise s = 1 (orthogonal Procrustes).

    Returns:
        R (B, 2, 2) proper rotations, t (B, 2), s (B,), valid (B,) bool. An invalid solve (no weight, all
        points coincident, rank-deficient cross-covariance, non-finite input) has valid=False and the
        identity pose instead of NaN.
    """
    squeeze = src.dim() == 2
    if squeeze:
        src, dst = src[None], dst[None]
        weights = None if weights is None else weights[None]
    src, dst, w = _finite_weighted(src, dst, weights)
    w_sum = fixed_order_sum(w)  # sums over the N points: the same at any thread count (model/runtime.py)
    wn = w / w_sum.clamp_min(torch.finfo(src.dtype).tiny)[:, None]

    mean_src = (wn[..., None] * src).sum(1)
    mean_dst = (wn[..., None] * dst).sum(1)
    ys = src - mean_src[:, None]
    xs = dst - mean_dst[:, None]
    h = torch.einsum("bn,bni,bnj->bij", wn, ys, xs)  # the cross-covariance H = Σ w Ŷ X̂ᵀ
    rot, r = _rotation(h)
    var_src = fixed_order_sum(wn * (ys**2).sum(-1))
    scale = r / var_src.clamp_min(torch.finfo(src.dtype).tiny) if with_scale else torch.ones_like(var_src)
    t = mean_dst - scale[:, None] * torch.einsum("bij,bj->bi", rot, mean_src)

    # σ1·σ2 = |det H| and σ1² + σ2² = ‖H‖²: rank-deficient when σ2/σ1 is tiny.
    det = (h[:, 0, 0] * h[:, 1, 1] - h[:, 0, 1] * h[:, 1, 0]).abs()
    fro2 = (h**2).sum((-1, -2))
    valid = (w_sum > 0) & (fro2 > 0) & (det > RANK_EPS * fro2) & torch.isfinite(scale) & (scale > 0)
    valid = valid & torch.isfinite(t).all(-1)

    eye = torch.eye(2, dtype=src.dtype, device=src.device).expand(len(src), 2, 2)
    rot = torch.where(valid[:, None, None], rot, eye)
    t = torch.where(valid[:, None], t, torch.zeros_like(t))
    scale = torch.where(valid, scale, torch.ones_like(scale))
    if squeeze:
        return rot[0], t[0], scale[0], valid[0]
    return rot, t, scale, valid


def _finite_weighted(
    src: torch.Tensor, dst: torch.Tensor, weights: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The points as float32 (float64 if ``src`` is) and their weights (B, N): 0 where a weight is not a
    positive number or a point is not finite (such points are zeroed)."""
    src = src.to(torch.float64) if src.dtype == torch.float64 else src.float()
    dst = dst.to(src.dtype)
    b, n, _ = src.shape
    w = torch.ones(b, n, dtype=src.dtype, device=src.device) if weights is None else weights.to(src.dtype)
    w = torch.where(torch.isfinite(w) & (w > 0), w, torch.zeros_like(w))
    finite = torch.isfinite(src).all(-1) & torch.isfinite(dst).all(-1)
    w = w * finite
    return torch.nan_to_num(src) * finite[..., None], torch.nan_to_num(dst) * finite[..., None], w


def _rotation(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotations (B, 2, 2) maximising Σ w ⟨X̂, R Ŷ⟩ for cross-covariances H (B, 2, 2), and r (B,).

    For 2-D it is the angle θ = atan2(cross, dot) (the SVD form R = V diag(1, sign det(V Uᵀ)) Uᵀ whenever H
    has full rank). cos θ and sin θ are taken as dot / r and cross / r, r = √(dot² + cross²): correctly
    rounded operations only, whereas torch's CPU atan2 rounds differently at the ends of the threads'
    shares of a batch of 32,768 or more (``model/runtime.py``).
    """
    dot = h[:, 0, 0] + h[:, 1, 1]
    cross = h[:, 0, 1] - h[:, 1, 0]
    r = torch.sqrt(dot**2 + cross**2)
    unit = r > 0
    r_safe = torch.where(unit, r, torch.ones_like(r))
    c = torch.where(unit, dot / r_safe, torch.ones_like(r))  # atan2(0, 0) = 0: the identity
    s_ = torch.where(unit, cross / r_safe, torch.zeros_like(r))
    return torch.stack([torch.stack([c, -s_], -1), torch.stack([s_, c], -1)], -2), r


def scale_allowed(s: torch.Tensor, scale_range: tuple[float, float] | None) -> bool:
    """Whether one alignment's scale lies in ``scale_range`` (always, when there is none)."""
    return scale_range is None or scale_range[0] <= float(s) <= scale_range[1]


def solved_pose(
    src: torch.Tensor,
    dst: torch.Tensor,
    weights: torch.Tensor,
    with_scale: bool,
    scale_range: tuple[float, float] | None,
) -> Similarity2D | None:
    """One weighted closed form (:func:`weighted_procrustes`, points (N, 2) metres, weights (N,)) as a pose
    ``dst ≈ s·R·src + t``; None when it is degenerate or its scale lies outside ``scale_range``."""
    R, t, s, ok = weighted_procrustes(src, dst, weights, with_scale)
    if not bool(ok) or not scale_allowed(s, scale_range):
        return None
    return Similarity2D(R, t, s)
