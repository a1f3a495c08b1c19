"""Pose from matching probabilities: RANSAC over scale-aware Procrustes, batched (method §6).

:func:`ransac_pose` runs the stages in order, each a function here or in ``refine.py``: **sample** each
round's correspondences ∝ P (:func:`draw_samples`), **hypothesise** from minimal sets
(:func:`hypothesise`), **score** every hypothesis on its round's sample and keep the best
(:func:`best_hypothesis`), **refine** it on its inliers (:func:`refine_pose`), then (the precise solver)
**polish** it over all of P and move it to the **most likely** pose (``refine.py``). All hypotheses of all
rounds are solved and scored as tensors; nothing loops over hypotheses in Python. :func:`direct_pose` is
the one weighted solve without RANSAC (``SolverConfig.ransac`` False). The settings are a
:class:`~.config.SolverConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from ..geometry.pose import Similarity2D
from ..model.runtime import fixed_order_sum
from .config import PUBLISHED, SolverConfig
from .procrustes import solved_pose, weighted_procrustes
from .refine import MAX_SHIFT_M, maximum_likelihood_pose, polish_pose
from .sampling import CorrespondenceSampler, minimal_sets, sample_correspondences

_SCORED_AT_ONCE = 10  # hypotheses scored at a time: their residuals (10 × 8,192 floats) stay in the cache
# With ``choose_beyond_m``: under this share of P's mass beyond it (a wall right in front), choose on all of P.
NEAR_FALLBACK_MASS = 0.1


@dataclass
class PoseEstimate:
    """A pose ``xy_aerial_m ≈ s·R·xy_ground_m + t`` with the correspondences that support it.

    ``aerial_index``/``ground_index`` (K,) are the sampled correspondences the pose was judged on (the
    kept round's sample), ``prob`` (K,) their P and ``residual_m`` (K,) their distance under the pose;
    ``inlier_mask`` (K,) marks those within the inlier threshold.
    """

    pose: Similarity2D
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

    def inlier_ratio_on(self, xy_aerial_m, footprint_m: float) -> float:
        """Inliers / sampled correspondences whose aerial point (a row of ``xy_aerial_m`` (A, 2)) lies in the
        ``footprint_m`` square centred on the pose: the inlier ratio of one aerial image around the camera,
        as in the paper, however many search crops P spans (samples on distant crops would dilute it)."""
        xy = torch.as_tensor(xy_aerial_m, dtype=torch.float32)[self.aerial_index.cpu()]
        near = ((xy - self.pose.t.float().cpu()).abs() <= footprint_m / 2).all(dim=1)
        inliers = self.inlier_mask.cpu() & near
        n = int(near.sum())
        return int(inliers.sum()) / n if n else 0.0


class RoundSamples(NamedTuple):
    """Each round's sampled correspondences, (rounds, K) each: indices into P's rows and columns, their P,
    and their points (rounds, K, 2)."""

    aerial_index: torch.Tensor
    ground_index: torch.Tensor
    prob: torch.Tensor
    xy_ground_m: torch.Tensor
    xy_aerial_m: torch.Tensor


class Hypotheses(NamedTuple):
    """Every round's hypotheses, round by round: R (N, 2, 2), t (N, 2), s (N,), valid (N,) and the round
    each comes from (N,)."""

    R: torch.Tensor
    t: torch.Tensor
    s: torch.Tensor
    valid: torch.Tensor
    round_of: torch.Tensor


def ransac_pose(
    P: torch.Tensor,
    xy_aerial_m: torch.Tensor,
    xy_ground_m: torch.Tensor,
    config: SolverConfig = PUBLISHED,
    *,
    generator: torch.Generator | None = None,
    spread_m: torch.Tensor | None = None,
) -> PoseEstimate:
    """The pose from the matching probability P (A, G) or (1, A, G) by RANSAC (see the module docstring).

    Args:
        P: matching probabilities between aerial points (rows) and ground tokens (columns); 0 for tokens
            without valid depth.
        xy_aerial_m: (A, 2) the aerial points. xy_ground_m: (G, 2) the lifted ground tokens.
        config: the solver's settings.
        generator: a torch.Generator for reproducible sampling.
        spread_m: (G, 2) metres, each token's ground footprint along and across its bearing
            (``geometry.lifting.flat_ground_spread_m``): the likelihood refinement then stretches each
            token's kernel by it (``config.likelihood_unit_scale``). None: round kernels.
    """
    P, xy_aerial_m, xy_ground_m = _on_p_device(P, xy_aerial_m, xy_ground_m)
    samples = draw_samples(P, xy_aerial_m, xy_ground_m, config, generator)
    if samples is None:
        return _no_pose(P.device)
    hypotheses = hypothesise(samples, config, generator)
    best = best_hypothesis(samples, hypotheses, config)
    if best is None:
        return _no_pose(P.device)
    r = int(hypotheses.round_of[best])
    src, dst = samples.xy_ground_m[r], samples.xy_aerial_m[r]
    start = Similarity2D(hypotheses.R[best], hypotheses.t[best], hypotheses.s[best])
    pose, residual, mask = refine_pose(
        src,
        dst,
        start,
        config.inlier_threshold_m,
        config.refinements,
        config.with_scale,
        config.minimal_set,
        config.scale_range,
        config.refinement,
    )
    if config.polish_radii_m:
        pose = polish_pose(
            P, xy_aerial_m, xy_ground_m, pose, config.polish_radii_m, config.with_scale, config.scale_range
        )
    if config.likelihood:
        pose = likelihood_pose(P, xy_aerial_m, xy_ground_m, pose, config, spread_m)
    if config.polish_radii_m or config.likelihood:
        residual = _residuals(src, dst, pose)
        mask = residual < config.inlier_threshold_m
    score = _soft_score(residual, config.soft_threshold_m)
    return PoseEstimate(
        pose, True, int(mask.sum()), mask, score, samples.aerial_index[r], samples.ground_index[r],
        samples.prob[r], residual,
    )  # fmt: skip


def direct_pose(
    P: torch.Tensor,
    xy_aerial_m: torch.Tensor,
    xy_ground_m: torch.Tensor,
    config: SolverConfig = PUBLISHED,
    *,
    generator: torch.Generator | None = None,
) -> PoseEstimate:
    """One solve without RANSAC: ``config.direct_samples`` correspondences drawn ∝ P, weighted by P."""
    P, xy_aerial_m, xy_ground_m = _on_p_device(P, xy_aerial_m, xy_ground_m)
    ia, ig = sample_correspondences(P, config.direct_samples, generator)
    prob = P[ia, ig]
    src, dst = xy_ground_m[ig], xy_aerial_m[ia]
    R, t, s, valid = weighted_procrustes(src, dst, prob, config.with_scale)
    pose = Similarity2D(R, t, s)
    residual = _residuals(src, dst, pose)
    mask = residual < config.inlier_threshold_m
    score = _soft_score(residual, config.soft_threshold_m)
    return PoseEstimate(pose, bool(valid), int(mask.sum()), mask, score, ia, ig, prob, residual)


def _on_p_device(
    P: torch.Tensor, xy_aerial_m: torch.Tensor, xy_ground_m: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """P as (A, G) float32 and the points as float32 on its device."""
    if P.dim() == 3:
        P = P[0]
    P = P.float()
    return P, xy_aerial_m.to(P.device, torch.float32), xy_ground_m.to(P.device, torch.float32)


# ------------------------------------------------------------------------------------------- the stages
def draw_samples(
    P: torch.Tensor,
    xy_aerial_m: torch.Tensor,
    xy_ground_m: torch.Tensor,
    config: SolverConfig,
    generator: torch.Generator | None,
) -> RoundSamples | None:
    """Sample: each round's ``samples_per_round`` distinct correspondences ∝ P (only the far tokens with
    ``choose_beyond_m``; fewer when P has fewer); None when that is below a minimal set."""
    sampler = CorrespondenceSampler(P, _far_columns(P, xy_ground_m, config.choose_beyond_m))
    ia, ig = sampler.draw_rounds(config.rounds, config.samples_per_round, generator)  # (rounds, K) each
    if ia.shape[1] < config.minimal_set:
        return None
    return RoundSamples(ia, ig, P[ia, ig], xy_ground_m[ig], xy_aerial_m[ia])


def hypothesise(samples: RoundSamples, config: SolverConfig, generator: torch.Generator | None) -> Hypotheses:
    """Hypothesise: per round, ``hypotheses_per_round`` minimal sets of distinct correspondences drawn ∝ P
    within the round's sample, each solved in closed form (all at once)."""
    per_round = config.hypotheses_per_round
    pick = minimal_sets(samples.prob, config.minimal_set, generator, per_row=per_round)  # (rounds·H, set)
    round_of = torch.arange(config.rounds, device=pick.device).repeat_interleave(per_round)
    src = samples.xy_ground_m[round_of[:, None], pick]
    dst = samples.xy_aerial_m[round_of[:, None], pick]
    R, t, s, valid = weighted_procrustes(src, dst, None, config.with_scale)
    return Hypotheses(R, t, s, valid, round_of)


