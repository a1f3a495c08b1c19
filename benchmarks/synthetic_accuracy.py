"""Accuracy on held-out synthetic cities (seeds never used in training), end to end through the files.

For each unseen seed: write a city (GeoTIFF, JPEGs with EXIF priors = truth + N(0, σ²) per axis, depth
PNGs, truth.csv), localize every photo with ``localize_batch`` (unknown orientation: the panorama's
heading is not used), once with the true depth maps and once with flat-ground depth, and compare with the
truth. Prints, per depth source and camera: mean / median position error, median yaw error, recall at
1 m and 5 m, the median error per inlier-ratio bin (the paper's interpretability claim), and how many
photos end beyond 5 m and how many of those err along a street axis (within 10°; look-alike places).

    .venv/bin/python benchmarks/synthetic_accuracy.py --panoramas 200 --json accuracy.json --jobs 2

``--csv PATH`` also writes one row per photo and depth source (errors with their east and north parts,
prior distance, inliers), to study the failures: look-alikes along a street show as errors along its axis.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import multiprocessing as mp
import tempfile
import time
from collections.abc import Iterator
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch

from loc2.core.inputs.priors import items_from_images
from loc2.core.output.export import ResultWriter
from loc2.core.pipeline.batch import load_localizer, localize_batch
from loc2.core.solver.config import SOLVERS
from loc2.core.synthetic.city import SyntheticCity
from loc2.core.synthetic.datasets import errors_against_truth, generate_dataset
from loc2.core.types import PRECISION_AUTO, PRECISIONS, JobOptions

RATIO_BINS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.01)
# an error within this many degrees of a street axis counts as "along the street" (random bearings: 22 %)
ALONG_STREET_DEG = 10.0


def summarise(rows: list[dict]) -> dict:
    ok = [r for r in rows if "position_error_m" in r]
    n = len(rows)
    if not ok:
        return {"count": n, "localized": 0}
    pos = np.array([r["position_error_m"] for r in ok])
    yaw = np.array([r["heading_error_deg"] for r in ok])
    ratio = np.array([r["inlier_ratio"] for r in ok])
    all_pos = np.concatenate([pos, np.full(n - len(ok), np.inf)])  # failures count as misses
    bins = []
    for lo, hi in zip(RATIO_BINS[:-1], RATIO_BINS[1:], strict=True):
        sel = (ratio >= lo) & (ratio < hi)
        if sel.any():
            bins.append(
                {
                    "inlier_ratio": [lo, min(hi, 1.0)],
                    "count": int(sel.sum()),
                    "median_position_error_m": float(np.median(pos[sel])),
                }
            )
    by_confidence = []
    for level in ("high", "medium", "low"):
        sel = np.array([r.get("confidence") == level for r in ok], dtype=bool)
        if sel.any():
            by_confidence.append(
                {
                    "confidence": level,
                    "count": int(sel.sum()),
                    "median_position_error_m": float(np.median(pos[sel])),
                    "beyond_1m": float((pos[sel] > 1.0).mean()),
                    "beyond_5m": float((pos[sel] > 5.0).mean()),
                }
            )
    misses = [r for r in ok if r["position_error_m"] > 5.0]
    along = [r for r in misses if r["street_axis_offset_deg"] < ALONG_STREET_DEG]
    return {
        "count": n,
        "localized": len(ok),
        # beyond 5 m, and how many of those err along a street axis (look-alikes: repeated markings, cars, trees)
        "failures_5m": len(misses),
        "failures_along_street": len(along),
        "median_position_error_m": float(np.median(all_pos)),
        "mean_position_error_m": float(pos.mean()),
        "median_yaw_error_deg": float(np.median(yaw)),
        "mean_yaw_error_deg": float(yaw.mean()),
        "recall_1m": float((all_pos <= 1.0).mean()),
        "recall_5m": float((all_pos <= 5.0).mean()),
        "error_by_inlier_ratio": bins,
        "error_by_confidence": by_confidence,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--panoramas", type=int, default=200, help="held-out panoramas in all")
    parser.add_argument("--pinhole", type=int, default=40, help="held-out 90° pinhole photos in all")
    parser.add_argument("--per-city", type=int, default=20, help="panoramas per city")
    parser.add_argument("--first-seed", type=int, default=2001)
    parser.add_argument("--sigma", type=float, default=10.0, help="prior noise per axis, metres")
    parser.add_argument("--search-radius", type=float, default=20.0, help="metres searched around the prior")
    parser.add_argument("--model", default="demo")
    parser.add_argument("--depth", nargs="+", default=["true", "flat"], choices=["true", "flat"])
    parser.add_argument("--solver", choices=SOLVERS, default="precise", help="pose solver (loc2 localize)")
    parser.add_argument(
        "--precision", choices=PRECISIONS, default=PRECISION_AUTO, help="the backbone's (loc2 localize)"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--csv", type=Path, help="write one row per photo and depth source here")
    parser.add_argument("--work", type=Path, help="keep the generated cities and outputs here")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse cities already generated in --work (same arguments)"
    )
    parser.add_argument("--generate-only", action="store_true", help="write the cities and stop")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="cities localized at once, each in its own process (one thread each)",
    )
    args = parser.parse_args()
    args.work = args.work or Path(tempfile.mkdtemp(prefix="loc2_accuracy_"))
    n_cities = max(1, -(-args.panoramas // args.per_city))

    rows: dict[str, list[dict]] = {d: [] for d in args.depth}
    t0 = time.perf_counter()
    for seed, city_rows in _each_city(args, n_cities):
        for d, rs in city_rows.items():
            rows[d] += rs
        done = "written" if args.generate_only else "done"
        print(f"city {seed}: {done} ({time.perf_counter() - t0:.0f} s)", flush=True)

    if args.generate_only:
        print(f"wrote {n_cities} cities under {args.work} ({time.perf_counter() - t0:.0f} s)")
        return
    report = {}
    for d, rs in rows.items():
        report[d] = summarise([r for r in rs if r["camera"] == "panorama"])
        report[d]["pinhole"] = summarise([r for r in rs if r["camera"] == "pinhole"])
    print(json.dumps(report, indent=2))
    print(
        f"seeds {args.first_seed}-{args.first_seed + n_cities - 1}, σ = {args.sigma} m, search radius "
        f"{args.search_radius} m, solver {args.solver}, {time.perf_counter() - t0:.0f} s; work folder {args.work}"
    )
    if args.json:  # one object per depth source: the panorama figures, with "pinhole" inside
        report["args"] = {k: str(v) for k, v in vars(args).items()}
        args.json.write_text(json.dumps(report, indent=2))
    if args.csv:
        write_rows(args.csv, rows)


CSV_FIELDS = (
    "depth",
    "city",
    "photo",
    "camera",
    "status",
    "position_error_m",
    "error_east_m",
    "error_north_m",
    "heading_error_deg",
    "street_axis_offset_deg",
    "prior_error_m",
    "inliers",
    "inlier_ratio",
    "confidence",
)


def write_rows(path: Path, rows: dict[str, list[dict]]) -> None:
    """One CSV row per photo and depth source; a photo without a pose has empty error columns."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for depth, depth_rows in rows.items():
            writer.writerows({"depth": depth, **r} for r in depth_rows)


