"""RANSAC solver benchmark: batched hypotheses (ours) vs a plain sequential loop over the same hypotheses.

Synthetic correspondences as in a VIGOR image: 1,681 aerial × 5,202 ground points, 30 % of the ground
tokens matched to their true aerial point. Both solvers score exactly the same 2,000 minimal sets drawn
from the same samples, then refine; the sampling (shared) is timed separately. Then the precise solver's
additions on the kept pose: the polish over all matches and the maximum-likelihood refinement.

    .venv/bin/python benchmarks/solver.py [--repeats 3] [--poses]
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from loc2.core.geometry.cameras import aerial_grid_xy
from loc2.core.geometry.pose import Similarity2D
from loc2.core.solver.config import METRIC_SCALE_RANGE, POLISH_RADII_M
from loc2.core.solver.procrustes import weighted_procrustes
from loc2.core.solver.ransac import refine_pose, score_hypotheses
from loc2.core.solver.refine import maximum_likelihood_pose, polish_pose
from loc2.core.solver.sampling import CorrespondenceSampler, minimal_sets

ROUNDS, SAMPLES, HYPOTHESES, SOFT, INLIER = 20, 8192, 100, 5.0, 2.5


def scenario(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    aerial = torch.from_numpy(aerial_grid_xy(72.0, 41)).float()
    n = 5202
    yaw = math.radians(37.0)
    R = torch.tensor([[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)]])
    t = torch.tensor([3.3, -5.1])
    target = torch.randint(0, len(aerial), (n,), generator=gen)
    inlier = torch.rand(n, generator=gen) < 0.3
    ground = (aerial[target] - t) @ R
    ground = ground + torch.randn(n, 2, generator=gen) * 0.3  # depth noise
    ground[~inlier] = torch.rand(int((~inlier).sum()), 2, generator=gen) * 60 - 30
    logits = torch.randn(len(aerial), n, generator=gen)
    logits[target, torch.arange(n)] += 8.0
    P = torch.softmax(logits, 0) * torch.softmax(logits, 1)
    return P, aerial, ground, R, t


def draw(P, aerial, ground, seed):
    gen = torch.Generator().manual_seed(seed)
    sampler = CorrespondenceSampler(P)
    samples = [sampler.draw(SAMPLES, gen) for _ in range(ROUNDS)]
    ia = torch.stack([s[0] for s in samples])
    ig = torch.stack([s[1] for s in samples])
    prob = P[ia, ig]
    picks = minimal_sets(prob, 3, gen, per_row=HYPOTHESES).view(ROUNDS, HYPOTHESES, 3)
    return ground[ig], aerial[ia], picks


def refine(src, dst, R, t, s) -> Similarity2D:
    return refine_pose(src, dst, Similarity2D(R, t, s), INLIER)[0]


def batched(src, dst, picks):
    rounds = torch.arange(ROUNDS)[:, None, None]
    R, t, s, valid = weighted_procrustes(
        src[rounds, picks].reshape(-1, 3, 2), dst[rounds, picks].reshape(-1, 3, 2)
    )
    scores = score_hypotheses(
        src,
        dst,
        R.view(ROUNDS, HYPOTHESES, 2, 2),
        t.view(ROUNDS, HYPOTHESES, 2),
        s.view(ROUNDS, HYPOTHESES),
        SOFT,
    ).reshape(-1)
    best = int(torch.argmax(torch.where(valid, scores, torch.full_like(scores, -1.0))))
    r = best // HYPOTHESES
    return refine(src[r], dst[r], R[best], t[best], s[best])


def sequential(src, dst, picks):
    best, best_score = None, -1.0
    for r in range(ROUNDS):
        for h in range(HYPOTHESES):
            idx = picks[r, h]
            R, t, s, ok = weighted_procrustes(src[r, idx], dst[r, idx])
            if not bool(ok):
                continue
            res = (s * src[r] @ R.T + t - dst[r]).norm(dim=-1)
            score = float(torch.sigmoid((5.0 / SOFT) * (SOFT - res)).sum())
            if score > best_score:
                best, best_score = (r, R, t, s), score
    r, R, t, s = best
    return refine(src[r], dst[r], R, t, s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--poses", action="store_true", help="also print every pose in full precision")
    args = parser.parse_args()
    P, aerial, ground, R_true, t_true = scenario()
    true = Similarity2D(R_true, t_true)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; 1681 × 5202 correspondences, 30 % inliers"
    )
    t_sample, t_ours, t_seq = [], [], []
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        src, dst, picks = draw(P, aerial, ground, rep)
        t_sample.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours = batched(src, dst, picks)
        t_ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        seq = sequential(src, dst, picks)
        t_seq.append(time.perf_counter() - t0)
    for name, pose in (("batched", ours), ("sequential", seq)):
        err_t, err_r = _errors(pose, true)
        print(f"{name:>10}: position error {err_t:.3f} m, yaw error {err_r:.3f}°")
    best = lambda xs: min(xs)  # noqa: E731
    print(f"sampling (shared): {best(t_sample):.3f} s")
    print(
        f"hypotheses + refinement: batched {best(t_ours):.3f} s, sequential {best(t_seq):.3f} s, "
        f"speed-up {best(t_seq) / best(t_ours):.1f}×"
    )
    total_ours, total_seq = best(t_sample) + best(t_ours), best(t_sample) + best(t_seq)
    print(
        f"whole solver incl. sampling: {total_ours:.3f} s vs {total_seq:.3f} s ({total_seq / total_ours:.1f}×)"
    )
    polished, refined = precise_additions(P, aerial, ground, ours, true, args.repeats)
    if args.poses:
        for name, pose in (
            ("batched", ours),
            ("sequential", seq),
            ("polished", polished),
            ("refined", refined),
        ):
            print(f"{name}: t {pose.t.tolist()!r} R {pose.R.reshape(-1).tolist()!r} s {float(pose.s)!r}")


def _errors(pose: Similarity2D, true: Similarity2D) -> tuple[float, float]:
    """Position error (m) and yaw error (degrees) of a pose."""
    return float((pose.t - true.t).norm()), abs(pose.yaw_deg - true.yaw_deg)


def _text(pose: Similarity2D, true: Similarity2D) -> str:
    return "{:.3f} m, {:.3f}°".format(*_errors(pose, true))


def precise_additions(P, aerial, ground, pose: Similarity2D, true: Similarity2D, repeats: int):
    """Time (best of ``repeats``) and effect of the polish and the maximum-likelihood refinement; returns
    the polished and the refined pose."""
    t_polish, t_ml = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        polished = polish_pose(P, aerial, ground, pose, POLISH_RADII_M, True, METRIC_SCALE_RANGE)
        t_polish.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        refined = maximum_likelihood_pose(P, aerial, ground, polished, scale_range=METRIC_SCALE_RANGE)
        t_ml.append(time.perf_counter() - t0)
    print(
        f"precise additions: polish {min(t_polish):.3f} s -> {_text(polished, true)}; "
        f"maximum likelihood {min(t_ml):.3f} s -> {_text(refined, true)} "
        f"(from RANSAC's {_text(pose, true)})"
    )
    return polished, refined


if __name__ == "__main__":
    main()
