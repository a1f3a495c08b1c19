"""Prior positions (and headings) of the photos to localize: from EXIF, a CSV file or a point layer.

The one place photo items are made from files: :func:`collect_items` reads any :class:`PhotoSource` (the
command line's and the QGIS plugin's, whose Processing algorithm writes a point layer to a GeoPackage for
:func:`items_from_layer`). Every source yields :class:`PhotoItem` s with WGS84 ``lon``/``lat`` degrees (``None`` when the source has
no position for that photo, so the caller can supply one or report the photo as failed) and an optional
heading in degrees clockwise from north.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from pathlib import Path

import pyproj

from ..errors import PhotoError, PriorError
from ..types import IMAGE_SUFFIXES, PhotoItem, PhotoSource
from .photos import read_photo

# Column names accepted in a CSV header (case-insensitive), first the canonical one.
CSV_COLUMNS = {
    "photo": ("photo", "path", "file", "filename", "image"),
    "lon": ("lon", "longitude", "lng", "x", "easting"),
    "lat": ("lat", "latitude", "y", "northing"),
    "heading": ("heading", "direction", "heading_deg", "yaw", "bearing"),
    "crs": ("crs", "epsg", "srs"),
    "uncertainty": ("uncertainty", "uncertainty_m", "accuracy", "horizontal_error"),
}
_MAX_LISTED_ERRORS = 10


def collect_items(source: PhotoSource) -> tuple[list[PhotoItem], list[tuple[Path, str]]]:
    """The photos of a source and the ones that could not be read, as ``(path, message)``.

    Photo files and folders give their EXIF priors; a ``.csv``/``.txt`` priors file is read as CSV, any
    other as a point layer.
    """
    if source.items:
        return list(source.items), []
    if source.images:
        return items_from_images(source.images, recursive=source.recursive)
    path = Path(str(source.priors_file))
    if path.suffix.lower() in (".csv", ".txt"):
        return items_from_csv(path), []
    items = items_from_layer(
        path, photo_field=source.photo_field, heading_field=source.heading_field, base_dir=source.base_dir
    )
    return items, []


# ------------------------------------------------------------------------------------------ images
def expand_image_paths(paths: Iterable[str | Path], recursive: bool = False) -> list[Path]:
    """Files given as they are; folders expanded to their image files (by suffix), sorted by name."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            pattern = "**/*" if recursive else "*"
            found = [f for f in p.glob(pattern) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
            out.extend(sorted(found))
        else:
            out.append(p)
    return out


def items_from_images(
    paths: Iterable[str | Path], recursive: bool = False, verify: bool = True
) -> tuple[list[PhotoItem], list[tuple[Path, str]]]:
    """Items from the EXIF of photos (files, or folders of images; ``recursive`` descends into sub-folders).

    Returns ``(items, errors)``. A readable photo always becomes an item — without GPS its ``lon``/``lat``
    are ``None`` so the caller may supply a prior (or report it). A photo that cannot be read (missing,
    empty, corrupt, not an image) goes to ``errors`` as ``(path, message)``. An empty folder adds an error.
    ``verify`` decodes each photo (JPEG at 1/8 scale, ~0.1–0.4 s for 12–32 MP) to catch truncated files
    now; with ``verify=False`` only headers are read and broken pixels surface when the photo is loaded.
    """
    items: list[PhotoItem] = []
    errors: list[tuple[Path, str]] = []
    for p in paths:
        p = Path(p)
        files = expand_image_paths([p], recursive)
        if p.is_dir() and not files:
            errors.append((p, f"{p}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})"))
        for f in files:
            try:
                photo = read_photo(f, verify=verify)
            except PhotoError as exc:
                errors.append((f, str(exc)))
                continue
            items.append(
                PhotoItem(
                    path=f,
                    lon=photo.lon,
                    lat=photo.lat,
                    heading_deg=photo.heading_deg,
                    uncertainty_m=photo.horizontal_error_m,
                    heading_ref=photo.heading_ref,
                )
            )
    return items, errors


# --------------------------------------------------------------------------------------------- CSV
def _optional_float(text: str | None, what: str) -> float | None:
    """Blank → ``None``; otherwise a finite float (a comma as decimal separator is accepted)."""
    if text is None or not text.strip():
        return None
    try:
        value = float(text.strip().replace(",", "."))
    except ValueError:
        raise ValueError(f"{what} {text.strip()!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{what} {text.strip()!r} is not finite")
    return value


def _header_map(header: list[str]) -> dict[str, int]:
    """Canonical column name → index, from the aliases in :data:`CSV_COLUMNS`."""
    lowered = [h.strip().lower() for h in header]
    found: dict[str, int] = {}
    for key, aliases in CSV_COLUMNS.items():
        for alias in aliases:
            if alias in lowered:
                found[key] = lowered.index(alias)
                break
    return found


def _check_lonlat(lon: float, lat: float) -> None:
    if not (-180.0 <= lon <= 180.0 and -90.0 <= lat <= 90.0):
        raise ValueError(f"lon/lat ({lon}, {lat}) out of range (give a crs column for projected coordinates)")


class _CrsCache:
    """pyproj transformers to WGS84 lon/lat, one per CRS string."""

    def __init__(self) -> None:
        self._cache: dict[str, pyproj.Transformer] = {}

    def to_lonlat(self, crs_text: str, x: float, y: float) -> tuple[float, float]:
        key = crs_text.strip()
        if key not in self._cache:
            try:
                crs = pyproj.CRS.from_user_input(int(key) if key.isdigit() else key)
            except pyproj.exceptions.CRSError:
                raise ValueError(f"unknown CRS {key!r}") from None
            try:
                self._cache[key] = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)
            except pyproj.exceptions.ProjError:
                raise ValueError(f"the CRS {key!r} cannot be converted to longitude/latitude") from None
        try:
            lon, lat = self._cache[key].transform(x, y)
        except pyproj.exceptions.ProjError:
            raise ValueError(f"({x}, {y}) is not a valid position in {key}") from None
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise ValueError(f"({x}, {y}) is not a valid position in {key}")
        return float(lon), float(lat)


def items_from_csv(path: str | Path) -> list[PhotoItem]:
    """Items from a CSV file with header ``photo,lon,lat[,heading][,crs][,uncertainty]``.

    * ``photo``: the photo's path, relative paths resolved against the CSV's folder.
    * ``lon``, ``lat``: WGS84 degrees; with a non-blank ``crs`` cell (``EPSG:2056``, ``2056``, WKT, PROJ
      string) they are that CRS's x (easting) and y (northing), converted with pyproj. Both blank: no prior.
    * ``heading``: degrees clockwise from true north (optional, blank = unknown).
    * ``uncertainty``: prior horizontal uncertainty in metres (optional).

    Comma or semicolon delimited, UTF-8 (a BOM is fine). Aliases are accepted for column names (see
    :data:`CSV_COLUMNS`). Raises :class:`PriorError` naming the file and the line numbers of bad rows.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise PriorError(f"{path}: cannot be read ({exc})") from exc
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise PriorError(f"{path}: the file is empty (expected a header photo,lon,lat[,heading][,crs])")
    delimiter = ";" if lines[0].count(";") > lines[0].count(",") else ","
    rows = list(csv.reader(lines, delimiter=delimiter))
    columns = _header_map(rows[0])
    missing = [c for c in ("photo", "lon", "lat") if c not in columns]
    if missing:
        raise PriorError(
            f"{path}: the header {rows[0]} lacks column(s) {', '.join(missing)} "
            "(expected photo,lon,lat[,heading][,crs])"
        )
    crs_cache = _CrsCache()
    items: list[PhotoItem] = []
    problems: list[str] = []
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            items.append(_item_from_row(row, columns, path.parent, crs_cache))
        except ValueError as exc:
            problems.append(f"line {line_no}: {exc}")
    if problems:
        listed = "; ".join(problems[:_MAX_LISTED_ERRORS])
        more = (
            f" (and {len(problems) - _MAX_LISTED_ERRORS} more)" if len(problems) > _MAX_LISTED_ERRORS else ""
        )
        raise PriorError(f"{path}: {len(problems)} bad row(s): {listed}{more}")
    if not items:
        raise PriorError(f"{path}: no photos listed")
    return items


def _item_from_row(row: list[str], columns: dict[str, int], folder: Path, crs_cache: _CrsCache) -> PhotoItem:
    def cell(key: str) -> str | None:
        i = columns.get(key)
        return row[i] if i is not None and i < len(row) else None

    photo = (cell("photo") or "").strip()
    if not photo:
        raise ValueError("the photo cell is empty")
    x = _optional_float(cell("lon"), "lon")
    y = _optional_float(cell("lat"), "lat")
    if (x is None) != (y is None):
        raise ValueError("give both lon and lat, or neither")
    crs_text = (cell("crs") or "").strip()
    lon = lat = None
    if x is not None and y is not None:
        lon, lat = crs_cache.to_lonlat(crs_text, x, y) if crs_text else (x, y)
        _check_lonlat(lon, lat)
    heading = _optional_float(cell("heading"), "heading")
    uncertainty = _optional_float(cell("uncertainty"), "uncertainty")
    if uncertainty is not None and uncertainty < 0:
        raise ValueError(f"uncertainty {uncertainty} is negative")
    return _item(photo, folder, lon, lat, heading, uncertainty)


# ------------------------------------------------------------------------------------------- layers
def items_from_layer(
    path: str | Path,
    photo_field: str = "photo",
    heading_field: str | None = "direction",
    layer: str | int | None = None,
    uncertainty_field: str | None = None,
    base_dir: str | Path | None = None,
) -> list[PhotoItem]:
    """Items from a point layer file (GeoPackage, Shapefile, GeoJSON, ...) read with geopandas/pyogrio.

    Points in any CRS are converted to WGS84 lon/lat; a layer without CRS is taken as lon/lat if its
    coordinates fit, else rejected. ``photo_field`` holds the photo paths (relative ones resolved against
    ``base_dir``, by default the layer file's folder); ``heading_field`` degrees clockwise from north (absent field or null → no heading).
    Matches the output of QGIS's "Import geotagged photos" (fields photo, direction, altitude, timestamp,
    EPSG:4326). A feature with an empty geometry has no prior (lon/lat ``None``). Raises :class:`PriorError`.
    """
    import geopandas  # imported here: geopandas is slow to import and only this function needs it

    path = Path(path)
    try:
        frame = geopandas.read_file(path, layer=layer, engine="pyogrio")
    except Exception as exc:  # pyogrio raises its own DataSourceError, OSError, ValueError...
        raise PriorError(f"{path}: cannot be read as a vector layer ({exc})") from exc
    if photo_field not in frame.columns:
        fields = [c for c in frame.columns if c != frame.geometry.name]
        raise PriorError(f"{path}: has no field {photo_field!r} (fields: {', '.join(fields)})")
    if len(frame) == 0:
        raise PriorError(f"{path}: the layer has no features")
    frame = _to_wgs84(frame, path)
    has_heading = heading_field is not None and heading_field in frame.columns
    has_uncertainty = uncertainty_field is not None and uncertainty_field in frame.columns
    items: list[PhotoItem] = []
    problems: list[str] = []
    for n, (_, feature) in enumerate(frame.iterrows(), start=1):
        try:
            items.append(
                _item_from_feature(
                    feature,
                    frame.geometry.name,
                    photo_field,
                    heading_field if has_heading else None,
                    uncertainty_field if has_uncertainty else None,
                    Path(base_dir) if base_dir is not None else path.parent,
                )
            )
        except ValueError as exc:
            problems.append(f"feature {n}: {exc}")
    if problems:
        listed = "; ".join(problems[:_MAX_LISTED_ERRORS])
        raise PriorError(f"{path}: {len(problems)} bad feature(s): {listed}")
    return items


def _to_wgs84(frame, path: Path):
    """The frame with its geometries in EPSG:4326 (lon, lat)."""
    if frame.crs is None:
        west, south, east, north = (float(v) for v in frame.total_bounds)
        if -180 <= west <= east <= 180 and -90 <= south <= north <= 90:
            return frame.set_crs(4326)
        raise PriorError(f"{path}: the layer has no CRS and its coordinates are not longitudes/latitudes")
    if frame.crs.to_epsg() == 4326:
        return frame
    try:
        return frame.to_crs(4326)
    except Exception as exc:
        raise PriorError(f"{path}: cannot convert the layer's CRS to WGS84 ({exc})") from exc


def _item(photo, folder: Path, lon, lat, heading: float | None, uncertainty: float | None) -> PhotoItem:
    """A PhotoItem with the photo path resolved against ``folder`` and the heading wrapped to [0, 360)."""
    photo_path = Path(photo).expanduser()
    if not photo_path.is_absolute():
        photo_path = folder / photo_path
    return PhotoItem(
        path=photo_path,
        lon=lon,
        lat=lat,
        heading_deg=heading % 360.0 if heading is not None else None,
        uncertainty_m=uncertainty,
    )


def _is_null(value) -> bool:
    if value is None:
        return True
    try:
        return bool(value != value)  # NaN / NaT
    except (TypeError, ValueError):
        return False


def _item_from_feature(feature, geometry_name, photo_field, heading_field, uncertainty_field, folder: Path):
    photo = feature[photo_field]
    if _is_null(photo) or not str(photo).strip():
        raise ValueError(f"the {photo_field!r} field is empty")
    geom = feature[geometry_name]
    lon = lat = None
    if geom is not None and not geom.is_empty:
        if geom.geom_type == "MultiPoint" and len(geom.geoms) == 1:
            geom = geom.geoms[0]
        if geom.geom_type != "Point":
            raise ValueError(f"geometry is a {geom.geom_type}, not a point")
        lon, lat = float(geom.x), float(geom.y)
        _check_lonlat(lon, lat)
    heading = None
    if heading_field is not None and not _is_null(feature[heading_field]):
        heading = _optional_float(str(feature[heading_field]), heading_field)
    uncertainty = None
    if uncertainty_field is not None and not _is_null(feature[uncertainty_field]):
        uncertainty = _optional_float(str(feature[uncertainty_field]), uncertainty_field)
    return _item(str(photo).strip(), folder, lon, lat, heading, uncertainty)