def _each_city(args: argparse.Namespace, n_cities: int) -> Iterator[tuple[int, dict[str, list[dict]]]]:
    """(seed, per-depth error rows) of every city in seed order, from ``--jobs`` worker processes."""
    indices = range(n_cities)
    if args.jobs <= 1:
        yield from (run_city(args, n_cities, i) for i in indices)
        return
    # fork before torch runs anything in this process; each worker loads the model once, one thread
    with mp.get_context("fork").Pool(args.jobs, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        yield from pool.imap(partial(run_city, args, n_cities), indices)


def run_city(args: argparse.Namespace, n_cities: int, i: int) -> tuple[int, dict[str, list[dict]]]:
    """Write city ``i`` (unless ``--reuse`` finds it) and localize its photos once per depth source."""
    seed = args.first_seed + i
    n_pano = min(args.per_city, args.panoramas - i * args.per_city)
    n_pin = args.pinhole // n_cities + (1 if i < args.pinhole % n_cities else 0)
    city = args.work / f"city_{seed}"
    model = SyntheticCity(seed)
    if not (args.reuse and (city / "truth.csv").is_file()):
        generate_dataset(
            city,
            seed,
            n_panoramas=n_pano,
            n_pinhole=n_pin,
            prior_sigma_m=args.sigma,
            heading_sigma_deg=180.0,
            city=model,
        )
    if args.generate_only:
        return seed, {}
    localizer = _localizer(args.model, args.precision)
    items, _ = items_from_images([city / "photos"])
    crs = localizer_crs(city)
    rows = {}
    for d in args.depth:
        options = JobOptions(
            model=args.model,
            depth="flat" if d == "flat" else str(city / "depth"),
            search_radius_m=args.search_radius,
            device="cpu",
            solver=args.solver,
            precision=args.precision,
        )
        out = city / f"results_{d}.gpkg"
        with ResultWriter(out, crs=crs, mode="overwrite") as writer:
            localize_batch(items, city / "ortho.tif", options, on_result=writer.write, localizer=localizer)
        rows[d] = [{"city": seed, **r} for r in errors_against_truth(out, city / "truth.csv")]
    street_bearing = street_bearing_deg(model)
    for r in (r for rs in rows.values() for r in rs if "error_east_m" in r):
        r["street_axis_offset_deg"] = street_axis_offset_deg(
            r["error_east_m"], r["error_north_m"], street_bearing
        )
    return seed, rows


def street_bearing_deg(model: SyntheticCity) -> float:
    """Bearing of the city's street grid, degrees clockwise from north in [0, 90) (the grid rotation is
    counter-clockwise from grid east; grid and true north differ by under a degree in these cities)."""
    return (90.0 - model.rotation_deg) % 90.0


def street_axis_offset_deg(east_m: float, north_m: float, street_bearing: float) -> float:
    """Angle in [0, 45] degrees between an error vector (east, north metres) and the nearest street axis."""
    offset = (math.degrees(math.atan2(east_m, north_m)) - street_bearing) % 90.0
    return min(offset, 90.0 - offset)


@lru_cache(maxsize=1)
def _localizer(model: str, precision: str):
    """The model, loaded once per process."""
    return load_localizer(JobOptions(model=model, device="cpu", precision=precision))


def localizer_crs(city: Path):
    from loc2.core.inputs.ortho import Orthophoto

    with Orthophoto.open(city / "ortho.tif") as ortho:
        return ortho.crs


if __name__ == "__main__":
    main()