def best_hypothesis(samples: RoundSamples, hypotheses: Hypotheses, config: SolverConfig) -> int | None:
    """Score: every hypothesis' soft inlier count on its round's sample; the index of the best valid one
    (within ``scale_range``), or None when none is valid."""
    rounds, per_round = config.rounds, config.hypotheses_per_round
    R, t, s, valid, _ = hypotheses
    scores = score_hypotheses(
        samples.xy_ground_m,
        samples.xy_aerial_m,
        R.view(rounds, per_round, 2, 2),
        t.view(rounds, per_round, 2),
        s.view(rounds, per_round),
        config.soft_threshold_m,
    ).reshape(-1)
    if config.scale_range is not None:
        valid = valid & (s >= config.scale_range[0]) & (s <= config.scale_range[1])
    scores = torch.where(valid, scores, torch.full_like(scores, -1.0))
    best = int(torch.argmax(scores))
    return best if bool(valid[best]) else None


def score_hypotheses(
    src: torch.Tensor,
    dst: torch.Tensor,
    R: torch.Tensor,
    t: torch.Tensor,
    s: torch.Tensor,
    soft_threshold_m: float,
) -> torch.Tensor:
    """Soft inlier counts Σ sigmoid(β(soft_threshold_m − residual)), β = 5 / soft_threshold_m, of all
    hypotheses.

    src, dst: (rounds, K, 2) each round's sampled correspondences (ground, aerial); R (rounds, H, 2, 2),
    t (rounds, H, 2), s (rounds, H): that round's hypotheses. Returns (rounds, H). A few hypotheses at a
    time (their residuals stay in the cache): one matrix product gives both components of s·R·src + t − dst
    (rows [s·R | t | −1] times columns [src, 1, dst]), then in-place element-wise work.
    """
    beta = 5.0 / soft_threshold_m
    rounds, per_round = R.shape[:2]
    rows = torch.zeros(rounds, per_round, 2, 5, dtype=src.dtype, device=src.device)
    rows[..., :2] = s[..., None, None] * R
    rows[..., 2] = t
    rows[..., 0, 3] = rows[..., 1, 4] = -1.0
    rows = rows.view(rounds, 2 * per_round, 5)
    columns = torch.cat([src, torch.ones_like(src[..., :1]), dst], dim=-1).transpose(1, 2).contiguous()
    out = torch.empty(rounds, per_round, device=src.device)
    at_once = (
        _SCORED_AT_ONCE if src.device.type == "cpu" else per_round
    )  # a GPU: whole rounds, fewer launches
    for r in range(rounds):
        for h in range(0, per_round, at_once):
            square = (rows[r, 2 * h : 2 * (h + at_once)] @ columns[r]).square_()
            residual = square.view(-1, 2, columns.shape[-1]).sum(1).sqrt_()
            # sigmoid(β(soft − residual)) = 1 / (1 + exp(β·residual − β·soft)): see _sigmoid_
            out[r, h : h + at_once] = (
                residual.mul_(beta).sub_(beta * soft_threshold_m).exp_().add_(1.0).reciprocal_().sum(-1)
            )
    return out


