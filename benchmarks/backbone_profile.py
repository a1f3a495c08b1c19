"""Where one ViT-L/14 forward's time goes on this CPU, and what the engine's memory reuse changes: each run in
a fresh process, with and without ``runtime.keep_freed_memory`` (alternating, ``--pairs`` times), prints the
forward's wall time, its minor page faults, user and system CPU time, peak RSS and whether the features are
the same bits; ``--profile`` adds torch's profiler table (the operators by their own CPU time).

    .venv/bin/python benchmarks/backbone_profile.py [--size 714 1428] [--precision float32|bfloat16]
        [--pairs 3] [--profile]

Random weights (timing does not depend on them); one untimed forward first. The default size is VIGOR's
ground image (5,203 tokens).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from loc2.core.types import PRECISIONS

MODES = ("plain", "keep")  # glibc's defaults; runtime.keep_freed_memory


def child(mode: str, size: tuple[int, int], precision: str, profile: bool) -> dict:
    """One forward in this process (``mode`` decides the memory reuse); figures as a dict."""
    import torch

    from loc2.core.model import runtime
    from loc2.core.model.backbone import DinoV2

    runtime.make_cpu_reproducible()
    kept = runtime.keep_freed_memory() if mode == "keep" else False
    torch.manual_seed(0)
    net = DinoV2("vitl14").eval()
    image = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(1))
    device = torch.device("cpu")
    if precision == "bfloat16":
        runtime.cast_products(net, torch.bfloat16)

    @torch.inference_mode()
    def forward() -> torch.Tensor:
        with runtime.reduced_precision(device, runtime.resolve_precision(precision, device)):
            return net(image).float()

    forward()
    before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    features = forward()
    seconds, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "mode": mode,
        "kept": kept,
        "seconds": seconds,
        "page_faults": after.ru_minflt - before.ru_minflt,
        "user_s": after.ru_utime - before.ru_utime,
        "system_s": after.ru_stime - before.ru_stime,
        "peak_rss_mb": after.ru_maxrss / 1024,
        "checksum": float(features.double().sum()),
    }
    if profile:
        from torch.profiler import ProfilerActivity
        from torch.profiler import profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            forward()
        out["profile"] = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=10)
    return out


def run_child(mode: str, size: tuple[int, int], precision: str, profile: bool) -> dict:
    """:func:`child` in a fresh process (the memory settings are process-wide)."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--size", *map(str, size)]
    argv += ["--precision", precision] + (["--profile"] if profile else [])
    run = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(714, 1428), metavar=("H", "W"))
    parser.add_argument("--precision", choices=PRECISIONS, default="float32")
    parser.add_argument("--pairs", type=int, default=1, help="alternating plain/keep runs")
    parser.add_argument("--profile", action="store_true", help="also print the profiler's table (last run)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = tuple(args.size)
    if args.child:
        print(json.dumps(child(args.child, size, args.precision, args.profile)))
        return []
    rows = []
    for pair in range(args.pairs):
        for mode in MODES:
            profile = args.profile and pair == args.pairs - 1 and mode == MODES[-1]
            rows.append(run_child(mode, size, args.precision, profile))
    print(f"# ViT-L/14 forward at {size[0]} × {size[1]}, {args.precision}, a fresh process per row")
    print("| memory | s | page faults | user s | system s | peak RSS MB |\n|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['mode']} | {r['seconds']:.2f} | {r['page_faults']:,} | {r['user_s']:.2f} | "
            f"{r['system_s']:.2f} | {r['peak_rss_mb']:.0f} |"
        )
    for mode in MODES:
        mean = sum(r["seconds"] for r in rows if r["mode"] == mode) / args.pairs
        print(f"mean {mode}: {mean:.2f} s")
    print("same features in every run:", len({r["checksum"] for r in rows}) == 1)
    for r in rows:
        if "profile" in r:
            print(r["profile"])
    return rows


if __name__ == "__main__":
    main()
