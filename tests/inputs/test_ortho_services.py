"""Orthophotos from web services, on real HTTP servers on 127.0.0.1: a Cloud-Optimized GeoTIFF read with byte
ranges, Web Mercator XYZ tiles and a WMTS, all cut from one generated city's orthophoto (``servers.py``).

The crops and the poses from each source are compared with those from the local GeoTIFF; a server that
answers 500, one that stalls and one that wants a password fail only the photo being read, with a message
naming the service and the status.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyproj
import pytest
import rasterio
from plugin_fixtures import write_ortho
from server_fixtures import city_fixture, server_fixture  # noqa: F401 - the module's fixtures
from servers import Behaviour, LoopbackServer

from loc2.core.errors import OrthoFetchError
from loc2.core.inputs.ortho import Orthophoto
from loc2.core.inputs.ortho_sources import (
    HeaderCache,
    KeptHandles,
    WindowCache,
    fetch_failure,
    resolve_source,
)
from loc2.core.inputs.raster_header import RasterHeader
from loc2.core.output.formats import read_poses
from loc2.core.output.results import PhotoResult
from loc2.core.pipeline.job import run_localize
from loc2.core.types import MODE_OVERWRITE, JobOptions, LocalizeRequest, OutputSpec, PhotoSource

FOOTPRINT_M = 72.0
CROP_PX = 256  # the demo model's crop: 72 m over 256 px, 0.28 m per pixel
_GEOD = pyproj.Geod(ellps="WGS84")
# Largest (shift m, turn °) from the pose on the local GeoTIFF holding the same pixels as the source: the
# city's 0.1 m GeoTIFF for the COG; for the XYZ tiles and the WMTS, the GeoTIFF of their 0.2 m zoom-19 tiles
# (servers.write_tile_mosaic). Measured: 0 m and 0° for the COG and the XYZ, 0.2 mm and 0.007° for the WMTS.
# Against the 0.1 m GeoTIFF the tiles' poses move by up to 0.21 m and 1.06° here, and so does that local
# 0.2 m GeoTIFF's: the source's coarser pixels, not the fetching (a 0.2 m GeoTIFF in the city's own UTM
# CRS, no Web Mercator at all, moves one panorama by 2.55°).
POSE_TOLERANCE_M_DEG = (0.2, 0.5)
FAST_HTTP = {"GDAL_HTTP_MAX_RETRY": "1", "GDAL_HTTP_RETRY_DELAY": "0.1", "GDAL_HTTP_TIMEOUT": "2"}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A fresh tile cache for the test, and quick HTTP settings (one retry, 2 s timeout)."""
    folder = tmp_path / "tile-cache"
    monkeypatch.setenv("LOC2_TILE_CACHE", str(folder))
    for key, value in FAST_HTTP.items():
        monkeypatch.setenv(key, value)
    return folder


def _sources(server: LoopbackServer) -> dict[str, str]:
    return {
        "cog": f"{server.url}/cog/ortho.tif",
        "xyz": f"{server.url}/xyz/{{z}}/{{x}}/{{y}}.png",
        "wmts": f"{server.url}/wmts/WMTSCapabilities.xml",
    }


def _city_centre(city: Path) -> tuple[float, float]:
    with Orthophoto.open(city / "city" / "ortho.tif") as ortho:
        b = ortho.bounds
        return ortho.crs_to_lonlat((b.left + b.right) / 2, (b.bottom + b.top) / 2)


