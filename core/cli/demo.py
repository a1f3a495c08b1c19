"""``loc2 demo`` (``make demo``): the whole job on a synthetic city whose truth is known.

Generates a city from a seed never used in training, localizes its geotagged photos with the shipped demo
model and flat-ground depth (no depth weights needed), writes ``results.gpkg`` and the match figures, and
prints each photo's position and heading error against the truth with their mean and median.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from ..types import MODEL_DEMO, PRECISION_AUTO, PRECISIONS

DEMO_SEED = 1001  # never used in training (training cities: seeds below 1000; see the model sidecar)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="localize a generated synthetic city with the demo model and report the errors",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default: demo_out)")
    p.add_argument("--seed", type=int, default=DEMO_SEED, help=f"city seed (default {DEMO_SEED})")
    p.add_argument("--panoramas", type=int, default=6)
    p.add_argument("--pinhole", type=int, default=2)
    p.add_argument("--prior-sigma", type=float, default=5.0, help="GNSS noise of the EXIF priors, metres")
    p.add_argument("--model", default=MODEL_DEMO, help=f"{MODEL_DEMO} (default) or a checkpoint file")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--precision", default=PRECISION_AUTO, choices=PRECISIONS, help="the backbone's arithmetic"
    )
    p.add_argument(
        "--city-only", action="store_true", help="only generate the city (orthophoto, photos, truth)"
    )
    p.set_defaults(func=run)


def print_report(rows: list[dict], stream=None) -> None:
    stream = stream or sys.stdout
    print(
        f"{'photo':<18}{'camera':<10}{'prior err':>10}{'pos err':>10}{'yaw err':>10}{'inliers':>9}"
        f"  confidence",
        file=stream,
    )
    for r in rows:
        if "position_error_m" in r:
            print(
                f"{r['photo']:<18}{r['camera']:<10}{r['prior_error_m']:>9.2f}m{r['position_error_m']:>9.2f}m"
                f"{r['heading_error_deg']:>9.2f}°{int(r['inliers']):>9d}  {r.get('confidence', '')}",
                file=stream,
            )
        else:
            print(f"{r['photo']:<18}{r['camera']:<10}  {r['status']}", file=stream)
    ok = [r for r in rows if "position_error_m" in r]
    if ok:
        pos = np.array([r["position_error_m"] for r in ok])
        yaw = np.array([r["heading_error_deg"] for r in ok])
        print(
            f"\n{len(ok)}/{len(rows)} localized. position error: mean {pos.mean():.2f} m, median "
            f"{np.median(pos):.2f} m; heading error: mean {yaw.mean():.2f}°, median {np.median(yaw):.2f}°",
            file=stream,
        )


def run(args) -> int:
    from ..synthetic.datasets import errors_against_truth, generate_dataset
    from . import main as cli_main

    out = Path(args.out)
    city_dir = out / "city"
    if city_dir.exists():
        shutil.rmtree(city_dir)
    print(f"generating synthetic city seed {args.seed} in {city_dir} ...", file=sys.stderr)
    generate_dataset(
        city_dir,
        args.seed,
        n_panoramas=args.panoramas,
        n_pinhole=args.pinhole,
        prior_sigma_m=args.prior_sigma,
    )
    if args.city_only:
        return 0
    results = out / "results.gpkg"
    argv = [
        "localize", "--ortho", str(city_dir / "ortho.tif"), "--images", str(city_dir / "photos"),
        "--model", args.model, "--depth", "flat", "--out", str(results), "--figures", str(out / "figures"),
        "--device", args.device, "--precision", args.precision, "--overwrite",
    ]  # fmt: skip
    status = cli_main(argv)
    if status != 0:
        return status
    rows = errors_against_truth(results, city_dir / "truth.csv")
    print()
    print_report(rows)
    print(f"\nlayers: {results}\nmatch figures: {out / 'figures'}", file=sys.stderr)
    return 0 if any("position_error_m" in r for r in rows) else 1
