"""The GPU figures in one run (``benchmarks/gpu_check.sh`` calls this): photos per second at batch 1, 8 and
32 at the published VIGOR and KITTI sizes (random weights; backbone and heads batched in fp16 autocast as
published, the solver per photo on the device), the solver's time, peak GPU memory, the backbone's achieved
fraction of the GPU's bf16 peak (a bf16-autocast forward at the VIGOR size), and ``compare``: whether two
result tables (``loc2 localize`` on the GPU and on the CPU) give the same poses.

    python benchmarks/gpu_check.py figures --device cuda [--quick]
    python benchmarks/gpu_check.py compare DEVICE.csv CPU.csv [--tolerance-m 0.5] [--tolerance-deg 1]

``--device cpu --quick`` runs the same code at a small size (a 112 × 224 panorama, 112 px aerial) so the
script is exercised without a GPU (``tests/test_benchmarks.py``).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import torch

from loc2.benchmarks.limits import matmul_limit_s, tokens_of, vit_flops
from loc2.benchmarks.throughput import CONFIGS, STAGES, run_isolated

# dense bf16 tensor-core peaks (TFLOP/s, without sparsity) of the GPUs these checks expect, from the vendors'
# data sheets; another GPU is judged against its measured bf16 matmul rate only
BF16_PEAK_TFLOPS = {"H100 SXM": 989.0, "H100 80GB HBM3": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0,
                    "H200": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0}  # fmt: skip


def nominal_peak_tflops(name: str) -> float | None:
    """The data-sheet bf16 peak of a GPU by (part of) its name, or None."""
    for key, peak in sorted(BF16_PEAK_TFLOPS.items(), key=lambda kv: -len(kv[0])):
        if key in name:
            return peak
    return None


def photos_per_second(device: str, quick: bool) -> list[dict]:
    """Each configuration and batch in its own process (``throughput.run_isolated``): one row each."""
    configs = ("tiny",) if quick else ("vigor", "kitti")
    batches = (1, 2) if quick else (1, 8, 32)
    rows = []
    for name in configs:
        for batch in batches:
            # quick (the CPU): one thread, so that a machine shared with other jobs does not stall it
            row = run_isolated(
                name, device, 1 if quick else 3, 0 if quick else 1, batch, 1 if quick else None
            )
            if "error" in row:
                print(f"{name} batch {batch}: {row['error']}", flush=True)
                continue
            per_photo = sum(row[k] for k in STAGES[:4])
            row["photos_per_s"] = 1 / per_photo
            rows.append(row)
            gpu = f", peak GPU {row['peak_gpu_mb']:.0f} MB" if row.get("peak_gpu_mb") else ""
            print(
                f"{name} {row['ground_hw'][0]}×{row['ground_hw'][1]} + {row['aerial_px']} px, batch {batch}: "
                f"{row['photos_per_s']:.2f} photos/s (backbone {row['backbone_ground'] + row['backbone_aerial']:.4f} s, "
                f"heads {row['heads']:.4f} s, solver {row['solver']:.4f} s per photo; peak RSS "
                f"{row['peak_rss_mb']:.0f} MB{gpu})",
                flush=True,
            )
    return rows


@torch.inference_mode()
def backbone_fraction(device: str, quick: bool) -> dict:
    """A ViT-L forward at the VIGOR ground size, batch 8 (quick: the tiny size, batch 2), under bf16
    autocast on CUDA (fp32 on the CPU): achieved FLOP/s against the matmul limit measured now and, on a
    known GPU, its data-sheet bf16 peak."""
    from loc2.core.model.backbone import DinoV2
    from loc2.core.model.runtime import make_cpu_reproducible

    make_cpu_reproducible()
    dev = torch.device(device)
    name = "tiny" if quick else "vigor"
    (h, w), batch = CONFIGS[name][1], (2 if quick else 8)
    net = DinoV2("vitl14").to(dev).eval()
    images = torch.rand(batch, 3, h, w, device=dev)
    dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32

    def forward():
        with torch.autocast(dev.type, dtype=dtype, enabled=dev.type == "cuda"):
            net(images)

    forward()  # warm-up
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    t0 = time.perf_counter()
    repeats = 1 if quick or dev.type != "cuda" else 5
    for _ in range(repeats):
        forward()
    sync()
    seconds = (time.perf_counter() - t0) / repeats
    tokens = tokens_of(h, w)
    achieved = vit_flops(tokens) * batch / seconds
    limit = matmul_limit_s(tokens, batch, dev, dtype)
    out = {"tokens": tokens, "batch": batch, "seconds": seconds, "tflops": achieved / 1e12,
           "fraction_of_matmul_limit": limit / seconds}  # fmt: skip
    text = (
        f"backbone ViT-L at {h}×{w} ({tokens} tokens), batch {batch}, {dtype}: {seconds:.4f} s, "
        f"{achieved / 1e12:.2f} TFLOP/s = {100 * limit / seconds:.0f} % of its FLOPs at the matrix-product rate measured now"
    )
    if dev.type == "cuda":
        gpu = torch.cuda.get_device_name(dev)
        peak = nominal_peak_tflops(gpu)
        out["gpu"], out["bf16_peak_tflops"] = gpu, peak
        if peak:
            out["fraction_of_bf16_peak"] = achieved / 1e12 / peak
            text += f", {100 * achieved / 1e12 / peak:.0f} % of the {gpu}'s bf16 peak ({peak:.0f} TFLOP/s)"
        out["peak_gpu_mb"] = torch.cuda.max_memory_allocated(dev) / 2**20
        text += f"; peak GPU memory {out['peak_gpu_mb']:.0f} MB"
    print(text, flush=True)
    return out


def _poses(path: Path) -> dict[str, tuple[float, float, float]]:
    """photo → (x, y, heading) of the rows that were localized."""
    with open(path, newline="", encoding="utf-8") as f:
        return {
            Path(r["photo"]).name: (float(r["x"]), float(r["y"]), float(r["heading"]))
            for r in csv.DictReader(f)
            if r["status"] == "ok"
        }


def compare(device_csv: Path, cpu_csv: Path, tolerance_m: float, tolerance_deg: float) -> int:
    """0 when every photo localized on the CPU has the same pose from the device (within the tolerances)."""
    dev, cpu = _poses(device_csv), _poses(cpu_csv)
    common = sorted(set(dev) & set(cpu))
    if not cpu or len(common) < len(cpu):
        print(f"compare: {len(cpu)} photos on the CPU, {len(common)} of them on the device")
        return 1
    d_m = [math.dist(dev[p][:2], cpu[p][:2]) for p in common]
    d_deg = [abs((dev[p][2] - cpu[p][2] + 180) % 360 - 180) for p in common]
    ok = max(d_m) <= tolerance_m and max(d_deg) <= tolerance_deg
    print(
        f"poses device vs CPU on {len(common)} photos: largest difference {max(d_m):.3f} m, {max(d_deg):.3f}° "
        f"({'agree' if ok else 'DISAGREE'}: tolerance {tolerance_m} m, {tolerance_deg}°); "
        f"{len(dev)} photos localized on the device"
    )
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fig = sub.add_parser("figures")
    fig.add_argument("--device", default="cuda")
    fig.add_argument("--quick", action="store_true")
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("device_csv", type=Path)
    cmp_.add_argument("cpu_csv", type=Path)
    cmp_.add_argument("--tolerance-m", type=float, default=0.5)
    cmp_.add_argument("--tolerance-deg", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.command == "compare":
        return compare(args.device_csv, args.cpu_csv, args.tolerance_m, args.tolerance_deg)
    rows = photos_per_second(args.device, args.quick)
    backbone_fraction(args.device, args.quick)
    return 0 if rows else 1


if __name__ == "__main__":
    raise SystemExit(main())
