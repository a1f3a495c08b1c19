"""Peak memory and time of aerial crops from a huge tiled GeoTIFF (windowed reads must keep memory flat).

Creates a ``--size`` × ``--size`` px (default 40,000²) tiled, compressed RGB GeoTIFF in UTM 32N at
0.1 m/px, block by block in a child process (so the writer's memory is not counted), then crops at
several priors in this process and prints, per crop, the time and the peak RSS above the baseline taken
after the imports (Linux ``/proc/self/status`` VmHWM − VmRSS at baseline).

    python -m loc2.benchmarks.crop_memory [--size 40000] [--keep DIR]

Goal: < 300 MB above the baseline.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyproj
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from loc2.core.inputs.ortho import Orthophoto

EPSG = 32632
ORIGIN_E, ORIGIN_N = 480_000.0, 5_350_000.0
RES_M = 0.1


def proc_status_kb(field: str) -> int:
    """A ``kB`` field (VmRSS, VmHWM) of /proc/self/status."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status (Linux only)")


def tile_pattern(row0: int, col0: int, h: int, w: int, band: int) -> np.ndarray:
    """A cheap, compressible but not constant pattern: 2 m checkers plus a slow gradient per band."""
    rows = np.arange(row0, row0 + h, dtype=np.int64)[:, None]
    cols = np.arange(col0, col0 + w, dtype=np.int64)[None, :]
    checker = ((rows // 20 + cols // 20) % 2) * 60
    gradient = ((rows // 400) * 7 + (cols // 400) * 13 + band * 50) % 120
    return (checker + gradient + 40).astype(np.uint8)


def create_raster(path: str, size: int, tile: int, compress: str) -> None:
    """Write the raster tile by tile (runs in a child process)."""
    profile = dict(
        driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs=f"EPSG:{EPSG}",
        transform=from_origin(ORIGIN_E, ORIGIN_N, RES_M, RES_M), tiled=True, blockxsize=tile,
        blockysize=tile, compress=compress, photometric="RGB", BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS",
    )  # fmt: skip
    with rasterio.Env(GDAL_CACHEMAX=256), rasterio.open(path, "w", **profile) as ds:
        for r0 in range(0, size, tile):
            h = min(tile, size - r0)
            for c0 in range(0, size, tile):
                w = min(tile, size - c0)
                block = np.stack([tile_pattern(r0, c0, h, w, b) for b in range(3)])
                ds.write(block, window=Window(c0, r0, w, h))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=40_000, help="raster side in pixels (default 40000)")
    parser.add_argument("--tile", type=int, default=512, help="GeoTIFF block size")
    parser.add_argument("--compress", default="zstd", help="GeoTIFF compression (zstd, deflate, lzw)")
    parser.add_argument("--crop-px", type=int, default=630, help="crop side in pixels")
    parser.add_argument("--keep", type=Path, default=None, help="keep the raster in this folder (reused)")
    args = parser.parse_args(argv)

    baseline_kb = proc_status_kb("VmRSS")
    workdir = Path(tempfile.mkdtemp(prefix="loc2_bench_")) if args.keep is None else args.keep
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"big_{args.size}.tif"
    try:
        if not path.exists():
            t0 = time.perf_counter()
            child = multiprocessing.get_context("spawn").Process(
                target=create_raster, args=(str(path), args.size, args.tile, args.compress)
            )
            child.start()
            child.join()
            if child.exitcode != 0:
                raise SystemExit(f"creating {path} failed (exit code {child.exitcode})")
            print(f"created {args.size}x{args.size} px RGB ({args.compress}) in {time.perf_counter() - t0:.1f} s, "
                  f"{path.stat().st_size / 2**20:.1f} MiB on disk")  # fmt: skip
        run_crops(path, args.size, args.crop_px, baseline_kb)
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def run_crops(path: Path, size: int, crop_px: int, baseline_kb: int) -> None:
    """Crop at several priors and print time and peak RSS above the baseline."""
    half = size * RES_M / 2
    centre = (ORIGIN_E + half, ORIGIN_N - half)
    cases = [
        ("VIGOR 72 m north up, centre", centre, 72.0, 0.0),
        ("KITTI 100 m rotated 57°", (centre[0] - 0.3 * half, centre[1] + 0.4 * half), 100.26, 57.0),
        ("72 m at the NW corner (3/4 outside)", (ORIGIN_E, ORIGIN_N), 72.0, 0.0),
        ("300 m decimated, rotated 30°", (centre[0] + 0.5 * half, centre[1] - 0.5 * half), 300.0, 30.0),
        ("VIGOR 72 m near the SE corner", (ORIGIN_E + 2 * half - 50, ORIGIN_N - 2 * half + 50), 72.0, 0.0),
    ]
    to_lonlat = pyproj.Transformer.from_crs(EPSG, 4326, always_xy=True)
    with Orthophoto.open(path) as ortho:
        print(f"opened {ortho}; baseline RSS after imports {baseline_kb / 1024:.1f} MiB")
        print(f"{'crop':40s} {'px':>5s} {'time s':>7s} {'window':>22s} {'valid %':>8s} {'peak+ MiB':>10s}")
        for name, xy, footprint, up in cases:
            t0 = time.perf_counter()
            crop = ortho.crop(xy, footprint, crop_px, up_heading_deg=up)
            dt = time.perf_counter() - t0
            peak_mib = (proc_status_kb("VmHWM") - baseline_kb) / 1024
            w = crop.read_info["window"]
            window = f"{w[2]}x{w[3]}->{crop.read_info['out_shape'][1]}x{crop.read_info['out_shape'][0]}"
            print(
                f"{name:40s} {crop_px:5d} {dt:7.3f} {window:>22s} {100 * crop.valid.mean():8.1f} {peak_mib:10.1f}"
            )
        lon, lat = to_lonlat.transform(*centre)
        t0 = time.perf_counter()
        repeats = 40
        span = 2 * half - 200.0
        for k in range(repeats):  # scattered over the raster, so each crop reads new blocks
            dx, dy = (k * 0.618034) % 1.0 * span, (k * 0.754878) % 1.0 * span
            ortho.crop((ORIGIN_E + 100 + dx, ORIGIN_N - 100 - dy), 72.0, crop_px)
        per_crop = (time.perf_counter() - t0) / repeats
    peak_mib = (proc_status_kb("VmHWM") - baseline_kb) / 1024
    print(
        f"{repeats} more 72 m crops scattered over the raster (centre lon {lon:.4f} lat {lat:.4f}): "
        f"{per_crop:.3f} s per crop"
    )
    print(f"PEAK RSS above baseline: {peak_mib:.1f} MiB (goal < 300 MB)")


if __name__ == "__main__":
    main()
