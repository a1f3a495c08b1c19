"""Where an orthophoto comes from: a file, a Cloud-Optimized GeoTIFF over HTTP(S), a WMTS, a WMS or an XYZ
tile template, all read through GDAL; HTTP settings (retries, back-off, timeouts), messages naming the
service and the HTTP status, and a size-bounded cache of the windows read from remote sources.

What ``--ortho`` accepts (:func:`resolve_source`):

* a file or any GDAL path (``/vsizip/...``, ``/vsicurl/...``, ``WMTS:...``, ``WMS:...``, a GDAL WMS XML
  description): passed to GDAL as given;
* ``http(s)://...`` naming a raster file (a COG): read through ``/vsicurl/`` (byte ranges of the tiles needed);
* ``http(s)://...`` of a WMTS capabilities document (``...WMTSCapabilities.xml`` or ``SERVICE=WMTS``):
  ``WMTS:<url>``; of a WMS (``SERVICE=WMS``): ``WMS:<url>``;
* an XYZ/TMS template with ``{z}``, ``{x}``, ``{y}`` (or QGIS's XYZ URI ``type=xyz&url=...&zmax=19``): a GDAL
  WMS description (Web Mercator, 256-pixel tiles, zoom levels up to ``zmax``, default
  :data:`XYZ_DEFAULT_ZMAX`) written to the cache folder.

GDAL chooses the zoom level (overview) of a web service for each decimated read: the coarsest level still at
least as fine as the resolution the crop needs.

The cache folder (:func:`cache_folder`) keeps, for remote sources only:

* ``windows/``: each window read (:class:`WindowCache`), under a digest of the source and the read; never
  stale by age (a service's published pixels are taken as fixed), least recently used files go first when
  the folder exceeds ``LOC2_TILE_CACHE_MB`` (default :data:`CACHE_DEFAULT_MB`);
* ``headers/``: what opening the source reads over the network (a WMTS's or WMS's capabilities document, a
  COG's header) reduced to the raster's description: size, geotransform, CRS, bands, overviews
  (:class:`HeaderCache`), under a digest of the URL (without credentials). An entry is used for
  ``LOC2_HEADER_CACHE_HOURS`` (default :data:`HEADER_MAX_AGE_H`) after it was fetched, then fetched again,
  so a service that changes its capabilities is seen within a day; 0 disables it. At most
  :data:`HEADER_CACHE_MAX_BYTES`, least recently used first out.

A second run over the same area therefore opens no connection: the header and every window come from the
cache. Within a run, the handle that read the header stays open (:class:`KeptHandles`), so a window not in the
cache fetches only its tiles or byte ranges, not the capabilities or the header again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import numpy as np
import rasterio
from rasterio.io import DatasetReader

from .raster_header import RasterHeader

XYZ_DEFAULT_ZMAX = 19  # about 0.3 m per pixel at the equator: the finest level most aerial services offer
WEB_MERCATOR_HALF_M = 20037508.342789244  # half the side of the Web Mercator square, metres

# HTTP settings for GDAL (each overridable by the GDAL config option of the same name in the environment)
HTTP_DEFAULTS = {
    "GDAL_HTTP_MAX_RETRY": "3",  # retries of a failed request (HTTP 429, 5xx, timeouts)
    "GDAL_HTTP_RETRY_DELAY": "1",  # seconds before the first retry; GDAL doubles it each time (back-off)
    "GDAL_HTTP_TIMEOUT": "30",  # seconds for one whole request
    "GDAL_HTTP_CONNECTTIMEOUT": "10",  # seconds to connect
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # a COG over HTTP: no directory listing
    # GDAL's WMS/WMTS tile cache (~/.cache/gdalwmscache) off: the window cache below is the one cache, bounded
    # and in the cache folder
    "GDAL_ENABLE_WMS_CACHE": "NO",
}
CACHE_DEFAULT_MB = 1024  # size bound of the window cache (LOC2_TILE_CACHE_MB overrides; 0 disables it)
KEPT_HANDLE_READS = 32  # window reads through one kept handle of a remote source (KeptHandles)
HEADER_MAX_AGE_H = 24.0  # hours a cached header is used before it is fetched again (LOC2_HEADER_CACHE_HOURS)
HEADER_CACHE_MAX_BYTES = 4 * 1024 * 1024  # size bound of the header cache (a header is 1-8 kB)
_STATUS = re.compile(r"HTTP (?:status|response) code\s*:?\s*(\d{3})", re.IGNORECASE)
_TIMEOUT = re.compile(r"timed out|timeout", re.IGNORECASE)
_STATUS_WORDS = {
    401: "needs a user name and password (HTTP 401): set GDAL_HTTP_USERPWD=user:password, or add the "
    "service as a QGIS layer with its authentication configuration and run Loc2 from QGIS",
    403: "refused access (HTTP 403)",
    404: "has no such resource (HTTP 404)",
    429: "answered 'too many requests' (HTTP 429) after every retry",
}


@dataclass(frozen=True)
class OrthoSource:
    """An orthophoto source: ``text`` as given, ``gdal_path`` as GDAL opens it, ``service`` as messages
    name it (the URL without credentials, or the file), and whether it is read over the network."""

    text: str
    gdal_path: str
    service: str
    remote: bool


def resolve_source(text: str | os.PathLike) -> OrthoSource:
    """The GDAL dataset name of an ``--ortho`` argument (see the module docstring)."""
    text = os.fspath(text)
    qgis_xyz = _qgis_xyz_uri(text)
    if qgis_xyz is not None:
        url, zmax = qgis_xyz
        return OrthoSource(text, str(xyz_description(url, zmax)), _public(url), True)
    if re.match(r"https?://", text, re.IGNORECASE):
        if "{z}" in text and "{x}" in text and ("{y}" in text or "{-y}" in text):
            return OrthoSource(text, str(xyz_description(text, XYZ_DEFAULT_ZMAX)), _public(text), True)
        query = {k.lower(): v for k, v in parse_qs(urlsplit(text).query).items()}
        service = (query.get("service") or [""])[0].upper()
        if service == "WMTS" or urlsplit(text).path.lower().endswith("wmtscapabilities.xml"):
            return OrthoSource(text, f"WMTS:{text}", _public(text), True)
        if service == "WMS":
            return OrthoSource(text, f"WMS:{text}", _public(text), True)
        return OrthoSource(text, f"/vsicurl/{text}", _public(text), True)
    for prefix in ("WMTS:", "WMS:", "/vsicurl/", "/vsis3/", "/vsigs/", "/vsiaz/", "/vsicurl?"):
        if text.startswith(prefix):
            return OrthoSource(text, text, _public(text[len(prefix) :]) or text, True)
    remote = text.lstrip().startswith("<GDAL_WMS")
    return OrthoSource(text, text, "a GDAL WMS description" if remote else text, remote)


def _qgis_xyz_uri(text: str) -> tuple[str, int] | None:
    """(template URL, zmax) of a QGIS XYZ layer URI (``type=xyz&url=...&zmax=...``), else None."""
    if not text.startswith("type=xyz"):
        return None
    fields = dict(part.split("=", 1) for part in text.split("&") if "=" in part)
    url = unquote(fields.get("url", ""))
    zmax = int(fields.get("zmax", XYZ_DEFAULT_ZMAX))
    return url, zmax


def _public(url: str) -> str:
    """``url`` without a user name and password (messages never show credentials)."""
    parts = urlsplit(url)
    if parts.username or parts.password:
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()
    return url


def _no_credentials(text: str) -> str:
    """``text`` (a URL or a GDAL name holding URLs) without the ``user:password@`` of any URL in it."""
    return re.sub(r"(://)[^/@\s]+@", r"\1", text)


def xyz_description(url: str, zmax: int, folder: Path | None = None) -> Path:
    """A GDAL WMS description (XML file in ``folder``, default the cache folder) of the XYZ template ``url``:
    Web Mercator, 256-pixel tiles, levels 0..``zmax``; tiles the server does not have (HTTP 204, 404) are
    transparent. The file's name is a digest of the template, so each run reuses the same one."""
    template = (
        url.replace("{z}", "${z}").replace("{x}", "${x}").replace("{-y}", "${y}").replace("{y}", "${y}")
    )
    y_origin = "bottom" if "{-y}" in url else "top"
    template = template.replace("&", "&amp;")
    half = f"{WEB_MERCATOR_HALF_M:.9f}"
    xml = f"""<GDAL_WMS>
  <Service name="TMS"><ServerUrl>{template}</ServerUrl></Service>
  <DataWindow>
    <UpperLeftX>-{half}</UpperLeftX><UpperLeftY>{half}</UpperLeftY>
    <LowerRightX>{half}</LowerRightX><LowerRightY>-{half}</LowerRightY>
    <TileLevel>{int(zmax)}</TileLevel><TileCountX>1</TileCountX><TileCountY>1</TileCountY>
    <YOrigin>{y_origin}</YOrigin>
  </DataWindow>
  <Projection>EPSG:3857</Projection>
  <BlockSizeX>256</BlockSizeX><BlockSizeY>256</BlockSizeY>
  <BandsCount>4</BandsCount>
  <ZeroBlockHttpCodes>204,404</ZeroBlockHttpCodes>
</GDAL_WMS>
"""
    folder = folder or cache_folder() / "services"
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(xml.encode()).hexdigest()[:16]
    path = folder / f"xyz-{digest}.xml"
    if not path.is_file() or path.read_text(encoding="utf-8") != xml:
        _write_atomically(path, xml.encode())
    return path