def refine_pose(
    src: torch.Tensor,
    dst: torch.Tensor,
    pose: Similarity2D,
    inlier_threshold_m: float = 2.5,
    refinements: int = 4,
    with_scale: bool = True,
    minimal_count: int = 3,
    scale_range: tuple[float, float] | None = None,
    rule: str = "published",
) -> tuple[Similarity2D, torch.Tensor, torch.Tensor]:
    """Refine: re-solve on the hard inliers (within ``inlier_threshold_m``) up to ``refinements`` times.
    ``src``/``dst`` (N, 2): ground and aerial points (metres); ``rule`` (``config.REFINEMENTS``):

    * ``published`` (the release, method §6 and §10): step k counts the inliers of the current pose; when
      that count is at least ``minimal_count`` and larger than the previous step's (``minimal_count`` before
      the first step), the pose is replaced by the weighted re-solve on them, unchecked; otherwise the
      refinement stops. So the pose returned after the last step was never counted. (A degenerate re-solve,
      which the release would keep as a meaningless pose, stops it too; and with ``scale_range`` one outside
      the range.)
    * ``checked``: a re-solve is kept only when its own inlier count is larger than the current pose's and at
      least ``minimal_count`` (and its scale lies in ``scale_range``); otherwise the refinement stops.

    Returns (the pose, its residuals (N,) metres, its inlier mask (N,)).
    """
    settings = _RefineSettings(inlier_threshold_m, refinements, with_scale, minimal_count, scale_range)
    if rule == "checked":
        return _refine_checked(src, dst, pose, settings)
    if rule != "published":
        raise ValueError(f"unknown refinement rule {rule!r}")
    pose = _refine_published(src, dst, pose, settings)
    residual = _residuals(src, dst, pose)
    return pose, residual, residual < inlier_threshold_m


class _RefineSettings(NamedTuple):
    """The options of :func:`refine_pose` (metres; counts)."""

    inlier_threshold_m: float
    refinements: int
    with_scale: bool
    minimal_count: int
    scale_range: tuple[float, float] | None


