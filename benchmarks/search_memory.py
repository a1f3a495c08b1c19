"""Peak memory and time of one panorama localized with growing search radii (the demo model, CPU).

The matching probability P of all search crops (crops × 1,681 aerial points × the tokens of the four
token grids, float32) is the job's largest array; this prints, per radius, the crops searched, P's size,
the process's peak RSS and the photo's runtime. Writes one synthetic city (``--seed``, a 400 m square with
one panorama) and runs ``loc2 localize`` (flat-ground depth) once per radius, each in a fresh process so
that every peak is its own (Linux ``/proc/self/status`` VmHWM).

    python -m loc2.benchmarks.search_memory [--radii 10 20 45 60] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import multiprocessing
import os
import shutil
import tempfile
from pathlib import Path

from loc2.benchmarks.crop_memory import proc_status_kb
from loc2.core.model.checkpoints import read_checkpoint
from loc2.core.types import DEMO_CHECKPOINT

TOKEN_PX = 8  # the demo backbone's token stride


def localize_once(city: str, radius_m: float, out: str, queue) -> None:
    """Child process: ``loc2 localize`` on the city's panorama; puts (peak RSS MiB, CSV row) on ``queue``."""
    from loc2.core.cli import main

    photo = next((Path(city) / "photos").glob("pano_*.jpg"))
    argv = ["localize", "--ortho", str(Path(city) / "ortho.tif"), "--images", str(photo), "--out", out]
    argv += ["--overwrite", "--depth", "flat", "--search-radius", str(radius_m), "--seed", "0"]
    row: dict = {}
    try:
        with (
            open(os.devnull, "w") as quiet,
            contextlib.redirect_stdout(quiet),
            contextlib.redirect_stderr(quiet),
        ):
            code = main(argv)
        if code == 0:
            with open(out, newline="") as f:
                row = next(csv.DictReader(f))
    finally:  # the parent waits for this, whatever happened
        queue.put((proc_status_kb("VmHWM") / 1024, row))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--radii", type=float, nargs="+", default=[10.0, 20.0, 45.0, 60.0], help="metres")
    parser.add_argument("--seed", type=int, default=3005, help="synthetic city (not a training seed)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the city in this folder (reused)")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="loc2_bench_")) if args.keep is None else args.keep
    city = workdir / f"city_{args.seed}"
    ctx = multiprocessing.get_context("spawn")
    try:
        if not (city / "truth.csv").is_file():
            from loc2.core.synthetic.datasets import generate_dataset

            generate_dataset(city, args.seed, n_panoramas=1, n_pinhole=0, size_m=400.0)
        demo = read_checkpoint(DEMO_CHECKPOINT)[0]
        # P's rows per crop and its columns (the four token grids) with the demo model
        rows_per_crop = demo.aerial_grid**2
        tokens = 4 * (demo.ground_size_hw[0] // TOKEN_PX) * (demo.ground_size_hw[1] // TOKEN_PX)
        print(f"{'radius m':>8s} {'crops':>5s} {'P MB':>7s} {'peak RSS MiB':>12s} {'runtime s':>9s}  result")
        for radius in args.radii:
            queue = ctx.Queue()
            child = ctx.Process(target=localize_once, args=(str(city), radius, str(workdir / "r.csv"), queue))
            child.start()
            peak_mib, row = queue.get()
            child.join()
            if not row:
                print(f"{radius:8.0f}  localize failed (exit code {child.exitcode})")
                continue
            crops = int(row["n_cand"])
            p_mb = crops * rows_per_crop * tokens * 4 / 1e6  # float32
            status = f"{row['status']}, {row['inliers']} inliers"
            print(
                f"{radius:8.0f} {crops:5d} {p_mb:7.0f} {peak_mib:12.0f} {float(row['runtime_s']):9.2f}  {status}"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
