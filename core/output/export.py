"""Writing result layers to GeoPackage, ESRI Shapefile, GeoJSON and CSV, one photo at a time (the files:
``formats.py``).

:class:`ResultWriter` adds each photo's rows as soon as the photo is done: GeoPackage (SQLite
transactions) and Shapefile are appended in place; GeoJSON cannot be appended safely in place, so the file is
copied, appended and atomically swapped in (``os.replace``); CSV lines are appended and flushed. The poses row
is written last, so a photo counts as done (:meth:`ResultWriter.done_photos`) only once all its rows are.
"""

from __future__ import annotations

import csv
import math
import os
import shutil
import sqlite3
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pyogrio
import pyproj

from ..errors import ExportError
from ..types import (
    FORMAT_CSV,
    FORMAT_GEOJSON,
    FORMAT_GPKG,
    FORMAT_SHP,
    LAYER_MATCHES,
    LAYER_POSES,
    LAYERS,
    MODE_OVERWRITE,
    MODE_REFUSE,
    MODES,
)
from .formats import (
    DRIVERS,
    IO_ERRORS,
    LayerTarget,
    infer_format,
    layer_exists,
    normalised_path,
    output_layers,
    read_layer,
    sidecars,
    table_to_frame,
)
from .results import PhotoResult
from .tables import LATER_FIELDS, LAYER_SCHEMAS, Fields, LayerTable, layer_tables

# "Integer" (not "Integer64"): QGIS's delimited-text provider reads .csvt files too and rejects Integer64.
_CSVT_TYPES = {"str": '"String"', "int": '"Integer"', "float": '"Real"'}
# Written into new GeoPackages: GDAL ≥ 3.11 defaults to 1.4, which QGIS 3.22's GDAL 3.6 warns about.
_GPKG_VERSION = "1.3"
# Detail layers first, poses last: a photo is "done" only when every row of it is on disk.
_WRITE_ORDER = (*(n for n in LAYERS if n != LAYER_POSES), LAYER_POSES)


def _same_crs(a: pyproj.CRS, b: pyproj.CRS) -> bool:
    if a.equals(b, ignore_axis_order=True):
        return True
    epsg_a, epsg_b = a.to_epsg(), b.to_epsg()
    if epsg_a is not None and epsg_a == epsg_b:
        return True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return a.to_proj4() == b.to_proj4()


def _gpkg_delete_rows_not_in(path: Path, table: str, photos: set[str]) -> None:
    """Delete, in one SQLite transaction, the rows of a GeoPackage table whose ``photo`` is not in
    ``photos`` (the GeoPackage's own triggers keep its spatial index in step)."""
    con = sqlite3.connect(path, timeout=30.0)
    try:
        with con:
            con.execute("CREATE TEMP TABLE _loc2_done(photo TEXT PRIMARY KEY)")
            con.executemany("INSERT OR IGNORE INTO _loc2_done VALUES (?)", [(p,) for p in photos])
            if table not in LAYER_SCHEMAS:  # only our own layer names reach the statement
                raise ExportError(f"{path}: {table!r} is not a Loc2 result layer")
            where = "WHERE photo IS NULL OR photo NOT IN (SELECT photo FROM _loc2_done)"
            sql = f'DELETE FROM "{table}" {where}'  # nosec B608 - a fixed layer name of LAYER_SCHEMAS
            con.execute(sql)
    finally:
        con.close()