# ------------------------------------------------------------------------------------------- sources
def test_source_names_become_gdal_dataset_names(tmp_path, monkeypatch):
    monkeypatch.setenv("LOC2_TILE_CACHE", str(tmp_path))
    url = "https://user:secret@example.org/ortho/cog.tif"  # pragma: allowlist secret
    cog = resolve_source(url)
    assert cog.gdal_path == f"/vsicurl/{url}" and cog.remote
    assert "secret" not in cog.service and cog.service == "https://example.org/ortho/cog.tif"
    wmts = resolve_source("https://example.org/wmts/1.0.0/WMTSCapabilities.xml")
    assert wmts.gdal_path == "WMTS:https://example.org/wmts/1.0.0/WMTSCapabilities.xml"
    wms = resolve_source("https://example.org/ows?SERVICE=WMS&REQUEST=GetCapabilities")
    assert wms.gdal_path.startswith("WMS:https://example.org/ows?")
    assert resolve_source("WMTS:https://example.org/c.xml,layer=ortho").gdal_path.startswith("WMTS:")
    local = resolve_source(tmp_path / "ortho.tif")
    assert local.gdal_path == str(tmp_path / "ortho.tif") and not local.remote
    xyz = resolve_source("https://tiles.example.org/{z}/{x}/{y}.jpg?key=a&b=c")
    description = Path(xyz.gdal_path).read_text()
    assert "${z}/${x}/${y}.jpg?key=a&amp;b=c" in description and "<TileLevel>19</TileLevel>" in description
    qgis = resolve_source("type=xyz&url=https://tiles.example.org/%7Bz%7D/%7Bx%7D/%7By%7D.png&zmax=20&zmin=0")
    assert "<TileLevel>20</TileLevel>" in Path(qgis.gdal_path).read_text()
    assert resolve_source("https://tiles.example.org/{z}/{x}/{y}.jpg?key=a&b=c").gdal_path == xyz.gdal_path


def test_fetch_failures_name_the_service_and_the_status():
    source = resolve_source("https://user:pw@tiles.example.org/cog.tif")

    def chained(text: str) -> Exception:
        try:
            try:
                raise RuntimeError(text)
            except RuntimeError as inner:
                raise OSError("Read failed. See previous exception for details.") from inner
        except OSError as outer:
            return outer

    message = fetch_failure(
        source, chained("GDALWMS: Unable to download block 3, 3.\n HTTP status code: 500")
    )
    assert "https://tiles.example.org/cog.tif" in message and "HTTP 500" in message and "pw" not in message
    assert "HTTP 401" in fetch_failure(source, chained("HTTP response code: 401"))
    assert "GDAL_HTTP_USERPWD" in fetch_failure(source, chained("HTTP response code: 401"))
    assert "did not answer in time" in fetch_failure(source, chained("Operation timed out after 1000 ms"))
    assert fetch_failure(source, chained("not a TIFF file")) is None


def test_window_cache_keeps_within_its_size_bound(tmp_path):
    cache = WindowCache(tmp_path, limit_bytes=150_000)
    source = resolve_source("https://example.org/cog.tif")
    rng = np.random.default_rng(0)
    keys = []
    for i in range(6):  # about 48 kB each, uncompressed
        values = rng.integers(0, 255, (3, 128, 128), dtype=np.uint8)
        keys.append(WindowCache.key(source, i))
        cache.put(keys[-1], values, np.ones((128, 128), np.uint8))
        time.sleep(0.01)  # distinct modification times
    total = sum(p.stat().st_size for p in (tmp_path / "windows").glob("*/*.npz"))
    assert total <= 150_000
    assert cache.get(keys[-1]) is not None and cache.get(keys[0]) is None  # the oldest went first


def test_header_cache_expires_and_keeps_within_its_size_bound(tmp_path, monkeypatch):
    from loc2.core.inputs import ortho_sources

    header = RasterHeader(
        10, 20, (0.0, 0.5, 0.0, 100.0, 0.0, -0.5), "WKT", ("uint8",) * 3, True, (1, 2, 3), None, False
    )
    source = resolve_source("https://user:pw@example.org/cog.tif")
    cache = HeaderCache(tmp_path, max_age_s=3600)
    assert cache.get(source) is None
    cache.put(source, header)
    assert cache.get(source) == header
    assert cache.get(resolve_source("https://example.org/cog.tif")) == header  # keyed by the URL, no password
    assert "pw" not in next((tmp_path / "headers").glob("*.json")).read_text()
    assert HeaderCache(tmp_path, max_age_s=0).get(source) is None  # disabled
    later = time.time() + 3601
    monkeypatch.setattr(ortho_sources.time, "time", lambda: later)
    assert cache.get(source) is None  # expired: fetched again
    monkeypatch.undo()
    next((tmp_path / "headers").glob("*.json")).write_text("{not json")
    assert cache.get(source) is None
    monkeypatch.setattr(ortho_sources, "HEADER_CACHE_MAX_BYTES", 3000)
    for i in range(10):
        cache.put(resolve_source(f"https://example.org/{i}.tif"), header)
        time.sleep(0.01)
    files = list((tmp_path / "headers").glob("*.json"))
    assert sum(p.stat().st_size for p in files) <= 3000 and len(files) < 10
    assert cache.get(resolve_source("https://example.org/9.tif")) == header  # the newest stays


