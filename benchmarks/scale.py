"""The Ray engine against one process on this machine: throughput, overhead per photo, peak memory.

A scene of random photos (EXIF GPS on two orthophoto tiles) and a tiny random-weight model (a small CNN,
narrow heads: a photo takes a fraction of a second on one core, so the engine's own costs show), then
each configuration in its own process, side by side in one run:

* ``single, 1 thread`` and ``single, 2 threads``: ``localize_batch`` in one process (the default path);
* ``ray, 1 worker`` and ``ray, 2 workers``: ``run_localize_ray`` on a local Ray instance started in that
  process (2 CPUs; Ray's start-up, planning, parts and merge all counted).

Printed: wall seconds, photos/s, the ratio to ``single, 1 thread``, the overhead per photo against the
same CPUs (``ray, 1 worker`` − ``single, 1 thread``, over the photos), the driver's peak RSS and each Ray
worker's (``ru_maxrss`` of the actor process, from the parts folder's ``_workers`` records).

    python -m loc2.benchmarks.scale [--photos 200] [--part-size 16] [--ransac] [--configs ...]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import tempfile
import time
from pathlib import Path

ORIGIN = (465000.0, 5247000.0)  # EPSG:32632, the orthophoto's west/north edge
TILE_M = 40.0  # the scene's photos fall on two tiles of this side
CONFIGS = ("single, 1 thread", "single, 2 threads", "ray, 1 worker", "ray, 2 workers")


def tiny_preset():
    """A random-weight model small enough to localize a photo in a fraction of a second on one core."""
    from loc2.core.model.presets import VIGOR

    return VIGOR.replace(
        name="tiny",
        backbone="cnn",
        embed_dim=32,
        desc_dim=16,
        head_widths=(16,),
        aerial_grid=15,
        ground_size_hw=(64, 128),
        aerial_size_px=64,
        published_grid=False,
        extra={"backbone_kwargs": {"embed_dim": 32, "width": 8, "stride": 16}},
    )


def _dms(v: float) -> tuple[float, float, float]:
    v = abs(v)
    d = int(v)
    m = int((v - d) * 60)
    return (d, m, (v - d - m / 60) * 3600)


def write_photo(path: Path, lonlat: tuple[float, float], seed: int) -> None:
    """A random 64 × 128 JPEG with an EXIF GPS position, heading and a 2 m horizontal error."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (64, 128, 3), dtype=np.uint8))
    exif = Image.Exif()
    lon, lat = lonlat
    exif[0x8825] = {1: "N", 2: _dms(lat), 3: "E", 4: _dms(lon), 16: "T", 17: float(seed * 37 % 360), 31: 2.0}
    image.save(path, exif=exif)