# ------------------------------------------------------------------------------------------- HTTP
def http_options() -> dict[str, str]:
    """GDAL config options for reading over HTTP: :data:`HTTP_DEFAULTS` unless the environment sets them."""
    return {key: os.environ.get(key, value) for key, value in HTTP_DEFAULTS.items()}


@contextmanager
def gdal_http_env():
    """A rasterio environment with :func:`http_options` (retries with back-off, timeouts)."""
    with rasterio.Env(**http_options()):
        yield


def fetch_failure(source: OrthoSource, exc: BaseException) -> str | None:
    """A message naming the service and what went wrong (HTTP status, timeout) when ``exc`` (or one of its
    causes) is a failed HTTP request; None when it is not an HTTP failure."""
    text = _error_chain(exc)
    status = _STATUS.search(text)
    if status and int(status.group(1)) >= 400:
        code = int(status.group(1))
        what = _STATUS_WORDS.get(code, f"answered HTTP {code}")
        retries = http_options()["GDAL_HTTP_MAX_RETRY"]
        tail = f" (after {retries} retries)" if code >= 500 else ""
        return f"the orthophoto service {source.service} {what}{tail}"
    if _TIMEOUT.search(text):
        seconds = http_options()["GDAL_HTTP_TIMEOUT"]
        return (
            f"the orthophoto service {source.service} did not answer in time (timeout {seconds} s, "
            f"GDAL_HTTP_TIMEOUT; {http_options()['GDAL_HTTP_MAX_RETRY']} retries)"
        )
    if source.remote and re.search(r"could not resolve|connection refused|couldn't connect", text, re.I):
        return f"the orthophoto service {source.service} cannot be reached ({_first_line(text)})"
    return None


