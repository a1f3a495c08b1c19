"""What a ViT-L/14 forward costs and how fast this machine could run it: FLOPs at a token count and the
time the same matrix products take here, measured now (the limit the backbone is judged against).

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
def matmul_limit_s(
    tokens: int, batch: int = 1, device: str | torch.device = "cpu", dtype=torch.float32, repeats: int = 2
) -> float:
    """Seconds the ViT-L forward's matrix products take on their own, at the forward's shapes: one block's
    four weight products and its attention products (one head at a time, (N, 64) × (64, N) and
    (N, N) × (N, 64)), measured here, times the depth. The patch embedding (under 1 %) is left out."""
    device = torch.device(device)
    n, d, hd = tokens * batch, DIM, DIM // HEADS
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(n, d, generator=g, device=device, dtype=dtype)
    h = torch.randn(n, MLP, generator=g, device=device, dtype=dtype)
    weights = {shape: torch.randn(*shape, generator=g, device=device, dtype=dtype) for shape in
               ((d, 3 * d), (d, d), (d, MLP), (MLP, d))}  # fmt: skip
    linear = sum(
        _best_seconds(lambda w=w, a=(h if w.shape[0] == MLP else x): a @ w, repeats, device)
        for w in weights.values()
    )
    q = torch.randn(tokens, hd, generator=g, device=device, dtype=dtype)
    scores = torch.randn(tokens, tokens, generator=g, device=device, dtype=dtype)
    one_head = _best_seconds(lambda: q @ q.T, repeats, device) + _best_seconds(
        lambda: scores @ q, repeats, device
    )
    return DEPTH * (linear + one_head * HEADS * batch)
