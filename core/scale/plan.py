"""The photos of a large job and their batches: a Parquet/GeoParquet photo index, and batches of photos
that lie on the same orthophoto tile.

Photos are ordered by the tile of the orthophoto their prior falls on (tiles of ``tile_m`` metres in the
orthophoto CRS, row by row from the north-west), then by photo path; consecutive photos form batches of at
most ``batch_size``, never spanning two tiles, so a worker reads nearby orthophoto windows (and the
raster's cache blocks) together. A batch's name comes from its tile and its photos (``parts.batch_id``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..inputs.priors import PriorError, _item_from_feature, _to_wgs84
from ..output.results import lonlat_to_crs
from ..types import PhotoItem
from .parts import batch_id

PARQUET_SUFFIXES = (".parquet", ".geoparquet")
DEFAULT_TILE_M = 500.0  # orthophoto tile side, metres in the orthophoto CRS
DEFAULT_BATCH_SIZE = 16  # photos per batch (a part, a task, a retry unit)
NO_TILE = (2**31 - 1, 2**31 - 1)  # photos without a prior come last, in one group


@dataclass
class Batch:
    """Photos localized together by one worker and written as one part.

    Attributes:
        name: ``t<row>_<col>-<hash>`` (``parts.batch_id``), the part's name.
        tile: (row, col) of the orthophoto tile, counted from the CRS origin in ``tile_m`` steps.
        items: the photos with their priors.
    """

    name: str
    tile: tuple[int, int]
    items: list[PhotoItem]


def is_parquet(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


def items_from_parquet(
    path: str | os.PathLike,
    photo_field: str = "photo",
    heading_field: str | None = "heading",
    uncertainty_field: str | None = "uncertainty",
    base_dir: str | os.PathLike | None = None,
) -> list[PhotoItem]:
    """Photos from a Parquet photo index: GeoParquet points (any CRS), or plain Parquet with ``lon`` and
    ``lat`` columns (WGS84 degrees). Relative photo paths are resolved against ``base_dir`` (default: the
    index's folder). Raises PriorError naming the file and the problem."""
    import geopandas
    import pandas
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        metadata = pq.read_schema(path).metadata or {}
        if b"geo" in metadata:
            frame = geopandas.read_parquet(path)
        else:
            table = pandas.read_parquet(path)
            missing = [c for c in ("lon", "lat") if c not in table.columns]
            if missing:
                raise PriorError(
                    f"{path}: a Parquet photo index needs GeoParquet points or 'lon' and 'lat' columns "
                    f"(missing {', '.join(missing)}; columns: {', '.join(map(str, table.columns))})"
                )
            points = geopandas.points_from_xy(table["lon"], table["lat"])
            frame = geopandas.GeoDataFrame(table, geometry=points, crs="EPSG:4326")
    except PriorError:
        raise
    except Exception as exc:  # pyarrow's ArrowInvalid, OSError...
        raise PriorError(f"{path}: cannot be read as a Parquet photo index ({exc})") from exc
    if photo_field not in frame.columns:
        raise PriorError(
            f"{path}: has no column {photo_field!r} (columns: {', '.join(map(str, frame.columns))})"
        )
    frame = _to_wgs84(frame, path)
    heading = heading_field if heading_field in frame.columns else None
    uncertainty = uncertainty_field if uncertainty_field in frame.columns else None
    folder = Path(base_dir) if base_dir is not None else path.parent
    items, problems = [], []
    for n, (_, feature) in enumerate(frame.iterrows(), start=1):
        try:
            items.append(
                _item_from_feature(feature, frame.geometry.name, photo_field, heading, uncertainty, folder)
            )
        except ValueError as exc:
            problems.append(f"row {n}: {exc}")
    if problems:
        raise PriorError(f"{path}: {len(problems)} bad row(s): {'; '.join(problems[:10])}")
    if not items:
        raise PriorError(f"{path}: the photo index has no rows")
    return items


def tile_of(item: PhotoItem, crs_wkt: str, tile_m: float) -> tuple[int, int]:
    """(row, col) of the ``tile_m`` tile of the orthophoto CRS that holds the photo's prior; rows count
    southwards (north-west first), NO_TILE without a prior."""
    if not item.has_position:
        return NO_TILE
    x, y = lonlat_to_crs(crs_wkt, item.lon, item.lat)
    if not (math.isfinite(x) and math.isfinite(y)):
        return NO_TILE
    return (-math.floor(y / tile_m), math.floor(x / tile_m))


def plan_batches(
    items: list[PhotoItem], crs_wkt: str, batch_size: int = DEFAULT_BATCH_SIZE, tile_m: float = DEFAULT_TILE_M
) -> list[Batch]:
    """Batches of at most ``batch_size`` photos of one tile each, tiles north-west first, photos by path."""
    if batch_size < 1 or not tile_m > 0:
        raise ValueError(f"batch size must be ≥ 1 and tile size > 0 m, got {batch_size} and {tile_m}")
    keyed = sorted(((tile_of(it, crs_wkt, tile_m), str(it.path)), it) for it in items)
    batches: list[Batch] = []
    start = 0
    while start < len(keyed):
        tile = keyed[start][0][0]
        end = start
        while end < len(keyed) and end - start < batch_size and keyed[end][0][0] == tile:
            end += 1
        chunk = [it for _, it in keyed[start:end]]
        prefix = "tnone" if tile == NO_TILE else f"t{tile[0]}_{tile[1]}"
        batches.append(Batch(batch_id([str(it.path) for it in chunk], prefix), tile, chunk))
        start = end
    return batches