def _error_chain(exc: BaseException | None) -> str:
    parts = []
    seen = 0
    while exc is not None and seen < 10:
        parts.append(str(exc))
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return "\n".join(parts)


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no detail"


# ------------------------------------------------------------------------------------------- cache
def cache_folder() -> Path:
    """The tile cache folder: ``LOC2_TILE_CACHE`` or ``$XDG_CACHE_HOME/loc2/tiles`` (``~/.cache/loc2/tiles``)."""
    if os.environ.get("LOC2_TILE_CACHE"):
        return Path(os.environ["LOC2_TILE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "loc2" / "tiles"


def cache_limit_bytes() -> int:
    """The window cache's size bound in bytes (``LOC2_TILE_CACHE_MB``, default :data:`CACHE_DEFAULT_MB`)."""
    try:
        megabytes = float(os.environ.get("LOC2_TILE_CACHE_MB", CACHE_DEFAULT_MB))
    except ValueError:
        megabytes = CACHE_DEFAULT_MB
    return max(0, int(megabytes * 1024 * 1024))


class WindowCache:
    """Windows read from a remote source, kept on disk (``.npz``: the values and the mask) under a key of the
    source and the read; the least recently used files go when the folder exceeds its size bound."""

    def __init__(self, folder: Path | None = None, limit_bytes: int | None = None) -> None:
        self.folder = (folder or cache_folder()) / "windows"
        self.limit_bytes = cache_limit_bytes() if limit_bytes is None else limit_bytes

    @staticmethod
    def key(source: OrthoSource, *parts: object) -> str:
        """A digest of the source (its GDAL name, without credentials) and the read's parameters."""
        text = repr((_public(source.gdal_path), *parts))
        return hashlib.sha256(text.encode()).hexdigest()

    def get(self, key: str) -> tuple[np.ndarray, np.ndarray] | None:
        """(values, mask) stored under ``key``, or None."""
        if self.limit_bytes <= 0:
            return None
        path = self.folder / key[:2] / f"{key}.npz"
        try:
            with np.load(path, allow_pickle=False) as stored:
                values, mask = stored["values"], stored["mask"]
            os.utime(path)  # recently used
            return values, mask
        except (OSError, KeyError, ValueError):
            return None

    def put(self, key: str, values: np.ndarray, mask: np.ndarray) -> None:
        """Store (values, mask) under ``key``, then trim the folder to its size bound."""
        if self.limit_bytes <= 0:
            return
        path = self.folder / key[:2] / f"{key}.npz"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as fh:
                np.savez(fh, values=values, mask=mask)
            os.replace(fh.name, path)
            self.trim()
        except OSError:
            return  # a cache that cannot be written only costs time

    def trim(self) -> None:
        """Remove the least recently used files until the folder is within its size bound."""
        _trim(self.folder.glob("*/*.npz"), self.limit_bytes)


class KeptHandles:
    """The open read handles of one remote source, one per thread, kept for up to ``reads`` reads and until
    :meth:`close`: opening a WMTS or WMS again fetches its capabilities again, and a COG its header, once per
    window read. Closing a handle drops the tiles GDAL keeps for it, so ``reads`` bounds that memory (a window
    is about 0.7 MB of tiles). A failed read drops the thread's handle, so the next read opens it afresh. One
    per thread because a GDAL dataset must not be read by two threads at once."""

    def __init__(self, reads: int = KEPT_HANDLE_READS) -> None:
        self.reads = reads
        self._handles: dict[int, tuple[DatasetReader, int]] = {}  # thread → (handle, reads so far)
        self._lock = threading.Lock()

    @contextmanager
    def reader(self, open_dataset: Callable[[], DatasetReader]) -> Iterator[DatasetReader]:
        """This thread's handle, opened by ``open_dataset`` when it has none."""
        thread = threading.get_ident()
        with self._lock:
            dataset, count = self._handles.pop(thread, (None, 0))
        if dataset is None:
            dataset, count = open_dataset(), 0
        try:
            yield dataset
        except BaseException:
            dataset.close()
            raise
        if count + 1 >= self.reads:
            dataset.close()
        else:
            with self._lock:
                self._handles[thread] = (dataset, count + 1)

    def adopt(self, dataset: DatasetReader) -> None:
        """Keep ``dataset``, just opened by this thread (to read the header), as this thread's handle."""
        with self._lock:
            self._handles[threading.get_ident()] = (dataset, 0)

    def close(self) -> None:
        with self._lock:
            handles, self._handles = list(self._handles.values()), {}
        for dataset, _ in handles:
            dataset.close()


def header_max_age_s() -> float:
    """Seconds a cached header stays in use (``LOC2_HEADER_CACHE_HOURS``, default :data:`HEADER_MAX_AGE_H`)."""
    try:
        hours = float(os.environ.get("LOC2_HEADER_CACHE_HOURS", HEADER_MAX_AGE_H))
    except ValueError:
        hours = HEADER_MAX_AGE_H
    return max(0.0, hours * 3600.0)


class HeaderCache:
    """Remote sources' :class:`RasterHeader` as JSON files keyed by a digest of the URL (see the module
    docstring: an entry expires :func:`header_max_age_s` after it was fetched; size-bounded, LRU)."""

    def __init__(self, folder: Path | None = None, max_age_s: float | None = None) -> None:
        self.folder = (folder or cache_folder()) / "headers"
        self.max_age_s = header_max_age_s() if max_age_s is None else max_age_s

    def _path(self, source: OrthoSource) -> Path:
        digest = hashlib.sha256(_no_credentials(source.gdal_path).encode()).hexdigest()
        return self.folder / f"{digest}.json"

    def get(self, source: OrthoSource) -> RasterHeader | None:
        """The header of ``source`` fetched less than ``max_age_s`` ago, or None."""
        if self.max_age_s <= 0:
            return None
        path = self._path(source)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if not 0 <= time.time() - float(entry["fetched"]) < self.max_age_s:
                return None
            header = RasterHeader.from_json(entry["header"])
            os.utime(path)  # recently used (the age is the stored fetch time, not the file's)
            return header
        except (OSError, KeyError, TypeError, ValueError):
            return None

    def put(self, source: OrthoSource, header: RasterHeader) -> None:
        """Store the header of ``source`` (fetched now), then trim the folder to its size bound."""
        if self.max_age_s <= 0:
            return
        entry = json.dumps(
            {"url": _no_credentials(source.gdal_path), "fetched": time.time(), "header": header.to_json()}
        )
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _write_atomically(self._path(source), entry.encode())
            _trim(self.folder.glob("*.json"), HEADER_CACHE_MAX_BYTES)
        except OSError:
            return  # a cache that cannot be written only costs time


def _trim(paths, limit_bytes: int) -> None:
    """Remove the least recently used (oldest modification time) of ``paths`` until they total at most
    ``limit_bytes``."""
    files = []
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            continue
        files.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= limit_bytes:
            break
        path.unlink(missing_ok=True)
        total -= size


def _write_atomically(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as fh:
        fh.write(data)
    os.replace(fh.name, path)