def test_reopening_a_service_needs_no_request_until_its_header_expires(server, cache, monkeypatch):
    monkeypatch.setenv(
        "CPL_VSIL_CURL_NON_CACHED", f"/vsicurl/{server.url}"
    )  # as a new process: no GDAL cache
    for name, url in _sources(server).items():
        with Orthophoto.open(url) as first:
            pass
        server.reset_log()
        with Orthophoto.open(url) as again:
            assert (again.width, again.height, again.transform) == (
                first.width,
                first.height,
                first.transform,
            )
            assert again.crs == first.crs and again.bounds == first.bounds
        assert server.fetched() == (0, 0), (name, server.log)
        monkeypatch.setenv("LOC2_HEADER_CACHE_HOURS", "0")  # no header cache: opening fetches
        with Orthophoto.open(url):
            pass
        monkeypatch.delenv("LOC2_HEADER_CACHE_HOURS")
        if name != "xyz":  # the XYZ description is a local file: opening it never fetches
            assert server.fetched()[0] > 0, name


# ------------------------------------------------------------------------------------------- crops
def test_crops_from_the_cog_and_the_tile_services_match_the_local_geotiff(city, server, cache):
    lon, lat = _city_centre(city)
    with Orthophoto.open(city / "city" / "ortho.tif") as local:
        reference = local.crop(local.lonlat_to_crs(lon, lat), FOOTPRINT_M, CROP_PX).image.astype(float)
    for name, url in _sources(server).items():
        server.reset_log()
        with Orthophoto.open(url) as ortho:
            crop = ortho.crop(ortho.lonlat_to_crs(lon, lat), FOOTPRINT_M, CROP_PX)
        assert crop.valid.all(), name
        difference = np.abs(crop.image.astype(float) - reference)
        # the COG holds the same pixels; the tiles were resampled to 0.2 m Web Mercator pixels
        assert difference.mean() < (1.0 if name == "cog" else 8.0), (name, difference.mean())
        requests, body_bytes = server.fetched()
        assert 0 < requests <= 30, (name, requests)
        if name == "cog":  # a few byte ranges of a 7 MB file
            assert body_bytes < 0.5 * (city / "site" / "cog" / "ortho.tif").stat().st_size


def test_tiles_are_fetched_at_the_zoom_nearest_the_model_and_once(city, server, cache):
    lon, lat = _city_centre(city)
    server.reset_log()
    with Orthophoto.open(_sources(server)["xyz"]) as ortho:
        centre = ortho.lonlat_to_crs(lon, lat)
        ortho.crop(
            centre, FOOTPRINT_M, CROP_PX
        )  # 0.28 m per pixel: zoom 19 (0.20 m here) is the nearest finer
        tiles = [entry.path for entry in server.log]
        assert tiles and all(path.startswith("/xyz/19/") for path in tiles), tiles
        ortho.crop(centre, 2 * FOOTPRINT_M, CROP_PX)  # 0.56 m per pixel: zoom 18 (0.40 m)
        coarser = [entry.path for entry in server.log][len(tiles) :]
        assert coarser and all(path.startswith("/xyz/18/") for path in coarser), coarser
        server.reset_log()
        again = ortho.crop(centre, FOOTPRINT_M, CROP_PX)  # the same window: from the cache
    assert server.fetched() == (0, 0) and again.valid.all()
    assert list((cache / "windows").glob("*/*.npz"))


def test_a_service_is_opened_once_however_many_windows_are_read(city, server, cache, monkeypatch):
    """A WMTS's capabilities and a COG's header are fetched once per thread, not once per window: the handle
    opened to read the header is kept and reused (``KeptHandles``); another thread opens its own, once."""
    monkeypatch.setenv(
        "CPL_VSIL_CURL_NON_CACHED", f"/vsicurl/{server.url}"
    )  # as a new process: no GDAL cache
    lon, lat = _city_centre(city)
    url = _sources(server)["wmts"]
    capabilities = urlsplit(url).path
    server.reset_log()
    with Orthophoto.open(url) as ortho:
        centre = ortho.lonlat_to_crs(lon, lat)
        for step_m in (0, 15, 30, 45):  # four windows none of which is in the window cache
            crop = ortho.crop((centre[0] + step_m, centre[1]), FOOTPRINT_M, CROP_PX)
            assert crop.valid.all()
        assert server.fetched(capabilities)[0] == 1, server.log
        crops = []
        other = threading.Thread(
            target=lambda: crops.append(ortho.crop((centre[0], centre[1] + 20), FOOTPRINT_M, CROP_PX))
        )
        other.start()
        other.join()
        assert len(crops) == 1 and crops[0].valid.all()
        assert server.fetched(capabilities)[0] == 2, server.log


