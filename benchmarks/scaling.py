"""How a job's time and memory grow with the work: the search radius, the number of photos and the
orthophoto's size, measured on this machine and drawn into ``docs/scaling.png``.

Each measurement is a real job (``pipeline.job.run_localize``: photos read from files, crops read from a
tiled, compressed GeoTIFF, results written to a GeoPackage photo by photo) in its own process, so that its
peak memory (Linux ``ru_maxrss``) is its own. What is cheap about it, so that 1,000 photos fit: a small
random-weight model (a small CNN on a 128 × 256 panorama, a 168 px aerial crop, 21 × 21 aerial points; its
poses are meaningless) and one synthetic panorama linked under many names. The published solver runs as
published (20 rounds × 8,192 samples). Per photo the job reads the photo, runs the backbone, reads and
matches every search crop and solves once, so the time per photo must stay flat in the number of photos
and in the orthophoto's size, and grow with the number of crops (∝ radius²).

    .venv/bin/python benchmarks/scaling.py [--quick] [--out docs/scaling.png] [--json FILE] [--keep DIR]

Full run: radius 10, 20, 40 m (10 photos, 10,000² px); photos 10, 100, 1,000 (radius 10 m, 10,000² px);
orthophoto 1,000² to 40,000² px (10 photos, radius 10 m). ``--quick``: radius 10, 20; photos 5, 20;
orthophoto 1,000², 2,000².
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

FULL = {"radius_m": (10, 20, 40), "photos": (10, 100, 1000), "ortho_px": (1000, 4000, 10000, 20000, 40000)}
QUICK = {"radius_m": (10, 20), "photos": (5, 20), "ortho_px": (1000, 2000)}
BASE = {"radius_m": 10, "photos": 10, "ortho_px": 10000}
QUICK_BASE = {"radius_m": 10, "photos": 5, "ortho_px": 2000}


def small_localizer():
    """A random-weight Localizer that is cheap on the CPU (see the module docstring)."""
    import torch

    from loc2.core.localizer import Localizer
    from loc2.core.model.presets import VIGOR

    preset = VIGOR.replace(
        name="scaling", backbone="cnn", embed_dim=128, desc_dim=32, head_widths=(64, 32), aerial_grid=21,
        ground_size_hw=(128, 256), aerial_size_px=168, published_grid=False,
    )  # fmt: skip
    torch.manual_seed(0)
    return Localizer.from_preset(preset, device="cpu")


def make_photos(folder: Path, count: int, ortho_px: int) -> list:
    """``count`` links to one random panorama, with priors spread over the orthophoto's middle (WGS84)."""
    import pyproj
    from PIL import Image

    from loc2.benchmarks.crop_memory import EPSG, ORIGIN_E, ORIGIN_N, RES_M
    from loc2.core.types import PhotoItem

    folder.mkdir(parents=True, exist_ok=True)
    first = folder / "photo_00000.jpg"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (256, 512, 3), dtype=np.uint8)).save(first, quality=90)
    to_lonlat = pyproj.Transformer.from_crs(EPSG, 4326, always_xy=True)
    side_m = ortho_px * RES_M
    items = []
    for i in range(count):
        path = first if i == 0 else folder / f"photo_{i:05d}.jpg"
        if i:
            os.link(first, path)
        fx, fy = (0.3 + 0.4 * ((i * 0.618034) % 1.0)), (0.3 + 0.4 * ((i * 0.754878) % 1.0))
        lon, lat = to_lonlat.transform(ORIGIN_E + fx * side_m, ORIGIN_N - fy * side_m)
        items.append(PhotoItem(path, lon, lat, heading_deg=90.0))
    return items


def measure(work: Path, ortho: Path, radius_m: float, photos: int, ortho_px: int) -> dict:
    """One job in this process: seconds in all and per photo, peak RSS (MB)."""
    from loc2.core.pipeline.job import run_localize
    from loc2.core.types import JobOptions, LocalizeRequest, OutputSpec, PhotoSource

    items = make_photos(work / "photos", photos, ortho_px)
    loc = small_localizer()
    request = LocalizeRequest(
        ortho=str(ortho),
        photos=PhotoSource(items=items),
        output=OutputSpec(str(work / "results.gpkg")),
        options=JobOptions(model="scaling", search_radius_m=radius_m, device="cpu", solver="published"),
    )
    t0 = time.perf_counter()
    summary = run_localize(request, get_localizer=lambda _options: loc)
    seconds = time.perf_counter() - t0
    return {
        "radius_m": radius_m, "photos": photos, "ortho_px": ortho_px, "seconds": seconds,
        "per_photo_s": seconds / photos, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "localized": summary.localized, "failed": summary.failed,
    }  # fmt: skip