def _writable_folder(path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise ExportError(f"cannot write {path}: the folder {parent} does not exist")
    if not parent.is_dir():
        raise ExportError(f"cannot write {path}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {path}: the folder {parent} is not writable")
    if path.exists() and (path.is_dir() or not os.access(path, os.W_OK)):
        raise ExportError(f"cannot write {path}: it exists and is not a writable file")


class ResultWriter:
    """Writes :class:`PhotoResult` s to an output as they come (see the module docstring for the files).

    Args:
        path: output file (``.gpkg``, ``.shp``, ``.geojson``/``.json`` or ``.csv``; for Shapefile and
            GeoJSON the layer files are named ``<stem>_<layer><suffix>`` next to it).
        fmt: format key or name; inferred from the suffix when None.
        crs: the ortho CRS (anything ``pyproj.CRS.from_user_input`` takes: WKT, ``EPSG:xxxx``, CRS).
        include_matches: also write the ``matches`` layer.
        mode: ``refuse`` (default: raise ExportError when any output layer already exists),
            ``append`` (keep existing rows and add to them; schema and CRS must match) or
            ``overwrite`` (replace the existing output layers).

    Raises ExportError naming the path when the output cannot be written or is refused.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fmt: str | None = None,
        *,
        crs: Any,
        include_matches: bool = False,
        mode: str = MODE_REFUSE,
        defer_create: bool = False,
    ) -> None:
        if Path(path).is_dir():
            raise ExportError(
                f"{path} is a folder: name an output file in it, e.g. {Path(path) / 'results.gpkg'}"
            )
        self.format = infer_format(path, fmt)
        self.path = normalised_path(path, self.format)
        if mode not in MODES:
            raise ExportError(f"{self.path}: unknown write mode {mode!r} (use one of {', '.join(MODES)})")
        self.mode = mode
        self.include_matches = bool(include_matches)
        self.crs = self._parse_crs(crs)
        self.crs_wkt = self.crs.to_wkt()
        self._write_crs: Any = self.crs
        if self.format == FORMAT_GEOJSON:
            epsg = self.crs.to_epsg()
            if epsg is None:
                raise ExportError(
                    f"cannot write {self.path}: GeoJSON records a CRS only by its EPSG code and "
                    f"{self.crs.name!r} has none; choose GeoPackage or Shapefile"
                )
            self._write_crs = pyproj.CRS.from_epsg(epsg)
        self.targets: dict[str, LayerTarget] = output_layers(self.path, self.format, self.include_matches)
        for target in self.targets.values():
            _writable_folder(target.path)
        existing = self._existing_layers()
        if existing and mode == MODE_REFUSE:
            raise ExportError(
                f"{self.path} already holds results ({self._describe(existing)}); choose append (resume) "
                "or overwrite, or another output"
            )
        self._absent: dict[str, set[str]] = {}  # per layer: the LATER_FIELDS an older output lacks
        if existing and mode != MODE_OVERWRITE:
            self._check_compatible(existing)
        self._existing = existing
        if not defer_create:
            self.create_layers()

    def create_layers(self) -> None:
        """Make the output ready for :meth:`write`: replace it (overwrite), drop a killed run's rows that
        have no poses row (append), create the missing layers. Done on creation unless ``defer_create``
        (the job checks the output, loads the model, and only then touches the files)."""
        existing = self._existing
        if self.mode == MODE_OVERWRITE:
            self._remove_outputs()
            existing = {}
        elif existing:
            self._drop_unfinished_photos(existing)
        self._create_missing_layers(existing)
        self._existing = {}

    def _drop_unfinished_photos(self, existing: dict[str, LayerTarget]) -> None:
        """Delete detail rows of photos that have no poses row (a run killed between a photo's layers), so
        the resumed run writes each photo exactly once in every layer."""
        if LAYER_POSES not in existing:
            done: set[str] = set()
        else:
            done = self.done_photos()
        for name, target in existing.items():
            if name == LAYER_POSES or self.format == FORMAT_CSV:
                continue
            try:
                if self.format == FORMAT_GPKG:
                    _gpkg_delete_rows_not_in(target.path, target.layer or name, done)
                else:
                    self._rewrite_without(target, done)
            except (*IO_ERRORS, sqlite3.Error) as exc:
                raise ExportError(f"cannot resume {target.uri}: {exc}") from exc

    def _rewrite_without(self, target: LayerTarget, done: set[str]) -> None:
        """Shapefile / GeoJSON: rewrite the layer keeping only the rows of photos in ``done``."""
        frame = read_layer(target.path, target.name, self.format)
        keep = frame["photo"].isin(done)
        if bool(keep.all()):
            return
        geometry_type, fields = LAYER_SCHEMAS[target.name]
        fields = [(n, kind) for n, kind in fields if n in frame.columns]  # an older output: its own schema
        rows = [
            (frame.geometry.iloc[i], {n: frame[n].iloc[i] for n, _ in fields}) for i in np.flatnonzero(keep)
        ]
        self._write_empty(target, fields)
        self._ogr_write(target, LayerTable(target.name, geometry_type, fields, rows), append=True)

    # -- set-up -------------------------------------------------------------------------------------------

    def _parse_crs(self, crs: Any) -> pyproj.CRS:
        try:
            return pyproj.CRS.from_user_input(crs)
        except (pyproj.exceptions.CRSError, TypeError, ValueError) as exc:
            raise ExportError(f"cannot write {self.path}: unusable CRS {str(crs)[:80]!r} ({exc})") from exc

    def _gpkg_layers(self) -> list[str]:
        if not self.path.exists():
            return []
        try:
            return [str(name) for name, _ in pyogrio.list_layers(self.path)]
        except IO_ERRORS as exc:
            if self.mode == MODE_OVERWRITE:
                return []
            raise ExportError(f"{self.path} exists but is not a readable GeoPackage ({exc})") from exc

    def _existing_layers(self) -> dict[str, LayerTarget]:
        """Our output layers that already exist, by name (any layer of ours, also ones not written now)."""
        if self.format == FORMAT_GPKG:
            present = set(self._gpkg_layers())
            return {n: LayerTarget(n, self.path, n) for n in LAYER_SCHEMAS if n in present}
        found = {}
        all_targets = output_layers(self.path, self.format, include_matches=True)
        for name, target in all_targets.items():
            if any(p.exists() for p in sidecars(target.path, self.format)):
                found[name] = target
        return found

    def _describe(self, existing: dict[str, LayerTarget]) -> str:
        try:
            n = len(self.done_photos())
        except ExportError:
            return "layers " + ", ".join(sorted(existing))
        return f"{n} photo(s) in layers " + ", ".join(sorted(existing))

    def _remove_outputs(self) -> None:
        if self.format == FORMAT_GPKG:
            layers = self._gpkg_layers()
            if self.path.exists() and all(n in LAYER_SCHEMAS for n in layers):
                self._unlink(self.path)
            else:  # other people's layers stay; ours are replaced by empty ones
                for name in (n for n in layers if n in LAYER_SCHEMAS):
                    self._write_empty(LayerTarget(name, self.path, name))
            return
        for target in output_layers(self.path, self.format, include_matches=True).values():
            for p in sidecars(target.path, self.format):
                if p.exists():
                    self._unlink(p)

    @staticmethod
    def _unlink(path: Path) -> None:
        try:
            path.unlink()
        except OSError as exc:
            raise ExportError(f"cannot overwrite {path}: {exc}") from exc

    def _check_compatible(self, existing: dict[str, LayerTarget]) -> None:
        for name, target in existing.items():
            fields = LAYER_SCHEMAS[name][1]
            if self.format == FORMAT_CSV:
                prj = target.path.with_suffix(".prj")
                have, crs = self._csv_header(target.path), (prj.read_text() if prj.exists() else None)
            else:
                try:
                    info = pyogrio.read_info(target.path, layer=target.layer)
                except IO_ERRORS as exc:
                    raise ExportError(f"cannot append to {target.uri}: unreadable ({exc})") from exc
                if self.format == FORMAT_GEOJSON and info["features"] == 0:
                    continue  # an empty GeoJSON keeps no fields; it is rewritten on the first append
                have, crs = [str(f) for f in info["fields"]], info["crs"]
            missing = [n for n, _ in fields if n not in have and n not in LATER_FIELDS]
            if missing:
                raise ExportError(f"cannot append to {target.uri}: it lacks the fields {', '.join(missing)}")
            self._absent[name] = {n for n, _ in fields if n not in have}
            if crs is not None and not _same_crs(pyproj.CRS.from_user_input(crs), self.crs):
                raise ExportError(
                    f"cannot append to {target.uri}: its CRS {pyproj.CRS.from_user_input(crs).name!r} "
                    f"differs from the orthophoto's {self.crs.name!r}"
                )

    @staticmethod
    def _csv_header(path: Path) -> list[str]:
        try:
            with open(path, newline="", encoding="utf-8") as f:
                return next(csv.reader(f), [])
        except (OSError, UnicodeDecodeError) as exc:
            raise ExportError(f"cannot append to {path}: unreadable ({exc})") from exc

    def _create_missing_layers(self, existing: dict[str, LayerTarget]) -> None:
        for name, target in self.targets.items():
            if name not in existing:
                self._write_empty(target)

    def _write_empty(self, target: LayerTarget, fields: Fields | None = None) -> None:
        """An empty layer with ``fields`` (default: the layer's schema)."""
        geometry_type, schema = LAYER_SCHEMAS[target.name]
        fields = schema if fields is None else fields
        if self.format == FORMAT_CSV:
            self._write_csv_new(target.path, fields)
        else:
            self._ogr_write(target, LayerTable(target.name, geometry_type, list(fields)), append=False)

    # -- writing ------------------------------------------------------------------------------------------

    def _ogr_write(self, target: LayerTarget, table: LayerTable, append: bool) -> None:
        frame = table_to_frame(table, self._write_crs)
        kwargs: dict[str, Any] = {
            "driver": DRIVERS[self.format],
            "geometry_type": table.geometry_type,
            "promote_to_multi": False,
        }
        if target.layer:
            kwargs["layer"] = target.layer
        if self.format == FORMAT_SHP:
            kwargs["encoding"] = "UTF-8"
        if self.format == FORMAT_GPKG and not target.path.exists():
            kwargs["dataset_options"] = {"VERSION": _GPKG_VERSION}
        try:
            if self.format == FORMAT_GEOJSON and append:
                self._geojson_append(target.path, frame, kwargs)
            else:
                pyogrio.write_dataframe(frame, target.path, append=append, **kwargs)
        except IO_ERRORS as exc:
            raise ExportError(f"cannot write {target.uri}: {exc}") from exc

    @staticmethod
    def _geojson_append(path: Path, frame: gpd.GeoDataFrame, kwargs: dict[str, Any]) -> None:
        """Append on a copy and swap it in atomically, so a crash leaves the previous file intact."""
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
        try:
            has_rows = path.exists() and pyogrio.read_info(path)["features"] > 0
            if has_rows:  # an empty GeoJSON keeps no field list, so it is rewritten instead
                shutil.copyfile(path, tmp)
            pyogrio.write_dataframe(frame, tmp, append=has_rows, **kwargs)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def _write_csv_new(self, path: Path, fields: Fields) -> None:
        try:
            with open(path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerow([n for n, _ in fields])
            path.with_suffix(".csvt").write_text(",".join(_CSVT_TYPES[k] for _, k in fields) + "\n")
            path.with_suffix(".prj").write_text(self.crs_wkt)
        except OSError as exc:
            raise ExportError(f"cannot write {path}: {exc}") from exc

    @staticmethod
    def _csv_value(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float | np.floating):
            return "" if math.isnan(value) else repr(float(value))
        return str(value)

    def _csv_append(self, path: Path, table: LayerTable) -> None:
        try:
            with open(path, "a", newline="", encoding="utf-8") as f:
                writer = csv.writer(f)
                for _, attrs in table.rows:
                    writer.writerow([self._csv_value(attrs.get(n)) for n in table.field_names])
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise ExportError(f"cannot write {path}: {exc}") from exc

    def write(self, result: PhotoResult) -> None:
        """Add one photo's rows to every layer now (detail layers first, the poses row last)."""
        self.write_tables(layer_tables([result], include_matches=self.include_matches))

    def write_tables(self, tables: dict[str, LayerTable]) -> None:
        """Add the rows of result layer tables (detail layers first, the poses rows last)."""
        for name in _WRITE_ORDER:
            target = self.targets.get(name)
            table = tables.get(name)
            if target is None or table is None or not table.rows:
                continue
            table = table.without(self._absent.get(name, set()))
            if self.format == FORMAT_CSV:
                self._csv_append(target.path, table)
            else:
                self._ogr_write(target, table, append=True)

    def write_many(self, results: list[PhotoResult]) -> None:
        """:meth:`write` each result in turn."""
        for result in results:
            self.write(result)

    def done_photos(self, ok_only: bool = False) -> set[str]:
        """Photos already in the output's poses layer (only those with status ``ok`` if ``ok_only``)."""
        if not self.targets[LAYER_POSES].path.exists():
            return set()
        poses = read_layer(self.path, LAYER_POSES, self.format)
        if ok_only:
            poses = poses[poses["status"] == "ok"]
        return set(poses["photo"])

    def sources(self) -> dict[str, str]:
        """OGR / QGIS data source strings of the layers, by layer name."""
        return {name: t.uri for name, t in self.targets.items()}

    def close(self) -> None:
        """Nothing stays open between writes; present for symmetry and context-manager use."""

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_results(
    path: str | os.PathLike,
    results: list[PhotoResult],
    fmt: str | None = None,
    *,
    crs: Any = None,
    include_matches: bool = False,
    mode: str = MODE_REFUSE,
) -> ResultWriter:
    """Write all ``results`` at once; ``crs`` defaults to the first result's ``crs_wkt``."""
    if crs is None:
        crs = next((r.crs_wkt for r in results if r.crs_wkt), None)
        if crs is None:
            raise ExportError(f"cannot write {path}: no CRS given and no result carries one")
    writer = ResultWriter(path, fmt, crs=crs, include_matches=include_matches, mode=mode)
    writer.write_many(results)
    return writer


def convert_output(
    source: str | os.PathLike, target: str | os.PathLike, fmt: str | None = None, *, mode: str = MODE_REFUSE
) -> ResultWriter:
    """Copy every result layer of an output (any format) into another (e.g. GeoPackage → Shapefiles),
    with the same schema and CRS. Returns the writer of ``target`` (its ``sources()`` name the files)."""
    poses = read_layer(source, LAYER_POSES)
    if poses.crs is None:
        raise ExportError(f"cannot convert {source}: its poses layer has no CRS")
    src_layers = output_layers(source, include_matches=True)
    has_matches = infer_format(source) != FORMAT_CSV and layer_exists(src_layers[LAYER_MATCHES])
    writer = ResultWriter(target, fmt, crs=poses.crs, include_matches=has_matches, mode=mode)
    tables = {}
    for name in writer.targets:
        if name != LAYER_POSES and (infer_format(source) == FORMAT_CSV or not layer_exists(src_layers[name])):
            continue  # e.g. an output written before the priors layer existed
        frame = poses if name == LAYER_POSES else read_layer(source, name)
        geometry_type, fields = LAYER_SCHEMAS[name]
        columns = [n for n, _ in fields if n in frame.columns]  # an older output lacks LATER_FIELDS
        rows = [(geom, {n: frame[n].iloc[i] for n in columns}) for i, geom in enumerate(frame.geometry)]
        tables[name] = LayerTable(name, geometry_type, list(fields), rows)
    writer.write_tables(tables)
    return writer