def test_kept_handles_are_reopened_after_their_reads_and_after_a_failure(tmp_path):
    """A kept handle serves ``reads`` reads, then is closed (its tiles leave GDAL's cache) and reopened; a read
    that fails closes it; close() closes every thread's handle."""
    path = write_ortho(tmp_path / "small.tif")
    opened = []

    def open_dataset():
        opened.append(rasterio.open(path))
        return opened[-1]

    kept = KeptHandles(reads=3)
    for _ in range(7):
        with kept.reader(open_dataset) as ds:
            assert ds.read(1).shape == (ds.height, ds.width)
    assert len(opened) == 3 and [ds.closed for ds in opened] == [True, True, False]
    with pytest.raises(RuntimeError), kept.reader(open_dataset):
        raise RuntimeError("a failed read")
    assert len(opened) == 3 and opened[-1].closed
    with kept.reader(open_dataset):
        pass
    kept.close()
    assert len(opened) == 4 and all(ds.closed for ds in opened)


def test_a_service_that_needs_a_password_says_so_and_takes_one(city, server, cache, monkeypatch):
    lon, lat = _city_centre(city)
    server.behave(Behaviour(password=("analyst", "s3cret"), paths=("/xyz/",)))
    try:
        with Orthophoto.open(_sources(server)["xyz"]) as ortho:
            centre = ortho.lonlat_to_crs(lon, lat)
            with pytest.raises(OrthoFetchError, match=r"needs a user name and password \(HTTP 401\)") as info:
                ortho.crop(centre, FOOTPRINT_M, CROP_PX)
            assert f"{server.url}/xyz/" in str(info.value)
            monkeypatch.setenv("GDAL_HTTP_USERPWD", "analyst:s3cret")
            assert ortho.crop(centre, FOOTPRINT_M, CROP_PX).valid.all()
    finally:
        server.behave(None)


# ------------------------------------------------------------------------------------------- poses
def _localize(city: Path, ortho: str, out: Path, on_result=None) -> list[PhotoResult]:
    """The job's results, photo by photo (``on_result`` is told each one too)."""
    results: list[PhotoResult] = []

    def record(result: PhotoResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)

    request = LocalizeRequest(
        ortho=ortho,
        photos=PhotoSource(images=[city / "city" / "photos"]),
        output=OutputSpec(out, "csv", MODE_OVERWRITE),
        options=JobOptions(device="cpu"),
    )
    run_localize(request, on_result=record)
    return sorted(results, key=lambda result: result.photo)


def _shift_m(a: PhotoResult, b: PhotoResult) -> float:
    return float(_GEOD.inv(a.lon, a.lat, b.lon, b.lat)[2])


def _heading_difference_deg(a: float, b: float) -> float:
    return abs((a - b + 180.0) % 360.0 - 180.0)


def _poses(results: list[PhotoResult]) -> list[tuple]:
    return [(r.status, r.lon, r.lat, r.heading_deg) for r in results]


