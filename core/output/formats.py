"""The files a job's results are written to, and reading them back.

Every format carries the same attribute schema (``tables.py``: ``POSE_FIELDS`` etc.). The files:

* GeoPackage (``.gpkg``, the default): one file, one layer per table (``poses``, ``priors``, ``inliers``,
  ``outlines``, ``shifts``, optional ``matches``). Other layers already in the file are left alone.
* ESRI Shapefile (``.shp``): one set of files per layer, ``<stem>_poses.shp`` … with ``.prj`` and a ``.cpg``
  (UTF-8).
* GeoJSON (``.geojson`` / ``.json``): one file per layer, ``<stem>_poses.geojson`` …, in the ortho CRS
  (written as a ``crs`` member, which QGIS and GDAL read), so the CRS must have an EPSG code.
* CSV (``.csv``): the poses table only, x/y in the ortho CRS and lon/lat in WGS84, with a ``.csvt`` (field
  types) and a ``.prj`` (ortho CRS, WKT) beside it that GDAL and QGIS's OGR provider read.

Empty strings are stored as NULL (a shapefile cannot tell them apart); :func:`read_layer` gives "" back.
Float precision: GeoPackage and CSV keep doubles exactly; a shapefile keeps 15 decimals; GDAL's GeoJSON
writer may drop the 16th-17th significant digit.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
from shapely.geometry import Point

from ..errors import ExportError
from ..types import FORMAT_CSV, FORMAT_GEOJSON, FORMAT_GPKG, FORMAT_SHP, FORMATS, LAYER_POSES
from .tables import LAYER_SCHEMAS, POSE_FIELDS, Fields, LayerTable, layer_names

DEFAULT_FORMAT = FORMAT_GPKG
DRIVERS = {FORMAT_GPKG: "GPKG", FORMAT_SHP: "ESRI Shapefile", FORMAT_GEOJSON: "GeoJSON"}
_SUFFIXES = {FORMAT_GPKG: ".gpkg", FORMAT_SHP: ".shp", FORMAT_GEOJSON: ".geojson", FORMAT_CSV: ".csv"}
_SUFFIX_FORMATS = {
    ".gpkg": FORMAT_GPKG,
    ".shp": FORMAT_SHP,
    ".geojson": FORMAT_GEOJSON,
    ".json": FORMAT_GEOJSON,
    ".csv": FORMAT_CSV,
}
_ALIASES = {
    "gpkg": FORMAT_GPKG,
    "geopackage": FORMAT_GPKG,
    "shp": FORMAT_SHP,
    "shapefile": FORMAT_SHP,
    "esri shapefile": FORMAT_SHP,
    "geojson": FORMAT_GEOJSON,
    "json": FORMAT_GEOJSON,
    "csv": FORMAT_CSV,
}
_SHP_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx", ".qmd")
_CSV_SIDECARS = (".csvt", ".prj")
_CSV_OGR_OPTIONS = "|option:X_POSSIBLE_NAMES=x|option:Y_POSSIBLE_NAMES=y"
IO_ERRORS = (OSError, RuntimeError, ValueError)  # pyogrio's errors derive from RuntimeError


def infer_format(path: str | os.PathLike, fmt: str | None = None) -> str:
    """The format key (``gpkg`` | ``shp`` | ``geojson`` | ``csv``) from ``fmt`` or the path's suffix.

    A path without a suffix defaults to GeoPackage; an unknown format or suffix raises ExportError.
    """
    if fmt:
        key = _ALIASES.get(str(fmt).strip().lower())
        if key is None:
            raise ExportError(f"{path}: unknown output format {fmt!r} (use one of {', '.join(FORMATS)})")
        return key
    suffix = Path(path).suffix.lower()
    if not suffix:
        return DEFAULT_FORMAT
    if suffix not in _SUFFIX_FORMATS:
        known = ", ".join(sorted(_SUFFIX_FORMATS))
        raise ExportError(f"{path}: cannot tell the output format from the suffix {suffix!r} ({known})")
    return _SUFFIX_FORMATS[suffix]


@dataclass(frozen=True)
class LayerTarget:
    """Where one layer is stored: a file and, inside a GeoPackage, the layer name."""

    name: str
    path: Path
    layer: str | None = None

    @property
    def uri(self) -> str:
        """An OGR data source string for QGIS's ``ogr`` provider: ``file.gpkg|layername=poses`` for
        GeoPackage layers, ``file.csv|option:X_POSSIBLE_NAMES=x|option:Y_POSSIBLE_NAMES=y`` for the CSV
        (points at x, y in the CRS of the ``.prj`` beside it), else the file path."""
        if self.layer:
            return f"{self.path}|layername={self.layer}"
        if self.path.suffix.lower() == ".csv":
            return f"{self.path}{_CSV_OGR_OPTIONS}"
        return str(self.path)


def normalised_path(path: str | os.PathLike, fmt: str) -> Path:
    p = Path(path)
    if p.suffix.lower() not in _SUFFIX_FORMATS or _SUFFIX_FORMATS[p.suffix.lower()] != fmt:
        p = p.with_name(p.name + _SUFFIXES[fmt])
    return p


def output_layers(path: str | os.PathLike, fmt: str | None = None, include_matches: bool = False):
    """The :class:`LayerTarget` of every layer a writer for ``path`` produces, by layer name."""
    key = infer_format(path, fmt)
    base = normalised_path(path, key)
    names = layer_names(include_matches)
    if key == FORMAT_CSV:
        return {LAYER_POSES: LayerTarget(LAYER_POSES, base)}
    if key == FORMAT_GPKG:
        return {n: LayerTarget(n, base, n) for n in names}
    return {n: LayerTarget(n, base.with_name(f"{base.stem}_{n}{base.suffix}")) for n in names}


def _column(values: list[Any], kind: str) -> pd.Series:
    if kind == "str":
        return pd.Series([None if v is None or v == "" else str(v) for v in values], dtype=object)
    if kind == "int":
        return pd.Series([0 if v is None else int(v) for v in values], dtype="int64")
    return pd.Series([math.nan if v is None else float(v) for v in values], dtype="float64")


def table_to_frame(table: LayerTable, crs: Any) -> gpd.GeoDataFrame:
    """A GeoDataFrame with the table's exact schema (str → object, int → int64, float → float64)."""
    data = {name: _column([attrs.get(name) for _, attrs in table.rows], kind) for name, kind in table.fields}
    geometry = gpd.GeoSeries([g for g, _ in table.rows], crs=crs)
    return gpd.GeoDataFrame(data, geometry=geometry, crs=crs)


