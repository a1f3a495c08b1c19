"""Throughput of the Loc2 pipeline: photos per second end to end and per stage, with peak memory.

Random ViT-L/14 + matcher weights (timing does not depend on the values) at the published sizes — VIGOR
714 × 1428 panorama + 630 px aerial, KITTI 364 × 1232 photo + 504 px aerial — and at half size. Stages:
backbone on the ground image, backbone on the aerial image, matcher heads (descriptors + dual softmax),
solver (RANSAC as published: 20 × 8,192 samples, 2,000 hypotheses; and the direct solve without RANSAC).
Depth comes from a precomputed map (not timed). Each configuration runs in its own process so that its peak
memory is its own: peak RSS (Linux ``ru_maxrss``, model weights included) and, on CUDA,
``torch.cuda.max_memory_allocated``. The backbone runs in each ``--precisions`` (``auto``: float32 on the
CPU, fp16 on CUDA as the published pipeline; ``bfloat16``), one after the other in the same run.

    python -m loc2.benchmarks.throughput [--configs vigor kitti vigor-half kitti-half] [--device auto]
        [--repeats 1] [--warmup 0] [--batch 1] [--threads N] [--precisions auto bfloat16]

The limit: each ViT-L backbone stage against its FLOPs run at this machine's matrix-product rate, measured
in the same process at the forward's weight-product shapes and in the backbone's precision
(``benchmarks/limits.py``), and the achieved fraction of it. CPU: use ``--repeats 1`` (a published-size VIGOR photo takes minutes on two cores). GPU: e.g.
``--repeats 10 --warmup 2 --batch 8`` (backbone and heads batched, solver per photo).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import time
import traceback

from loc2.core.types import PRECISIONS

CONFIGS: dict[str, tuple[str, tuple[int, int], int]] = {
    "vigor": ("vigor", (714, 1428), 630),
    "kitti": ("kitti", (364, 1232), 504),
    "vigor-half": ("vigor", (350, 700), 308),
    "kitti-half": ("kitti", (182, 616), 252),
    "tiny": ("vigor", (112, 224), 112),  # a smoke test of the code path (benchmarks/gpu_check.py --quick)
}
STAGES = ("backbone_ground", "backbone_aerial", "heads", "solver", "solver_direct")


def _samples(preset, batch: int, seed: int = 0):
    """Random images of the preset's sizes with a plausible depth map (flat ground, metric)."""
    import numpy as np

    from loc2.core.evaluation.datasets import Sample
    from loc2.core.geometry.cameras import Equirectangular, Pinhole
    from loc2.core.geometry.pose import Similarity2D
    from loc2.core.inputs.depth import DepthMap, FlatGroundDepth

    h, w = preset.ground_size_hw
    s = preset.aerial_size_px
    rng = np.random.default_rng(seed)
    camera = Equirectangular(w, h) if preset.camera == "panorama" else Pinhole.from_fov(w, h, 81.0)
    out = []
    for i in range(batch):
        ground = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        depth = FlatGroundDepth(1.65).depth_for(ground, camera)
        out.append(
            Sample(
                index=i,
                name=f"random-{i}",
                ground_rgb=ground,
                aerial_rgb=rng.integers(0, 255, (s, s, 3), dtype=np.uint8),
                aerial_footprint_m=preset.aerial_footprint_m,
                camera=camera,
                depth=DepthMap(depth.depth_m, depth.kind, metric=True),
                pose_true=Similarity2D(np.eye(2), np.zeros(2)),
            )
        )
    return out


def run_config(
    name: str,
    device: str,
    repeats: int,
    warmup: int,
    batch: int,
    threads: int | None,
    precision: str = "auto",
) -> dict:
    """Time one configuration in this process; returns seconds per photo per stage and peak memory."""
    import torch

    from loc2.core.evaluation.inference import match_batch, solve_sample
    from loc2.core.localizer import Localizer
    from loc2.core.model.presets import get_preset
    from loc2.core.model.runtime import keep_freed_memory
    from loc2.core.solver.config import PUBLISHED

    keep_freed_memory()  # as the engine's processes run (``loc2`` and its worker)
    if threads:
        torch.set_num_threads(threads)
    base, ground_hw, aerial_px = CONFIGS[name]
    preset = get_preset(base).replace(ground_size_hw=ground_hw, aerial_size_px=aerial_px)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    loc = Localizer.from_preset(preset, device=device, precision=precision)
    build_s = time.perf_counter() - t0
    samples = _samples(preset, batch)
    if loc.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(loc.device)

    def once() -> dict[str, float]:
        matches = match_batch(loc, samples)
        per = {k: v / batch for k, v in matches.timings_s.items() if k != "depth"}
        gen = torch.Generator(device=loc.device).manual_seed(0)
        for key, ransac in (("solver", True), ("solver_direct", False)):
            t = time.perf_counter()
            for i, s in enumerate(samples):
                solve_sample(loc, matches, i, s, PUBLISHED.replace(ransac=ransac), gen)
            per[key] = (time.perf_counter() - t) / batch
        return per

    for _ in range(warmup):
        once()
    runs = [once() for _ in range(repeats)]
    mean = {k: sum(r[k] for r in runs) / len(runs) for k in STAGES}
    out = {
        "config": name,
        "ground_hw": ground_hw,
        "aerial_px": aerial_px,
        "device": str(loc.device),
        "precision": loc.precision,
        "batch": batch,
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "build_s": build_s,
        **mean,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": torch.cuda.max_memory_allocated(loc.device) / 2**20
        if loc.device.type == "cuda"
        else None,
    }
    if loc.device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(loc.device)
    if preset.backbone == "dinov2_vitl14":
        out.update(backbone_limits(ground_hw, aerial_px, batch, loc.device, mean, loc.precision))
    return out


