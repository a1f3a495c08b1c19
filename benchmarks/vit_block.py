"""Where one ViT-L/14 block's time goes on this CPU, at a token count (default VIGOR's ground image, 5,203):
attention (and `scaled_dot_product_attention` alone; contiguous heads against 0.14's strided views) and the
MLP, against a plain weight product's rate; the GELU in place against the plain formula; the MLP over token chunks, and whether each variant keeps the bits.

    .venv/bin/python benchmarks/vit_block.py [--tokens 5203] [--repeats 3]

Random weights (timing does not depend on them); the best of ``--repeats`` timed calls after one untimed.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn.functional as F

from loc2.core.model import backbone
from loc2.core.model.runtime import make_cpu_reproducible

DIM, HEADS = 1024, 16


def _best(fn, repeats: int) -> float:
    fn()
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _strided_attention(attn: backbone.Attention, x: torch.Tensor) -> torch.Tensor:
    """The attention as 0.14 ran it: q, k and v as strided views of the qkv projection."""
    b, n, c = x.shape
    qkv = attn.qkv(x).reshape(b, n, 3, attn.num_heads, c // attn.num_heads).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
    return attn.proj(out.transpose(1, 2).reshape(b, n, c))


def _plain_gelu(x: torch.Tensor) -> torch.Tensor:
    return x * 0.5 * (1.0 + torch.erf(x * (1 / math.sqrt(2))))


@torch.inference_mode()
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=5203)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    make_cpu_reproducible()
    torch.manual_seed(0)
    n, r = args.tokens, args.repeats
    block = backbone.Block(backbone.VIT_CONFIGS["vitl14"]).eval()
    x = torch.randn(1, n, DIM)
    q = torch.randn(1, HEADS, n, DIM // HEADS)
    hidden = torch.randn(n, 4 * DIM)
    weight = torch.randn(DIM, 4 * DIM)
    out = {
        "matmul_gflops": 2 * n * DIM * 4 * DIM / _best(lambda: x[0] @ weight, r) / 1e9,
        "sdpa_gflops": 4 * n * n * DIM / _best(lambda: F.scaled_dot_product_attention(q, q, q), r) / 1e9,
        "block_s": _best(lambda: block(x), r),
        "attention_s": _best(lambda: block.attn(x), r),
        "attention_strided_s": _best(lambda: _strided_attention(block.attn, x), r),
        "attention_strided_same_bits": torch.equal(block.attn(x), _strided_attention(block.attn, x)),
        "mlp_s": _best(lambda: block.mlp(x), r),  # in chunks of backbone.MLP_CHUNK_TOKENS
        "mlp_whole_s": _best(lambda: block.mlp._forward(x), r),
        "mlp_whole_same_bits": torch.equal(block.mlp(x), block.mlp._forward(x)),
        "gelu_plain_s": _best(lambda: _plain_gelu(hidden), r),
        "gelu_in_place_s": _best(lambda: backbone.gelu(hidden), r),
        "gelu_same_bits": torch.equal(_plain_gelu(hidden), backbone.gelu(hidden)),
    }
    whole = block.mlp._forward(x)
    for size in (256, 512, 1024, 2048):
        chunked = lambda size=size: torch.cat([block.mlp._forward(c) for c in x.split(size, dim=1)], dim=1)  # noqa: E731
        out[f"mlp_chunks_{size}_s"] = _best(chunked, r)
        out[f"mlp_chunks_{size}_same_bits"] = torch.equal(whole, chunked())
    print(f"# one ViT-L/14 block at {n} tokens, {torch.get_num_threads()} threads")
    for key, value in out.items():
        print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return out


if __name__ == "__main__":
    main()
