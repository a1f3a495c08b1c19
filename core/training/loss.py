"""The training loss (method §7): VCE + β·(InfoNCE ground→aerial + InfoNCE aerial→ground)/2 with β = 1.

VCE moves a 10 × 10 grid of virtual points spanning 5 m with the true and with the predicted pose
(differentiable weighted Procrustes on 1,024 correspondences sampled from P) and averages their distance.
InfoNCE uses the scores before the dustbin; positives come from moving lifted ground points with the true
pose.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry.cameras import Equirectangular, aerial_grid_xy
from ..inputs.depth import DepthMap
from ..localizer import Localizer
from ..solver.procrustes import weighted_procrustes
from ..solver.sampling import CorrespondenceSampler
from .data import Batch

VCE_GRID = 10
VCE_SPAN_M = 5.0
NCE_WEIGHT = 1.0
VCE_SAMPLES = 1024
NEGATIVE_EXCLUSION_M = 1.0


def _lift_batch(
    localizer: Localizer, batch: Batch, grid_rc: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground BEV points (B, G, 2) and validity (B, G) of each sample's token grid (``Localizer.lift``)."""
    input_hw = tuple(batch.ground.shape[-2:])
    pts, valid = [], []
    for depth, cam in zip(batch.depth, batch.cameras, strict=True):
        kind = "radial" if isinstance(cam, Equirectangular) else "z"
        xy, ok = localizer.lift(DepthMap(depth, kind=kind), cam, grid_rc, input_hw)
        pts.append(np.nan_to_num(xy))
        valid.append(ok)
    return torch.tensor(np.stack(pts), dtype=torch.float32), torch.from_numpy(np.stack(valid))


def _virtual_points() -> torch.Tensor:
    lin = torch.linspace(-VCE_SPAN_M / 2, VCE_SPAN_M / 2, VCE_GRID)
    return torch.stack(torch.meshgrid(lin, lin, indexing="ij"), -1).reshape(-1, 2)


def _infonce_terms(
    scores_b: tuple[torch.Tensor, ...],
    valid: torch.Tensor,
    moved: torch.Tensor,
    d: torch.Tensor,
    cell: float,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The two InfoNCE terms of each sample (method §7): ground → aerial and aerial → ground.

    ``scores_b``: per sample (A, G) scores; ``valid``: (B, G) lifted ground tokens; ``moved``: (B, G, 2) the
    ground points moved by the true pose into the aerial frame (metres); ``d``: (B, G, A) their distances to
    the aerial points; ``cell``: the aerial grid's spacing (metres), the radius of a positive.
    """
    nce_g2a, nce_a2g = [], []
    for b in range(len(moved)):
        # ground → aerial: each valid ground token whose moved point has an aerial point within a cell
        dist, nearest = d[b].min(dim=1)
        pos_g = valid[b] & (dist <= cell)
        if pos_g.any():
            logp = F.log_softmax(scores_b[b][:, pos_g], dim=0)  # over aerial points
            nce_g2a.append(-logp[nearest[pos_g], torch.arange(int(pos_g.sum()))].mean())
        # aerial → ground: each aerial point with a moved valid ground point within a cell
        d_b = d[b].masked_fill(~valid[b][:, None], float("inf"))
        dist_a, nearest_a = d_b.min(dim=0)
        pos_a = dist_a <= cell
        if pos_a.any():
            s = scores_b[b][pos_a]  # (Npos, G)
            pos_idx = nearest_a[pos_a]
            near_pos = torch.cdist(moved[b][pos_idx], moved[b]) < NEGATIVE_EXCLUSION_M  # (Npos, G)
            near_pos[torch.arange(len(pos_idx)), pos_idx] = False
            excluded = near_pos | ~valid[b][None]
            s = s.masked_fill(excluded, float("-inf"))
            logp = F.log_softmax(s, dim=1)
            nce_a2g.append(-logp[torch.arange(len(pos_idx)), pos_idx].mean())
    return nce_g2a, nce_a2g


def _vce_terms(
    P_b: tuple[torch.Tensor, ...],
    xy_ground_m: torch.Tensor,
    xy_aerial_m: torch.Tensor,
    batch: Batch,
    generator: torch.Generator | None,
) -> list[torch.Tensor]:
    """The virtual correspondence error of each sample (method §7): a differentiable weighted solve on
    correspondences sampled from its P (A, G), compared with the true pose on the virtual points (metres)."""
    vp = _virtual_points()
    vce = []
    for b in range(len(P_b)):
        flat = P_b[b].reshape(-1)
        n = min(VCE_SAMPLES, int((flat.detach() > 0).sum()))
        if n < 3:
            continue
        ia, ig = CorrespondenceSampler(P_b[b].detach()).draw(n, generator)
        idx = ia * P_b[b].shape[1] + ig
        R_hat, t_hat, s_hat, ok = weighted_procrustes(
            xy_ground_m[b][ig], xy_aerial_m[ia], flat[idx], with_scale=True
        )
        if not bool(ok):
            continue
        true_v = vp @ batch.R[b].T + batch.t[b]
        pred_v = s_hat * vp @ R_hat.T + t_hat
        vce.append((true_v - pred_v).norm(dim=-1).mean())
    return vce


def loss_terms(
    localizer: Localizer, batch: Batch, generator: torch.Generator | None = None
) -> dict[str, torch.Tensor]:
    """VCE, the two InfoNCE terms and their weighted sum for one batch (method §7)."""
    preset = localizer.preset
    matcher = localizer.matcher
    g_feat = localizer.backbone(batch.ground)
    a_feat = localizer.backbone(batch.aerial)
    rows, cols = g_feat.shape[-2:]
    xy_ground_m, valid = _lift_batch(localizer, batch, (rows, cols))
    xy_aerial_m = torch.tensor(
        aerial_grid_xy(preset.aerial_footprint_m, preset.aerial_grid), dtype=torch.float32
    )
    desc_a = matcher.describe_aerial(a_feat)
    desc_g = matcher.describe_ground(g_feat)
    scores = matcher.scores(desc_a, desc_g)  # (B, A, G)
    P = matcher.match(scores, valid)

    cell = preset.aerial_footprint_m / (preset.aerial_grid - 1)
    moved = torch.einsum("bij,bgj->bgi", batch.R, xy_ground_m) + batch.t[:, None]  # true ground → aerial
    d = torch.cdist(moved, xy_aerial_m[None].expand(len(moved), -1, -1))  # (B, G, A)
    # per-sample views through unbind: one stack in backward instead of a full-size zero tensor per index
    scores_b, P_b = scores.unbind(0), P.unbind(0)
    nce_g2a, nce_a2g = _infonce_terms(scores_b, valid, moved, d, cell)
    vce = _vce_terms(P_b, xy_ground_m, xy_aerial_m, batch, generator)

    zero = scores.sum() * 0
    terms = {
        "vce": torch.stack(vce).mean() if vce else zero,
        "nce_g2a": torch.stack(nce_g2a).mean() if nce_g2a else zero,
        "nce_a2g": torch.stack(nce_a2g).mean() if nce_a2g else zero,
    }
    terms["loss"] = terms["vce"] + NCE_WEIGHT * (terms["nce_g2a"] + terms["nce_a2g"]) / 2
    return terms
