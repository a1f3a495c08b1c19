"""The Loc2 matcher: descriptor heads for each view and dual-softmax matching with a dustbin.

Parameter names follow the published checkpoint (``grd_projector``, ``sat_projector``,
``dustbin_score``), so ``load_state_dict(published, strict=True)`` works unchanged (method §3–4).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ResBlock(nn.Module):
    """conv3×3 → BN → ReLU → conv3×3 → BN, plus a 1×1 shortcut when the width changes; ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int, final_relu: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, bias=False) if c_in != c_out else None
        self.final_relu = final_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        y = y + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(y) if self.final_relu else y


def _elu_plus_one(x: torch.Tensor) -> torch.Tensor:
    """elu(x) + 1, i.e. x + 1 for x > 0 and exp(x) otherwise. ``F.elu`` on the CPU finishes each thread's
    share with a scalar loop that rounds differently from its vector loop, so its result depends on the
    thread count; ``exp`` and ``where`` do not (``model/runtime.py``)."""
    return torch.where(x > 0, x + 1, torch.exp(x))


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Linear attention with φ(x) = elu(x) + 1; q, k, v (B, S, heads, dim) → (B, S, heads, dim).

    out_i = φ(q_i)·Σ_j φ(k_j) v_jᵀ / (φ(q_i)·Σ_j φ(k_j) + eps); values are divided by S and the result
    multiplied by S, as the published model does for fp16 safety.
    """
    q, k = _elu_plus_one(q), _elu_plus_one(k)
    s = v.shape[1]
    kv = torch.einsum("bshd,bshv->bhdv", k, v / s)
    z = 1.0 / (torch.einsum("bshd,bhd->bsh", q, k.sum(dim=1)) + eps)
    return torch.einsum("bshd,bhdv,bsh->bshv", q, kv, z) * s


class LinearAttentionLayer(nn.Module):
    """One self-attention layer: message = LN1(merge(attn)); out = x + LN2(MLP([x, message]))."""

    def __init__(self, dim: int, num_heads: int = 8):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.merge = nn.Linear(dim, dim, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * dim, 2 * dim, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(2 * dim, dim, bias=False),
        )
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, c = x.shape
        h = self.num_heads
        q = self.q_proj(x).view(b, s, h, c // h)
        k = self.k_proj(x).view(b, s, h, c // h)
        v = self.v_proj(x).view(b, s, h, c // h)
        message = self.norm1(self.merge(linear_attention(q, k, v).reshape(b, s, c)))
        return x + self.norm2(self.mlp(torch.cat([x, message], dim=-1)))


class AttentionStack(nn.Module):
    """``layers.{i}``: a stack of linear-attention self-attention layers."""

    def __init__(self, dim: int, depth: int = 3, num_heads: int = 8):
        super().__init__()
        self.layers = nn.ModuleList(LinearAttentionLayer(dim, num_heads) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


def sinusoidal_encoding_2d(dim: int, rows: int, cols: int, device=None) -> torch.Tensor:
    """Fixed 2-D sinusoidal encoding (dim, rows, cols) with 1-based column x and row y (method §3).

    ω_k = exp(−2k·ln(10000)/(dim/2)); channels 4k..4k+3 = sin(xω_k), cos(xω_k), sin(yω_k), cos(yω_k).
    """
    k = torch.arange(dim // 4, dtype=torch.float32, device=device)
    omega = torch.exp(-2 * k * math.log(10000.0) / (dim / 2))
    x = torch.arange(1, cols + 1, dtype=torch.float32, device=device)
    y = torch.arange(1, rows + 1, dtype=torch.float32, device=device)
    xw = omega[:, None, None] * x[None, None, :].expand(1, rows, cols)
    yw = omega[:, None, None] * y[None, :, None].expand(1, rows, cols)
    pe = torch.stack([torch.sin(xw), torch.cos(xw), torch.sin(yw), torch.cos(yw)], dim=1)
    return pe.reshape(dim, rows, cols)


class DescriptorHead(nn.Module):
    """Backbone features (B, C, h, w) → unit-length descriptors (B, desc_dim, h, w)."""

    def __init__(self, embed_dim: int, widths: tuple[int, ...], positional: bool, attn_depth: int = 3):
        super().__init__()
        chans = (embed_dim, *widths)
        self.resblocks = nn.ModuleList(ResBlock(chans[i], chans[i + 1]) for i in range(len(widths)))
        self.att_layer = AttentionStack(widths[-1], attn_depth)
        self.final_block = ResBlock(widths[-1], widths[-1], final_relu=False)
        self.positional = positional

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        x = feat
        for block in self.resblocks:
            x = block(x)
        b, c, h, w = x.shape
        if self.positional:
            x = x + sinusoidal_encoding_2d(c, h, w, device=x.device).to(x.dtype)
        x = self.att_layer(x.flatten(2).transpose(1, 2)).transpose(1, 2).reshape(b, c, h, w)
        x = self.final_block(x)
        return F.normalize(x, p=2, dim=1, eps=1e-10)


class CrossViewMatcher(nn.Module):
    """Descriptor heads for ground and aerial features and the dual-softmax matching with a dustbin.

    ``forward(ground_feat (B, C, h, w), aerial_feat (B, C, h', w'), valid (B, h·w) bool)
    -> P (B, aerial_grid², h·w)``, the matching probability (method §3–4). Aerial points are row-major
    on the ``aerial_grid`` × ``aerial_grid`` grid; ground tokens row-major on the h × w grid.
    """

    def __init__(
        self,
        embed_dim: int = 1024,
        desc_dim: int = 128,
        aerial_grid: int = 41,
        temperature: float = 0.1,
        head_widths: tuple[int, ...] | None = None,
    ):
        super().__init__()
        widths = tuple(head_widths) if head_widths else (512, 256, desc_dim)
        if widths[-1] != desc_dim:
            raise ValueError(f"the last head width {widths[-1]} must equal desc_dim {desc_dim}")
        self.aerial_grid = aerial_grid
        self.temperature = temperature
        self.grd_projector = DescriptorHead(embed_dim, widths, positional=True)
        self.sat_projector = DescriptorHead(embed_dim, widths, positional=False)
        self.dustbin_score = nn.Parameter(torch.tensor(1.0))

    def describe_aerial(self, aerial_feat: torch.Tensor) -> torch.Tensor:
        """Aerial descriptors (B, aerial_grid², D) after the bilinear resize to the aerial grid."""
        g = self.aerial_grid
        feat = F.interpolate(aerial_feat, size=(g, g), mode="bilinear", align_corners=False)
        return self.sat_projector(feat).flatten(2).transpose(1, 2)

    def describe_ground(self, ground_feat: torch.Tensor) -> torch.Tensor:
        """Ground descriptors (B, h·w, D)."""
        return self.grd_projector(ground_feat).flatten(2).transpose(1, 2)

    def scores(self, desc_aerial: torch.Tensor, desc_ground: torch.Tensor) -> torch.Tensor:
        """Similarity scores ⟨aerial_i, ground_j⟩ / τ, (B, A, G), before masking and dustbins."""
        return torch.einsum("bad,bgd->bag", desc_aerial, desc_ground) / self.temperature

    def match(
        self,
        scores: torch.Tensor,
        valid: torch.Tensor | None = None,
        aerial_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Dual softmax with a dustbin row and column (every dustbin entry = ``dustbin_score``).

        ``valid`` (B, G) masks ground tokens without depth; ``aerial_valid`` (B, A) masks aerial points
        outside the orthophoto. Masked entries get −∞ and end with probability 0.
        """
        b, a, g = scores.shape
        scores = scores.float()
        if valid is not None:
            scores = scores.masked_fill(~valid[:, None, :].bool(), float("-inf"))
        if aerial_valid is not None:
            scores = scores.masked_fill(~aerial_valid[:, :, None].bool(), float("-inf"))
        aug = self.dustbin_score.float().expand(b, a + 1, g + 1).clone()
        aug[:, :a, :g] = scores
        # the softmax over the aerial points as a last-dimension softmax of the transpose: torch's CPU
        # softmax over a non-last dimension gives results that depend on the thread count (``model/runtime.py``)
        over_aerial = F.softmax(aug.transpose(1, 2).contiguous(), dim=2).transpose(1, 2)
        prob = over_aerial * F.softmax(aug, dim=2)
        return prob[:, :a, :g]

    def forward(
        self,
        ground_feat: torch.Tensor,
        aerial_feat: torch.Tensor,
        valid: torch.Tensor | None = None,
        aerial_valid: torch.Tensor | None = None,
    ) -> torch.Tensor:
        desc_a = self.describe_aerial(aerial_feat)
        desc_g = self.describe_ground(ground_feat)
        return self.match(self.scores(desc_a, desc_g), valid, aerial_valid)
