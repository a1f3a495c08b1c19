"""Results of a large job as partitioned GeoParquet: one part per batch of photos, renamed into place whole.

A part ``part-<batch id>.parquet`` is the batch's ``poses`` table (``output/tables.py``: the usual fields,
points in the orthophoto CRS, GeoParquet metadata, readable by GDAL, geopandas or DuckDB) plus a column
``result`` that holds each photo's whole :class:`PhotoResult` as JSON (inliers, layout, matches), so that
:func:`merge_parts` rebuilds every result layer exactly. A part is written to a temporary name in the same
folder and renamed (``os.replace``, atomic on one file system): a killed writer leaves a stray
``*.tmp`` file (removed by the next run), never half a part. The photos already done are the ``photo``
column of the parts (:func:`done_photos`): a rerun skips them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Loc2Error
from ..output.export import ResultWriter
from ..output.results import PhotoResult
from ..output.tables import layer_tables
from ..types import LAYER_POSES, MODE_OVERWRITE, MODE_REFUSE

PART_PREFIX = "part-"
PART_SUFFIX = ".parquet"
TMP_SUFFIX = ".tmp"
RESULT_COLUMN = "result"


class PartsError(Loc2Error):
    """A parts folder that cannot be used (the message names it and the problem)."""


def batch_id(photos: list[str], prefix: str = "") -> str:
    """A batch's name from its photos (the same photos give the same name, so a retried batch replaces its
    own part): ``<prefix>-<16 hex digits of SHA-1>``."""
    digest = hashlib.sha1("\n".join(photos).encode(), usedforsecurity=False).hexdigest()[:16]
    return f"{prefix}-{digest}" if prefix else digest


def part_path(parts_dir: Path, name: str) -> Path:
    return Path(parts_dir) / f"{PART_PREFIX}{name}{PART_SUFFIX}"


def list_parts(parts_dir: str | os.PathLike) -> list[Path]:
    """The complete parts of a folder, sorted by name (temporary files left by a killed writer excluded)."""
    folder = Path(parts_dir)
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob(f"{PART_PREFIX}*{PART_SUFFIX}") if p.is_file())


def remove_stale_temporaries(parts_dir: str | os.PathLike) -> int:
    """Delete the ``*.tmp`` files a killed writer left in the folder; returns how many."""
    folder = Path(parts_dir)
    stale = list(folder.glob(f"{PART_PREFIX}*{TMP_SUFFIX}")) if folder.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return len(stale)


# ------------------------------------------------------------------------------ a result as JSON
def _json_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [list(v) if isinstance(v, tuple) else v for v in value]
    return value


def result_to_json(result: PhotoResult) -> str:
    """Every field of a result as JSON (floats written exactly, NaN as ``NaN``)."""
    values = {f.name: _json_value(getattr(result, f.name)) for f in dataclasses.fields(result)}
    return json.dumps(values, allow_nan=True, separators=(",", ":"))


def result_from_json(text: str) -> PhotoResult:
    """The :class:`PhotoResult` :func:`result_to_json` wrote, field for field."""
    values = json.loads(text)
    for name, kind in (
        ("inliers_xy_crs", 2),
        ("inliers_uv", 2),
        ("layout_xy_crs", 2),
        ("matches_ground_xy_crs", 2),
        ("matches_aerial_xy_crs", 2),
        ("inliers_prob", 1),
        ("inliers_resid_m", 1),
        ("matches_prob", 1),
    ):
        array = np.asarray(values.get(name, []), dtype=np.float64)
        values[name] = array.reshape(-1, kind) if kind > 1 else array.reshape(-1)
    return PhotoResult(**values)


# ------------------------------------------------------------------------------ writing and reading
def write_part(parts_dir: str | os.PathLike, name: str, results: list[PhotoResult], crs_wkt: str) -> Path:
    """Write one batch's results as ``part-<name>.parquet`` (GeoParquet, temporary file then rename)."""
    from ..output.formats import table_to_frame

    folder = Path(parts_dir)
    folder.mkdir(parents=True, exist_ok=True)
    frame = table_to_frame(layer_tables(results)[LAYER_POSES], crs_wkt)
    frame[RESULT_COLUMN] = [result_to_json(r) for r in results]
    final = part_path(folder, name)
    tmp = final.with_name(f"{final.stem}.{os.getpid()}{TMP_SUFFIX}")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, final)
    return final


def _read_column(path: Path, column: str) -> list:
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=[column]).column(column).to_pylist()
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, KeyError...
        raise PartsError(f"{path}: not a Loc2 result part ({exc})") from exc


def done_photos(parts_dir: str | os.PathLike) -> set[str]:
    """The photos that have a row in some part of the folder."""
    done: set[str] = set()
    for path in list_parts(parts_dir):
        done.update(_read_column(path, "photo"))
    return done


def iter_results(parts_dir: str | os.PathLike) -> Iterator[PhotoResult]:
    """Every photo's result in the parts, parts in name order, each photo once (the first part that
    has it wins)."""
    seen: set[str] = set()
    for path in list_parts(parts_dir):
        for text in _read_column(path, RESULT_COLUMN):
            result = result_from_json(text)
            if result.photo not in seen:
                seen.add(result.photo)
                yield result


def check_parts_dir(parts_dir: str | os.PathLike, mode: str) -> None:
    """Refuse a folder that already holds parts unless resuming (``append``) or overwriting (which deletes
    them); a file in its place is refused too."""
    folder = Path(parts_dir)
    if folder.exists() and not folder.is_dir():
        raise PartsError(f"{folder} is a file: the results of a Ray job go to a folder of parts")
    parts = list_parts(folder)
    if parts and mode == MODE_REFUSE:
        raise PartsError(
            f"{folder} already holds {len(parts)} result parts: --resume goes on with them, --overwrite "
            "deletes them, or choose another output"
        )
    if mode == MODE_OVERWRITE:
        for path in parts:
            path.unlink()


def merge_parts(
    parts_dir: str | os.PathLike,
    out: str | os.PathLike,
    fmt: str | None = None,
    *,
    include_matches: bool = False,
    mode: str = MODE_REFUSE,
    chunk: int = 500,
) -> tuple[ResultWriter, int]:
    """Write the results held by the parts into one output (GeoPackage, Shapefile, ...) with the usual
    layers and schema, photos sorted by photo path. Returns the writer and the number of photos."""
    parts = list_parts(parts_dir)
    if not parts:
        raise PartsError(f"{parts_dir}: no result parts to merge (files named {PART_PREFIX}*{PART_SUFFIX})")
    results = sorted(iter_results(parts_dir), key=lambda r: r.photo)
    crs_wkt = next((r.crs_wkt for r in results if r.crs_wkt), "")
    if not crs_wkt:
        raise PartsError(f"{parts_dir}: the parts carry no CRS")
    writer = ResultWriter(out, fmt, crs=crs_wkt, include_matches=include_matches, mode=mode)
    for start in range(0, len(results), max(chunk, 1)):  # a few large writes, not one per photo
        writer.write_tables(layer_tables(results[start : start + chunk], include_matches=include_matches))
    return writer, len(results)