def backbone_limits(ground_hw, aerial_px: int, batch: int, device, measured: dict, precision: str) -> dict:
    """The limit of each backbone stage (its FLOPs at the matrix-product rate measured in this process, now,
    in the backbone's ``precision``: ``limits.matmul_limit_s``), seconds per photo, and the achieved fraction
    of it (limit / measured)."""
    import torch

    from loc2.benchmarks.limits import matmul_limit_s, tokens_of
    from loc2.core.model.runtime import reduced_precision

    dtype = {"float16": torch.float16, "bfloat16": torch.bfloat16}.get(precision, torch.float32)
    out = {}
    for stage, tokens in (
        ("backbone_ground", tokens_of(*ground_hw)),
        ("backbone_aerial", tokens_of(aerial_px, aerial_px)),
    ):
        with reduced_precision(device, precision):  # the kernels Localizer.features runs (oneDNN for bf16)
            limit = matmul_limit_s(tokens, batch, device, dtype) / batch
        out[f"{stage}_limit"] = limit
        out[f"{stage}_fraction"] = limit / measured[stage]
    return out


def _child(queue, *args) -> None:
    try:
        queue.put(run_config(*args))
    except BaseException as exc:  # report any failure (e.g. out of memory) to the parent
        queue.put(
            {"config": args[0], "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        )


def run_isolated(name: str, *args) -> dict:
    """``run_config`` in a fresh process (spawned), so peak memory is this configuration's own."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, name, *args))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def table(rows: list[dict]) -> str:
    """Markdown table: seconds per photo per stage, photos/s end to end (with RANSAC), peak memory."""
    head = (
        "| config | ground H×W | aerial | device | precision | batch | backbone ground s | backbone aerial s | heads s "
        "| solver s (RANSAC) | solver s (direct) | s/photo | photos/s | peak RSS MB | peak GPU MB "
        "| ground limit s (fraction) | aerial limit s (fraction) |\n"
        "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['config']} | failed: {r['error']} |")
            continue
        total = r["backbone_ground"] + r["backbone_aerial"] + r["heads"] + r["solver"]
        gpu = f"{r['peak_gpu_mb']:.0f}" if r.get("peak_gpu_mb") else "–"
        lines.append(
            f"| {r['config']} | {r['ground_hw'][0]}×{r['ground_hw'][1]} | {r['aerial_px']} | {r['device']} | {r['precision']} | "
            f"{r['batch']} | {r['backbone_ground']:.3f} | {r['backbone_aerial']:.3f} | {r['heads']:.3f} | "
            f"{r['solver']:.3f} | {r['solver_direct']:.3f} | {total:.3f} | {1 / total:.3f} | "
            f"{r['peak_rss_mb']:.0f} | {gpu} | {_limit(r, 'backbone_ground')} | {_limit(r, 'backbone_aerial')} |"
        )
    return "\n".join(lines)


def _limit(row: dict, stage: str) -> str:
    if f"{stage}_limit" not in row:
        return "–"
    return f"{row[f'{stage}_limit']:.3f} ({100 * row[f'{stage}_fraction']:.0f} %)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1, help="photos per batch (backbone and heads batched)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument(
        "--precisions", nargs="+", choices=PRECISIONS, default=["auto"], help="the backbone's, one row each"
    )
    args = parser.parse_args(argv)
    print(
        f"# Loc2 throughput — {platform.processor() or platform.machine()}, random ViT-L/14 weights",
        flush=True,
    )
    rows = []
    for name in args.configs:
        for precision in args.precisions:
            row = run_isolated(
                name, args.device, args.repeats, args.warmup, args.batch, args.threads, precision
            )
            rows.append(row)
            if "error" in row:
                print(f"{name} ({precision}): {row['error']}", flush=True)
            else:
                total = sum(row[k] for k in STAGES[:4])
                print(
                    f"{name} ({row['precision']}): {total:.2f} s/photo (model built in {row['build_s']:.1f} s)",
                    flush=True,
                )
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