def _refine_published(
    src: torch.Tensor, dst: torch.Tensor, pose: Similarity2D, settings: _RefineSettings
) -> Similarity2D:
    """The release's refinement (:func:`refine_pose`, rule ``published``): the refined pose."""
    previous = settings.minimal_count
    for _ in range(settings.refinements):
        mask = _residuals(src, dst, pose) < settings.inlier_threshold_m
        count = int(mask.sum())
        if count < settings.minimal_count or count <= previous:
            break
        previous = count
        new = solved_pose(src, dst, mask.float(), settings.with_scale, settings.scale_range)
        if new is None:
            break
        pose = new
    return pose


def _refine_checked(
    src: torch.Tensor, dst: torch.Tensor, pose: Similarity2D, settings: _RefineSettings
) -> tuple[Similarity2D, torch.Tensor, torch.Tensor]:
    """Our refinement (:func:`refine_pose`, rule ``checked``): (pose, residuals, inlier mask)."""
    residual = _residuals(src, dst, pose)
    mask = residual < settings.inlier_threshold_m
    for _ in range(settings.refinements):
        new = solved_pose(src, dst, mask.float(), settings.with_scale, settings.scale_range)
        if new is None:
            break
        residual_n = _residuals(src, dst, new)
        mask_n = residual_n < settings.inlier_threshold_m
        if int(mask_n.sum()) <= int(mask.sum()) or int(mask_n.sum()) < settings.minimal_count:
            break
        pose, residual, mask = new, residual_n, mask_n
    return pose, residual, mask


def likelihood_pose(
    P: torch.Tensor,
    xy_aerial_m: torch.Tensor,
    xy_ground_m: torch.Tensor,
    pose: Similarity2D,
    config: SolverConfig,
    spread_m: torch.Tensor | None = None,
) -> Similarity2D:
    """Most likely: :func:`~.refine.maximum_likelihood_pose` with the configuration's scale rules. Chosen
    without the near ground, the pose must not follow it back to a look-alike (``refine.MAX_SHIFT_M``)."""
    return maximum_likelihood_pose(
        P,
        xy_aerial_m,
        xy_ground_m,
        pose,
        with_scale=config.with_scale and not config.likelihood_unit_scale,
        scale_range=config.scale_range,
        max_shift_m=MAX_SHIFT_M if config.choose_beyond_m is not None else math.inf,
        spread_m=None if spread_m is None else spread_m.to(P.device, torch.float32),
    )


# ----------------------------------------------------------------------------------------------- helpers
def _far_columns(P: torch.Tensor, xy_ground_m: torch.Tensor, beyond_m: float | None) -> torch.Tensor | None:
    """The ground tokens (G,) bool at least ``beyond_m`` metres from the camera, or None (every token) when
    ``beyond_m`` is None or they hold under ``NEAR_FALLBACK_MASS`` of P's mass."""
    if beyond_m is None:
        return None
    far = xy_ground_m.norm(dim=-1) >= beyond_m
    column_mass = P.sum(0).double()  # (summing with dtype=float64 would convert all of P first)
    far_mass, mass = fixed_order_sum(column_mass[far]), fixed_order_sum(column_mass)  # any thread count
    return far if float(far_mass) >= NEAR_FALLBACK_MASS * float(mass) else None


def _residuals(src: torch.Tensor, dst: torch.Tensor, pose: Similarity2D) -> torch.Tensor:
    """‖s·R·src + t − dst‖ in metres for one pose and points (N, 2) → (N,)."""
    return (pose.apply(src) - dst).norm(dim=-1)


def _sigmoid_(z: torch.Tensor) -> torch.Tensor:
    """sigmoid(z) in place, as 1 / (1 + exp(−z)). ``torch.sigmoid`` on the CPU finishes each thread's share
    with a scalar loop that rounds differently from its vector loop, so a hypothesis' score (and the pose
    kept) would depend on the thread count; ``exp`` and the arithmetic do not (``model/runtime.py``)."""
    return z.neg_().exp_().add_(1.0).reciprocal_()


def _soft_score(residual: torch.Tensor, soft_threshold_m: float) -> float:
    return float(fixed_order_sum(_sigmoid_((5.0 / soft_threshold_m) * (soft_threshold_m - residual))))


def _no_pose(device) -> PoseEstimate:
    empty_i = torch.zeros(0, dtype=torch.long, device=device)
    empty_f = torch.zeros(0, device=device)
    pose = Similarity2D(
        torch.eye(2, device=device), torch.zeros(2, device=device), torch.tensor(1.0, device=device)
    )
    no_inliers = torch.zeros(0, dtype=torch.bool, device=device)
    return PoseEstimate(pose, False, 0, no_inliers, 0.0, empty_i, empty_i, empty_f, empty_f)