def normalise_frame(frame: pd.DataFrame, fields: Fields) -> pd.DataFrame:
    """Schema columns first with their kinds restored (NULL strings → "", ints as int64).

    An empty frame gets every schema column (an empty GeoJSON file keeps no field list).
    """
    frame = frame.copy()
    for name, kind in fields:
        if name not in frame.columns:
            if len(frame) == 0:
                frame[name] = _column([], kind)
            continue
        if kind == "str":
            frame[name] = pd.Series(
                ["" if _is_null(v) else str(v) for v in frame[name]],
                index=frame.index,
                dtype=object,
            )
        elif kind == "int":
            frame[name] = pd.to_numeric(frame[name]).fillna(0).astype("int64")
        else:
            frame[name] = pd.to_numeric(frame[name]).astype("float64")
    ordered = [n for n, _ in fields if n in frame.columns]
    return frame[ordered + [c for c in frame.columns if c not in ordered]]


def _is_null(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def sidecars(path: Path, fmt: str) -> list[Path]:
    if fmt == FORMAT_SHP:
        return [path.with_suffix(s) for s in _SHP_SIDECARS]
    if fmt == FORMAT_CSV:
        return [path] + [path.with_suffix(s) for s in _CSV_SIDECARS]
    return [path]


def layer_exists(target: LayerTarget) -> bool:
    if not target.path.exists():
        return False
    if target.layer is None:
        return True
    try:
        return target.layer in [str(n) for n, _ in pyogrio.list_layers(target.path)]
    except IO_ERRORS:
        return False


# -- reading ----------------------------------------------------------------------------------------------


# The columns a poses CSV must have to be read back (the rest are filled in when missing).
_CSV_REQUIRED = ("photo", "status", "x", "y", "prior_x", "prior_y")


def _read_csv_poses(path: Path) -> gpd.GeoDataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise ExportError(f"cannot read {path}: {exc}") from exc
    missing = [n for n in _CSV_REQUIRED if n not in frame.columns]
    if missing:
        raise ExportError(f"{path}: not a Loc2 results CSV (it lacks the columns {', '.join(missing)})")
    for name, kind in POSE_FIELDS:
        if name in frame.columns and kind != "str":
            try:  # exact, unlike pandas
                frame[name] = [float(v) if v.strip() else math.nan for v in frame[name]]
            except ValueError as exc:
                raise ExportError(f"{path}: not a Loc2 results CSV (column {name}: {exc})") from None
    frame = normalise_frame(frame, POSE_FIELDS)
    geoms = []
    for row in frame.itertuples(index=False):
        if np.isfinite(row.x) and np.isfinite(row.y):
            geoms.append(Point(row.x, row.y))
        elif np.isfinite(row.prior_x) and np.isfinite(row.prior_y):
            geoms.append(Point(row.prior_x, row.prior_y))
        else:
            geoms.append(None)
    prj = path.with_suffix(".prj")
    crs = pyproj.CRS.from_user_input(prj.read_text()) if prj.exists() else None
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)


def read_layer(path: str | os.PathLike, layer: str = LAYER_POSES, fmt: str | None = None) -> gpd.GeoDataFrame:
    """One result layer as a GeoDataFrame with the schema's kinds restored (NULL strings as "").

    ``path`` is the path given to the writer (the layer file is found from it), or for Shapefile/GeoJSON
    the layer's own file. CSV outputs hold only ``poses``.
    """
    if layer not in LAYER_SCHEMAS:
        raise ExportError(f"{path}: unknown result layer {layer!r}")
    key = infer_format(path, fmt)
    if key == FORMAT_CSV and layer != LAYER_POSES:
        raise ExportError(f"{path}: a CSV output holds only the poses layer, not {layer!r}")
    target = output_layers(path, key, include_matches=True)[layer]
    file_path, inner = target.path, target.layer
    if not file_path.exists() and Path(path).is_file() and key in (FORMAT_SHP, FORMAT_GEOJSON):
        file_path = Path(path)  # the layer's own file was given
    if not file_path.exists():
        raise ExportError(f"cannot read {file_path}: no such file")
    if key == FORMAT_CSV:
        return _read_csv_poses(file_path)
    try:
        frame = pyogrio.read_dataframe(file_path, layer=inner)
    except IO_ERRORS as exc:
        raise ExportError(f"cannot read {file_path}: {exc}") from exc
    return normalise_frame(frame, LAYER_SCHEMAS[layer][1])


def read_poses(path: str | os.PathLike, fmt: str | None = None) -> gpd.GeoDataFrame:
    """The poses layer of an output (any format) as a GeoDataFrame."""
    return read_layer(path, LAYER_POSES, fmt)