def _child(queue, *args) -> None:
    try:
        queue.put(measure(*args))
    except BaseException as exc:  # report, do not hang the parent
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def isolated(work: Path, ortho: Path, radius_m: float, photos: int, ortho_px: int) -> dict:
    """:func:`measure` in a fresh (spawned) process, in a fresh folder."""
    folder = Path(tempfile.mkdtemp(dir=work))
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, folder, ortho, radius_m, photos, ortho_px))
    proc.start()
    row = queue.get()
    proc.join()
    shutil.rmtree(folder, ignore_errors=True)
    if "error" in row:
        raise SystemExit(f"radius {radius_m} m, {photos} photos, {ortho_px} px: {row['error']}")
    return row


def orthophoto(folder: Path, px: int) -> Path:
    """A tiled, compressed px × px RGB GeoTIFF (``crop_memory.create_raster``), made once per size."""
    from loc2.benchmarks.crop_memory import create_raster

    path = folder / f"ortho_{px}.tif"
    if not path.exists():
        proc = mp.get_context("spawn").Process(target=create_raster, args=(str(path), px, 512, "zstd"))
        proc.start()
        proc.join()
        if proc.exitcode != 0:
            raise SystemExit(f"creating {path} failed (exit code {proc.exitcode})")
    return path


def run(quick: bool, keep: Path | None) -> dict[str, list[dict]]:
    """Every sweep: {'radius_m': rows, 'photos': rows, 'ortho_px': rows}."""
    sweeps, base = (QUICK, QUICK_BASE) if quick else (FULL, BASE)
    work = Path(tempfile.mkdtemp(prefix="loc2_scaling_")) if keep is None else keep
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[dict]] = {}
    try:
        for name, values in sweeps.items():
            out[name] = []
            for value in values:
                setting = {**base, name: value}
                row = isolated(work, orthophoto(work, setting["ortho_px"]), **setting)
                out[name].append(row)
                print(
                    f"{name} {value}: {row['seconds']:.1f} s, {row['per_photo_s']:.3f} s per photo, peak RSS "
                    f"{row['peak_rss_mb']:.0f} MB  ({setting['photos']} photos, radius {setting['radius_m']} m, "
                    f"{setting['ortho_px']}² px)",
                    flush=True,
                )
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return out


def draw(results: dict[str, list[dict]], path: Path, title: str) -> None:
    """Time per photo and peak memory against each swept quantity, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {
        "radius_m": "search radius (m)",
        "photos": "photos in the job",
        "ortho_px": "orthophoto side (px)",
    }
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.6), constrained_layout=True)
    for ax, (name, rows) in zip(np.atleast_1d(axes), results.items(), strict=True):
        x = [r[name] for r in rows]
        ax.plot(x, [r["per_photo_s"] for r in rows], "o-", color="tab:blue")
        ax.set_xlabel(labels[name])
        ax.set_ylabel("seconds per photo", color="tab:blue")
        ax.set_ylim(0, 1.15 * max(r["per_photo_s"] for r in rows))  # room above the highest point
        if name != "radius_m":
            ax.set_xscale("log")
        twin = ax.twinx()
        twin.plot(x, [r["peak_rss_mb"] for r in rows], "s--", color="tab:red")
        twin.set_ylabel("peak RSS (MB)", color="tab:red")
        twin.set_ylim(0, 1.15 * max(r["peak_rss_mb"] for r in rows))
    fig.suptitle(title, fontsize=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("docs/scaling.png"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the orthophotos here (reused)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    results = run(args.quick, args.keep)
    minutes = (time.perf_counter() - t0) / 60
    draw(
        results,
        args.out,
        f"Loc2 job scaling, small random model, {os.cpu_count()} CPUs ({minutes:.0f} min run)",
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(f"figure: {args.out}; {minutes:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
