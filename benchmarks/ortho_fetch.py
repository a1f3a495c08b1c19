"""Bytes and seconds fetched per photo from a tile server, cold and cached, beside the local GeoTIFF.

Generates a small city (``tests/servers.py``: 3 panoramas, a 200 m orthophoto at 0.1 m), serves its XYZ
tiles, WMTS and COG from a loopback HTTP server (a child process), and for each photo reads the search crops
the demo model reads around its EXIF prior (72 m, 256 px, a ``--radius`` search): first with an empty tile
cache (cold: the WMTS's capabilities, the COG's header and the tiles or byte ranges), then again (cached: a
second run, which should make no request at all), and from the local GeoTIFF in the same run as the
reference. GDAL's own in-process cache of remote files is off for the server (``CPL_VSIL_CURL_NON_CACHED``),
so each read sees what a new process would. The server's log counts the requests and body bytes; the
seconds include opening the source.

    python benchmarks/ortho_fetch.py [--radius 10] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the loopback server and the city's tiles

from servers import LoopbackServer, make_city_site  # noqa: E402

from loc2.core.inputs.ortho import Orthophoto  # noqa: E402
from loc2.core.inputs.photos import read_photo  # noqa: E402
from loc2.core.model.presets import demo_preset  # noqa: E402
from loc2.core.pipeline.search import _offset_in_crs, search_offsets_m  # noqa: E402


def photo_priors(photos: Path) -> list[tuple[str, float, float]]:
    """(name, lon, lat) of each photo's EXIF prior."""
    priors = []
    for path in sorted(photos.glob("*.jpg")):
        meta = read_photo(path)
        priors.append((path.name, meta.lon, meta.lat))
    return priors


def read_search_crops(source: str, lon: float, lat: float, radius_m: float) -> float:
    """Open ``source`` and read the demo model's search crops around (lon, lat); returns the seconds."""
    preset = demo_preset()
    t0 = time.perf_counter()
    with Orthophoto.open(source) as ortho:
        prior = ortho.lonlat_to_crs(lon, lat)
        for d_east, d_north in search_offsets_m(radius_m, preset.aerial_footprint_m):
            centre = _offset_in_crs(ortho, prior, d_east, d_north)
            ortho.crop(centre, preset.aerial_footprint_m, preset.aerial_size_px)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radius", type=float, default=10.0, help="search radius, metres (default 10)")
    parser.add_argument("--keep", type=Path, help="keep the city and the cache in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="loc2_fetch_"))
    if not (work / "site").is_dir():
        make_city_site(work)
    cache = work / "tile-cache"
    os.environ["LOC2_TILE_CACHE"] = str(cache)
    priors = photo_priors(work / "city" / "photos")
    rows = []
    with LoopbackServer(work / "site") as server:
        sources = {
            "xyz": f"{server.url}/xyz/{{z}}/{{x}}/{{y}}.png",
            "wmts": f"{server.url}/wmts/WMTSCapabilities.xml",
            "cog": f"{server.url}/cog/ortho.tif",
        }
        os.environ["CPL_VSIL_CURL_NON_CACHED"] = f"/vsicurl/{server.url}"
        for name, lon, lat in priors:
            local_s = read_search_crops(str(work / "city" / "ortho.tif"), lon, lat, args.radius)
            for kind, url in sources.items():
                shutil.rmtree(cache, ignore_errors=True)  # cold: nothing of this source cached
                figures = []
                for _ in ("cold", "cached"):
                    server.reset_log()
                    seconds = read_search_crops(url, lon, lat, args.radius)
                    requests, body = server.fetched()
                    figures.append((requests, body, seconds))
                rows.append((name, kind, *figures, local_s))
    print(f"search radius {args.radius:g} m, demo model crops (72 m, 256 px); tile cache {cache}")
    print("cold: empty cache (capabilities/header + tiles); cached: the same reads again (a second run)")
    print(
        f"{'photo':14} {'source':5} | {'cold: req':>9} {'kB':>7} {'s':>6} | {'cached: req':>11} {'kB':>5} {'s':>6} | {'local GeoTIFF s':>15}"
    )
    for name, kind, cold, cached, local_s in rows:
        print(
            f"{name:14} {kind:5} | {cold[0]:9d} {cold[1] / 1024:7.1f} {cold[2]:6.3f} | "
            f"{cached[0]:11d} {cached[1] / 1024:5.1f} {cached[2]:6.3f} | {local_s:15.3f}"
        )
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