def make_scene(root: Path, n_photos: int) -> Path:
    """``root``/ortho.tif (80 m × 80 m random RGB, 0.1 m/px, EPSG:32632), ``photos/`` (even photos on one
    ``TILE_M`` tile, odd ones on the next) and ``tiny.pt`` (:func:`tiny_preset`, seed 0)."""
    import numpy as np
    import pyproj
    import rasterio
    import torch
    from rasterio.transform import from_origin

    from loc2.core.localizer import Localizer
    from loc2.core.model.checkpoints import save_checkpoint

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    profile = dict(driver="GTiff", width=800, height=800, count=3, dtype="uint8", crs="EPSG:32632")
    with rasterio.open(root / "ortho.tif", "w", transform=from_origin(*ORIGIN, 0.1, 0.1), **profile) as ds:
        ds.write(rng.integers(0, 255, (3, 800, 800), dtype=np.uint8))
    to_ll = pyproj.Transformer.from_crs(32632, 4326, always_xy=True)
    photos = root / "photos"
    photos.mkdir(exist_ok=True)
    for i in range(n_photos):
        east = 20.0 + 40.0 * (i % 2) + (i // 2) * (19.0 / max(n_photos // 2, 1))
        write_photo(photos / f"p{i:04d}.jpg", to_ll.transform(ORIGIN[0] + east, ORIGIN[1] - 30.0), seed=i + 1)
    torch.manual_seed(0)
    loc = Localizer.from_preset(tiny_preset(), device="cpu")
    save_checkpoint(root / "tiny.pt", tiny_preset(), loc.backbone, loc.matcher, {"command": "benchmark"})
    return root


def _request(scene: Path, out: Path, ransac: bool):
    from loc2.core.types import MODE_APPEND, JobOptions, LocalizeRequest, OutputSpec, PhotoSource

    return LocalizeRequest(
        ortho=str(scene / "ortho.tif"),
        photos=PhotoSource(images=[str(scene / "photos")]),
        output=OutputSpec(str(out), None, MODE_APPEND),
        options=JobOptions(model=str(scene / "tiny.pt"), device="cpu", use_ransac=ransac),
    )


def run_config(name: str, scene: Path, out: Path, batch_size: int, ransac: bool) -> dict:
    """One configuration in this (fresh) process: wall seconds, photos, peak RSS of the driver and workers."""
    import torch

    request = _request(scene, out, ransac)
    t0 = time.perf_counter()
    workers: list[float] = []
    start_s = 0.0  # Ray's start-up (ray.init), once per cluster
    if name.startswith("single"):
        from loc2.core.inputs.priors import collect_items
        from loc2.core.pipeline.batch import localize_batch

        torch.set_num_threads(1 if "1 thread" in name else 2)
        items, _ = collect_items(request.photos)
        n = len(localize_batch(items, request.ortho, request.options))
    else:
        import ray

        from loc2.core.scale.ray_engine import WORKERS_DIR, RayConfig, run_localize_ray

        t_init = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        start_s = time.perf_counter() - t_init
        try:
            config = RayConfig(parts_dir=out, workers=1 if "1 worker" in name else 2, batch_size=batch_size)
            n = run_localize_ray(request, config)[0].done
        finally:
            ray.shutdown()
        records = (json.loads(p.read_text()) for p in (out / WORKERS_DIR).glob("*.json"))
        workers = [r.get("peak_rss_mb", float("nan")) for r in records]
    return {
        "seconds": time.perf_counter() - t0,
        "start_s": start_s,
        "photos": n,
        "driver_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_rss_mb": workers,
    }


def _child(queue, *args) -> None:
    queue.put(run_config(*args))


def _in_process(*args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, *args))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--part-size", type=int, default=16, help="photos per Ray batch (part)")
    parser.add_argument("--ransac", action="store_true", help="RANSAC (default: the direct solve)")
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    args = parser.parse_args(argv)
    print(
        f"# {platform.processor() or platform.machine()}, {mp.cpu_count()} CPUs; {args.photos} photos, "
        f"batches of {args.part_size}, solver: {'RANSAC' if args.ransac else 'direct'}; no GPU"
    )
    with tempfile.TemporaryDirectory(prefix="loc2-scale-") as tmp:
        scene = make_scene(Path(tmp) / "scene", args.photos)
        rows = {}
        for i, name in enumerate(args.configs):
            rows[name] = _in_process(name, scene, Path(tmp) / f"out{i}", args.part_size, args.ransac)
    base = rows.get(CONFIGS[0])
    print(
        f"{'configuration':<20} {'seconds':>8} {'start s':>8} {'photos/s':>9} {'ratio':>6} {'driver MB':>10}  worker MB"
    )
    for name, r in rows.items():
        rate = r["photos"] / r["seconds"]
        ratio = rate / (base["photos"] / base["seconds"]) if base else float("nan")
        workers = ", ".join(f"{m:.0f}" for m in r["worker_rss_mb"]) or "-"
        print(
            f"{name:<20} {r['seconds']:8.1f} {r['start_s']:8.1f} {rate:9.2f} {ratio:6.2f} "
            f"{r['driver_rss_mb']:10.0f}  {workers}"
        )
    if base and "ray, 1 worker" in rows:
        r = rows["ray, 1 worker"]
        overhead = (r["seconds"] - base["seconds"]) / r["photos"]
        after_start = (r["seconds"] - r["start_s"] - base["seconds"]) / r["photos"]
        print(
            f"Ray overhead per photo on the same CPU (ray, 1 worker − single, 1 thread): {1000 * overhead:.0f} ms, "
            f"{1000 * after_start:.0f} ms without Ray's start-up"
        )


if __name__ == "__main__":
    main()
