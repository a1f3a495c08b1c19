"""Real HTTP servers on 127.0.0.1 for the orthophoto-source tests, and the data they serve.

:class:`LoopbackServer` serves the files of a folder over HTTP/1.1 with byte-range requests (``Range:
bytes=a-b``, answered ``206``), in a thread, on a free port of the loopback address; ``{SERVER}`` in ``.xml``
files is replaced by its base URL (a WMTS capabilities document names its own tile URLs). Behaviours make it
misbehave on chosen paths: answer an HTTP status (``500``), stall (answer nothing for a while), ask for a
password (HTTP basic authentication). Every request is logged (path, status, body bytes) so tests and the
benchmark count what was fetched.

:func:`write_cog`, :func:`cut_xyz_tiles` and :func:`write_wmts_capabilities` make a Cloud-Optimized GeoTIFF,
Web Mercator ``z/x/y`` PNG tiles and a WMTS capabilities document from one orthophoto (the generated city's),
with rasterio and PIL (test side only).
"""

from __future__ import annotations

import base64
import json
import math
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WEB_MERCATOR_HALF_M = 20037508.342789244  # half the side of the Web Mercator square, metres
TILE_PX = 256
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


@dataclass
class Logged:
    """One request the server answered: its path, status and body bytes sent."""

    path: str
    status: int
    bytes: int


@dataclass
class Behaviour:
    """How the server misbehaves on the paths that start with one of ``paths`` (all paths when empty).

    ``status``: answer this HTTP status instead (e.g. 500); ``stall_s``: wait this long before answering
    (a stalled server); ``password``: (user, password) of HTTP basic authentication the paths need.
    """

    status: int | None = None
    stall_s: float = 0.0
    password: tuple[str, str] | None = None
    paths: tuple[str, ...] = ()

    def applies(self, path: str) -> bool:
        return not self.paths or any(path.startswith(p) for p in self.paths)


class LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 serving ``root``, in a child process (GDAL holds Python's GIL
    while it opens a dataset, so a server thread in the test's own process would never answer); a context
    manager (started on entry). The test steers it and reads its log through ``/__loopback/...`` paths."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._process: subprocess.Popen | None = None
        self._url = ""

    @property
    def url(self) -> str:
        return self._url

    def start(self) -> LoopbackServer:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(self.root)],
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self._process.stdout.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the loopback server did not start ({line!r})")
        self._url = line
        return self

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _control(self, action: str, payload: dict | None = None) -> dict | list:
        data = json.dumps(payload or {}).encode()
        request = urllib.request.Request(f"{self._url}/__loopback/{action}", data=data, method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 - our own loopback URL
            return json.loads(answer.read())

    def behave(self, behaviour: Behaviour | None) -> None:
        """Misbehave as ``behaviour`` says from now on (``None``: serve every path normally again)."""
        self._control("behave", asdict(behaviour) if behaviour is not None else {})

    def reset_log(self) -> None:
        self._control("reset")

    @property
    def log(self) -> list[Logged]:
        return [Logged(**entry) for entry in self._control("log")]

    def fetched(self, prefix: str = "/") -> tuple[int, int]:
        """(requests, body bytes) answered so far for paths starting with ``prefix``."""
        hits = [entry for entry in self.log if entry.path.startswith(prefix)]
        return len(hits), sum(entry.bytes for entry in hits)


class _Site:
    """The server side (in the child process): files of ``root``, a behaviour and a log."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.behaviour: Behaviour | None = None
        self.log: list[Logged] = []
        self.lock = threading.Lock()
        self.url = ""

    def serve(self) -> None:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args) -> None:  # quiet
                pass

            def do_HEAD(self) -> None:  # noqa: N802 - http.server API
                site.answer(self, body=False)

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                site.answer(self, body=True)

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                site.control(self)

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        host, port = httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        print(self.url, flush=True)
        httpd.serve_forever()

    def control(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length", "0"))
        payload = json.loads(handler.rfile.read(length) or b"{}")
        action = handler.path.rsplit("/", 1)[-1]
        with self.lock:
            if action == "behave":
                if payload:
                    payload["paths"] = tuple(payload.get("paths") or ())
                    if payload.get("password"):
                        payload["password"] = tuple(payload["password"])
                self.behaviour = Behaviour(**payload) if payload else None
                answer: object = {}
            elif action == "reset":
                self.log.clear()
                answer = {}
            else:
                answer = [asdict(entry) for entry in self.log]
        data = json.dumps(answer).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def answer(self, handler: BaseHTTPRequestHandler, body: bool) -> None:
        path = handler.path.split("?")[0]
        rule = self.behaviour
        if rule is not None and rule.applies(path):
            if rule.stall_s > 0:
                time.sleep(rule.stall_s)
            if rule.password is not None and not _authorized(handler, rule.password):
                headers = {"WWW-Authenticate": 'Basic realm="loopback"'}
                self.send(handler, 401, b"password needed\n", path, body, headers)
                return
            if rule.status is not None:
                self.send(handler, rule.status, f"status {rule.status}\n".encode(), path, body)
                return
        file = (self.root / path.lstrip("/")).resolve()
        if self.root.resolve() not in file.parents or not file.is_file():
            self.send(handler, 404, b"not found\n", path, body)
            return
        data = file.read_bytes()
        if file.suffix == ".xml":
            data = data.replace(b"{SERVER}", self.url.encode())
        ranged = _RANGE.match(handler.headers.get("Range", "").strip())
        headers = {"Accept-Ranges": "bytes", "Content-Type": _content_type(file)}
        if ranged and (ranged.group(1) or ranged.group(2)):
            first, last = _byte_range(ranged.group(1), ranged.group(2), len(data))
            if first >= len(data):
                self.send(handler, 416, b"", path, body, {"Content-Range": f"bytes */{len(data)}"})
                return
            headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
            self.send(handler, 206, data[first : last + 1], path, body, headers)
            return
        self.send(handler, 200, data, path, body, headers)

    def send(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        data: bytes,
        path: str,
        body: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        try:
            handler.send_response(status)
            for key, value in (headers or {}).items():
                handler.send_header(key, value)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            if body:
                handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            return
        with self.lock:
            self.log.append(Logged(path, status, len(data) if body else 0))


def _authorized(handler: BaseHTTPRequestHandler, password: tuple[str, str]) -> bool:
    expected = "Basic " + base64.b64encode(f"{password[0]}:{password[1]}".encode()).decode()
    return handler.headers.get("Authorization", "") == expected


def _byte_range(first: str, last: str, size: int) -> tuple[int, int]:
    if not first:  # the last N bytes
        return max(0, size - int(last)), size - 1
    return int(first), min(size - 1, int(last)) if last else size - 1


def _content_type(file: Path) -> str:
    return {".png": "image/png", ".xml": "application/xml", ".tif": "image/tiff"}.get(
        file.suffix, "application/octet-stream"
    )


# ---------------------------------------------------------------------------------------------- the data
def write_cog(ortho: Path, out: Path) -> Path:
    """A Cloud-Optimized GeoTIFF of ``ortho`` (256-pixel tiles, DEFLATE, overviews): the same pixels."""
    import rasterio.shutil

    rasterio.shutil.copy(ortho, out, driver="COG", compress="DEFLATE", blocksize=256)
    return out


def tile_resolution_m(zoom: int) -> float:
    """Web Mercator metres per pixel of zoom level ``zoom`` (256-pixel tiles)."""
    return 2 * WEB_MERCATOR_HALF_M / (TILE_PX * 2**zoom)


def cut_xyz_tiles(ortho: Path, out_dir: Path, zooms: tuple[int, ...], margin_m: float = 80.0) -> int:
    """Cut ``ortho`` into Web Mercator ``z/x/y.png`` RGBA tiles (average resampling, as map tile pipelines do;
    transparent where it has no data) covering
    its extent plus ``margin_m`` at each zoom; returns the number of tiles written."""
    import numpy as np
    import rasterio
    from PIL import Image
    from rasterio.transform import from_origin
    from rasterio.warp import Resampling, reproject, transform_bounds

    count = 0
    with rasterio.open(ortho) as src:
        left, bottom, right, top = transform_bounds(src.crs, "EPSG:3857", *src.bounds)
        rgb = src.read()
        alpha = src.dataset_mask()
        for zoom in zooms:
            res = tile_resolution_m(zoom)
            span = TILE_PX * res
            x0 = math.floor((left - margin_m + WEB_MERCATOR_HALF_M) / span)
            x1 = math.floor((right + margin_m + WEB_MERCATOR_HALF_M) / span)
            y0 = math.floor((WEB_MERCATOR_HALF_M - top - margin_m) / span)
            y1 = math.floor((WEB_MERCATOR_HALF_M - bottom + margin_m) / span)
            for x in range(x0, x1 + 1):
                for y in range(y0, y1 + 1):
                    transform = from_origin(
                        -WEB_MERCATOR_HALF_M + x * span, WEB_MERCATOR_HALF_M - y * span, res, res
                    )
                    tile = np.zeros((4, TILE_PX, TILE_PX), np.uint8)
                    for band, data in ((slice(0, 3), rgb), (slice(3, 4), alpha[None])):
                        reproject(
                            data,
                            tile[band],
                            src_transform=src.transform,
                            src_crs=src.crs,
                            dst_transform=transform,
                            dst_crs="EPSG:3857",
                            resampling=Resampling.average,
                        )
                    path = out_dir / str(zoom) / str(x) / f"{y}.png"
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(np.moveaxis(tile, 0, -1), "RGBA").save(path)
                    count += 1
    return count


def write_tile_mosaic(tiles_dir: Path, zoom: int, out: Path) -> Path:
    """A GeoTIFF (EPSG:3857, RGBA) of every ``zoom/x/y.png`` tile under ``tiles_dir``, pixel for pixel: the
    local file holding exactly the pixels the tile server serves at ``zoom``."""
    import numpy as np
    import rasterio
    from PIL import Image
    from rasterio.enums import ColorInterp
    from rasterio.transform import from_origin

    tiles = {
        (int(path.parent.name), int(path.stem)): path for path in (tiles_dir / str(zoom)).glob("*/*.png")
    }
    xs = [x for x, _ in tiles]
    ys = [y for _, y in tiles]
    x0, y0 = min(xs), min(ys)
    mosaic = np.zeros((4, (max(ys) - y0 + 1) * TILE_PX, (max(xs) - x0 + 1) * TILE_PX), np.uint8)
    for (x, y), path in tiles.items():
        rows = slice((y - y0) * TILE_PX, (y - y0 + 1) * TILE_PX)
        cols = slice((x - x0) * TILE_PX, (x - x0 + 1) * TILE_PX)
        mosaic[:, rows, cols] = np.moveaxis(np.asarray(Image.open(path).convert("RGBA")), -1, 0)
    res = tile_resolution_m(zoom)
    span = TILE_PX * res
    transform = from_origin(-WEB_MERCATOR_HALF_M + x0 * span, WEB_MERCATOR_HALF_M - y0 * span, res, res)
    out.parent.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", width=mosaic.shape[2], height=mosaic.shape[1], count=4, dtype="uint8")
    with rasterio.open(out, "w", crs="EPSG:3857", transform=transform, tiled=True, **profile) as ds:
        ds.write(mosaic)
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    return out


def write_wmts_capabilities(path: Path, tiles_prefix: str, zooms: tuple[int, ...], bbox_lonlat) -> Path:
    """A WMTS 1.0.0 capabilities document with one layer ``city`` (PNG, RESTful tiles at
    ``{SERVER}/<tiles_prefix>/{TileMatrix}/{TileCol}/{TileRow}.png``) in a Google-Maps-compatible tile
    matrix set of ``zooms``; ``bbox_lonlat`` (west, south, east, north) is the layer's extent."""
    west, south, east, north = bbox_lonlat
    matrices = "".join(
        f"""
      <TileMatrix>
        <ows:Identifier>{z}</ows:Identifier>
        <ScaleDenominator>{tile_resolution_m(z) / 0.00028:.10f}</ScaleDenominator>
        <TopLeftCorner>{-WEB_MERCATOR_HALF_M:.9f} {WEB_MERCATOR_HALF_M:.9f}</TopLeftCorner>
        <TileWidth>{TILE_PX}</TileWidth><TileHeight>{TILE_PX}</TileHeight>
        <MatrixWidth>{2**z}</MatrixWidth><MatrixHeight>{2**z}</MatrixHeight>
      </TileMatrix>"""
        for z in zooms
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""<?xml version="1.0" encoding="UTF-8"?>
<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1"
    xmlns:xlink="http://www.w3.org/1999/xlink" version="1.0.0">
  <ows:ServiceIdentification><ows:Title>Loopback city orthophoto</ows:Title>
    <ows:ServiceType>OGC WMTS</ows:ServiceType><ows:ServiceTypeVersion>1.0.0</ows:ServiceTypeVersion>
  </ows:ServiceIdentification>
  <Contents>
    <Layer>
      <ows:Title>city</ows:Title>
      <ows:WGS84BoundingBox><ows:LowerCorner>{west} {south}</ows:LowerCorner>
        <ows:UpperCorner>{east} {north}</ows:UpperCorner></ows:WGS84BoundingBox>
      <ows:Identifier>city</ows:Identifier>
      <Style isDefault="true"><ows:Identifier>default</ows:Identifier></Style>
      <Format>image/png</Format>
      <TileMatrixSetLink><TileMatrixSet>gm</TileMatrixSet></TileMatrixSetLink>
      <ResourceURL format="image/png" resourceType="tile"
          template="{{SERVER}}/{tiles_prefix}/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.png"/>
    </Layer>
    <TileMatrixSet>
      <ows:Identifier>gm</ows:Identifier>
      <ows:SupportedCRS>urn:ogc:def:crs:EPSG::3857</ows:SupportedCRS>{matrices}
    </TileMatrixSet>
  </Contents>
</Capabilities>
""",
        encoding="utf-8",
    )
    return path


@dataclass
class TileSite:
    """What a loopback server serves for one city: ``/cog/ortho.tif``, ``/xyz/{z}/{x}/{y}.png`` and
    ``/wmts/WMTSCapabilities.xml`` (tiles under ``/xyz``); beside them ``mosaic/z<finest>.tif``, a local
    GeoTIFF of the finest tiles (:func:`write_tile_mosaic`, not fetched by the tests)."""

    root: Path
    zooms: tuple[int, ...]

    @property
    def mosaic(self) -> Path:
        return self.root / "mosaic" / f"z{max(self.zooms)}.tif"

    def cog_url(self, server: LoopbackServer) -> str:
        return f"{server.url}/cog/ortho.tif"

    def xyz_url(self, server: LoopbackServer) -> str:
        return f"{server.url}/xyz/{{z}}/{{x}}/{{y}}.png"

    def wmts_url(self, server: LoopbackServer) -> str:
        return f"{server.url}/wmts/WMTSCapabilities.xml"


def make_tile_site(ortho: Path, root: Path, zooms: tuple[int, ...] = (17, 18, 19)) -> TileSite:
    """The COG, the XYZ tiles and the WMTS capabilities of ``ortho`` under ``root``."""
    import rasterio
    from rasterio.warp import transform_bounds

    (root / "cog").mkdir(parents=True, exist_ok=True)
    write_cog(ortho, root / "cog" / "ortho.tif")
    cut_xyz_tiles(ortho, root / "xyz", zooms)
    write_tile_mosaic(root / "xyz", max(zooms), root / "mosaic" / f"z{max(zooms)}.tif")
    with rasterio.open(ortho) as src:
        bbox = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    margin_deg = 0.001  # about 100 m: the layer's extent covers the tiles' margin
    west, south, east, north = bbox
    write_wmts_capabilities(
        root / "wmts" / "WMTSCapabilities.xml",
        "xyz",
        zooms,
        (west - margin_deg, south - margin_deg, east + margin_deg, north + margin_deg),
    )
    return TileSite(root, zooms)


def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    """Poll ``predicate`` until it is true or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    return predicate()


CITY_SEED = 1004  # never used in training (below 1000), nor by the demo (1001) or determinism (1002)


def make_city_site(root: Path, seed: int = CITY_SEED) -> Path:
    """A small generated city under ``root/city`` (3 panoramas with EXIF priors 3 m off, a 200 m orthophoto
    at 0.1 m) and what the loopback server serves of it under ``root/site`` (:func:`make_tile_site`)."""
    from loc2.core.synthetic.datasets import generate_dataset

    generate_dataset(root / "city", seed, n_panoramas=3, n_pinhole=0, prior_sigma_m=3.0, size_m=200.0)
    make_tile_site(root / "city" / "ortho.tif", root / "site")
    return root


def qgis_wmts_uri(server: LoopbackServer) -> str:
    """The QGIS ``wms`` provider URI of the loopback WMTS layer ``city``."""
    return (
        "contextualWMSLegend=0&crs=EPSG:3857&dpiMode=7&featureCount=10&format=image/png&layers=city"
        f"&styles=default&tileMatrixSet=gm&url={server.url}/wmts/WMTSCapabilities.xml"
    )


if __name__ == "__main__":  # the child process of LoopbackServer: serve the folder given
    _Site(Path(sys.argv[1])).serve()
