"""What a ViT-L/14 forward costs and how fast this machine could run it: FLOPs at a token count and
the rate of its matrix products here, measured now (the limit the backbone is judged against).

Used by ``benchmarks/throughput.py`` (CPU and GPU) and ``benchmarks/gpu_check.py``.
"""

from __future__ import annotations

import time

import torch

PATCH = 14
DIM, DEPTH, HEADS, MLP = 1024, 24, 16, 4096  # DINOv2 ViT-L/14 (method §2)


def tokens_of(h: int, w: int) -> int:
    """Tokens of an H × W image through the backbone: one per 14 × 14 patch plus the class token."""
    return (h // PATCH) * (w // PATCH) + 1


def vit_flops(tokens: int) -> float:
    """FLOPs (multiply-adds × 2) of the ViT-L forward's matrix products at ``tokens`` tokens: per block qkv,
    projection and MLP 24·N·d², attention QKᵀ and AV 4·N²·d; the patch embedding 2·N·588·d."""
    n, d = tokens, DIM
    return DEPTH * (24 * n * d * d + 4 * n * n * d) + 2 * n * 3 * PATCH * PATCH * d


def _best_seconds(fn, repeats: int, device: torch.device) -> float:
    """The shortest of ``repeats`` timed calls (after one untimed), seconds; synchronised on CUDA."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()
    sync()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


@torch.inference_mode()
def matmul_rate(
    tokens: int, batch: int = 1, device: str | torch.device = "cpu", dtype=torch.float32, repeats: int = 2
) -> float:
    """FLOP/s of this machine's matrix products at the ViT-L forward's shapes, measured now: one block's four
    weight products ((B·N, d) × (d, 3d), (d, d), (d, 4d) and (B·N, 4d) × (4d, d)), each timed alone."""
    device = torch.device(device)
    n, d = tokens * batch, DIM
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, d, generator=g, device=device, dtype=dtype)
    h = torch.randn(n, MLP, generator=g, device=device, dtype=dtype)
    weights = [torch.randn(*shape, generator=g, device=device, dtype=dtype)
               for shape in ((d, 3 * d), (d, d), (d, MLP), (MLP, d))]  # fmt: skip
    seconds = sum(
        _best_seconds(lambda w=w, a=(h if w.shape[0] == MLP else x): a @ w, repeats, device) for w in weights
    )
    flops = sum(2 * n * w.shape[0] * w.shape[1] for w in weights)
    return flops / seconds


def matmul_limit_s(
    tokens: int, batch: int = 1, device: str | torch.device = "cpu", dtype=torch.float32, repeats: int = 2
) -> float:
    """Seconds the ViT-L forward would take if all its FLOPs (:func:`vit_flops`, attention included) ran at
    the rate of its weight products measured now (:func:`matmul_rate`).

    The attention products are counted at that rate too, not timed as plain matrix products: materialised
    one head at a time, QKᵀ and AV at N = 5,203 tokens write and read a 108 MB matrix and run at memory speed
    (the VIGOR forward came out at 296 % of such a "limit"), whereas a fused attention kernel
    (``scaled_dot_product_attention``) never writes it and can approach the matrix-product rate."""
    return vit_flops(tokens) * batch / matmul_rate(tokens, batch, device, dtype, repeats)