@pytest.mark.slow
def test_poses_match_the_local_geotiff_and_a_second_run_needs_no_network(city, cache, tmp_path, monkeypatch):
    """Each source's poses are within 0.2 m and 0.5° of those from the local GeoTIFF of the same pixels; a
    second run over the same photos makes no request, and a third, with the server stopped, gives the same
    poses."""
    references = {
        "cog": _localize(city, str(city / "city" / "ortho.tif"), tmp_path / "local.csv"),
        "tiles": _localize(city, str(city / "site" / "mosaic" / "z19.tif"), tmp_path / "mosaic.csv"),
    }
    first = {}
    with LoopbackServer(city / "site") as own:  # its own server, stopped below
        sources = _sources(own)
        monkeypatch.setenv("CPL_VSIL_CURL_NON_CACHED", f"/vsicurl/{own.url}")  # no GDAL cache between runs
        for name, url in sources.items():
            first[name] = _localize(city, url, tmp_path / f"{name}.csv")
            reference = references["cog" if name == "cog" else "tiles"]
            assert [r.status for r in reference] == ["ok"] * 3
            for ref, result in zip(reference, first[name], strict=True):
                assert result.status == "ok", (name, result.message)
                shift_m = _shift_m(ref, result)
                turn_deg = _heading_difference_deg(result.heading_deg, ref.heading_deg)
                most_m, most_deg = POSE_TOLERANCE_M_DEG
                assert shift_m <= most_m and turn_deg <= most_deg, (name, result.photo, shift_m, turn_deg)
            own.reset_log()
            again = _localize(city, url, tmp_path / f"{name}-again.csv")
            assert own.fetched() == (0, 0), (name, own.log[:5])  # no capabilities, header nor tile
            assert _poses(again) == _poses(first[name]), name
    for name, url in sources.items():  # the server is gone: any request would fail the photo
        offline = _localize(city, url, tmp_path / f"{name}-offline.csv")
        assert _poses(offline) == _poses(first[name]), (name, [r.message for r in offline])


@pytest.mark.slow
@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [
        (Behaviour(status=500, paths=("/xyz/",)), r"answered HTTP 500 \(after 1 retries\)"),
        (Behaviour(stall_s=4.0, paths=("/xyz/",)), r"did not answer in time \(timeout 2 s"),
        (Behaviour(password=("analyst", "s3cret"), paths=("/xyz/",)), r"needs a user name and password"),
    ],
    ids=["500", "stall", "password"],
)
def test_a_failing_service_fails_only_the_photo_it_was_reading(
    city, server, cache, tmp_path, behaviour, expected
):
    """The server misbehaves while the second photo is read (from the first result to the second)."""
    seen: list[str] = []

    def on_result(result) -> None:
        seen.append(result.status)
        server.behave(behaviour if len(seen) == 1 else None)

    try:
        results = _localize(city, _sources(server)["xyz"], tmp_path / "poses.csv", on_result)
    finally:
        server.behave(None)
    assert [result.status for result in results] == ["ok", "failed", "ok"], [r.message for r in results]
    failed = results[1]
    assert Path(failed.photo).name == "pano_001.jpg" and "pano_001.jpg" in failed.message
    assert f"{server.url}/xyz/" in failed.message and re.search(expected, failed.message), failed.message
    assert [
        Path(row["photo"]).name
        for row in read_poses(tmp_path / "poses.csv")["photo"].to_frame().to_dict("records")
    ] == [
        "pano_000.jpg",
        "pano_001.jpg",
        "pano_002.jpg",
    ]  # every photo's row is in the output, the failed one with its message


# ------------------------------------------------------------------------------------------- resolution
def _raster(path: Path, metres_per_pixel: float) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=64,
        height=64,
        count=3,
        dtype="uint8",
        crs="EPSG:32632",
        transform=from_origin(465000.0, 5247000.0, metres_per_pixel, metres_per_pixel),
    ) as ds:
        ds.write(np.full((3, 64, 64), 128, np.uint8))
    return path


def test_a_coarse_orthophoto_is_refused_or_warned_about_naming_both_resolutions(tmp_path, caplog):
    from loc2.core.errors import PhotoError
    from loc2.core.model.presets import demo_preset
    from loc2.core.pipeline.search import check_resolution

    preset = demo_preset()  # 72 m over 256 px: 0.28 m per pixel
    photo = tmp_path / "photo.jpg"
    for metres, outcome in ((0.1, "quiet"), (0.4, "warning"), (1.0, "error")):
        with Orthophoto.open(_raster(tmp_path / f"{metres}.tif", metres)) as ortho:
            centre = (465000.0 + 32 * metres, 5247000.0 - 32 * metres)
            caplog.clear()
            if outcome == "error":
                with pytest.raises(PhotoError, match=r"has 1\.00 m per pixel .* needs 0\.28 m per pixel"):
                    check_resolution(ortho, centre, preset, photo)
                continue
            check_resolution(ortho, centre, preset, photo)
            warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
            assert bool(warned) == (outcome == "warning"), warned
            if warned:
                assert "0.40 m per pixel" in warned[0] and "needs 0.28 m per pixel" in warned[0]
