"""Shared by the fault tests: a made-up photo result, and what an output holds, read as a user's GIS would."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pyogrio

from loc2.core.output.formats import read_layer
from loc2.core.output.results import PhotoResult
from loc2.core.types import LAYER_INLIERS, LAYER_OUTLINES, LAYER_POSES, LAYER_SHIFTS

CRS = "EPSG:32632"


def made_up_result(i: int) -> PhotoResult:
    """A localized photo with 12 inliers, an outline and a shift (UTM 32N)."""
    rng = np.random.default_rng(i)
    x, y = 465_000.0 + 10.0 * i, 5_246_000.0
    ang = rng.uniform(0, 2 * math.pi, 200)
    layout = np.column_stack([x + 9 * np.cos(ang), y + 9 * np.sin(ang)])
    return PhotoResult(
        photo=f"/photos/p{i}.jpg",
        status="ok",
        x=x,
        y=y,
        heading_deg=30.0 * i,
        prior_x=x - 2.0,
        prior_y=y + 1.0,
        num_inliers=12,
        inlier_ratio=0.2,
        crs_wkt=_wkt(),
        inliers_xy_crs=layout[:12],
        inliers_uv=rng.uniform(0, 100, (12, 2)),
        inliers_prob=rng.uniform(0, 1, 12),
        inliers_resid_m=rng.uniform(0, 1, 12),
        layout_xy_crs=layout,
    )


def _wkt() -> str:
    import pyproj

    return pyproj.CRS.from_user_input(CRS).to_wkt()


def gpkg_is_sound(path: Path) -> None:
    """The GeoPackage passes SQLite's integrity check and GDAL opens every layer."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()
    for name, _ in pyogrio.list_layers(path):
        pyogrio.read_info(path, layer=name)


def rows_per_photo(path: Path, layer: str) -> dict[str, int]:
    """How many rows each photo has in a layer of an output (any format)."""
    try:
        frame = read_layer(path, layer)
    except Exception:  # noqa: BLE001 - a layer this output does not have
        return {}
    return frame.groupby("photo").size().to_dict() if len(frame) else {}


def assert_each_photo_once(path: Path, photos: list[str]) -> None:
    """Every photo exactly once in poses; a localized one has one shift, one outline and its inliers;
    no layer holds a photo that is not in poses."""
    poses = read_layer(path, LAYER_POSES)
    assert sorted(poses["photo"]) == sorted(photos), "every photo exactly once in poses"
    by_photo = poses.set_index("photo")
    for layer in (LAYER_SHIFTS, LAYER_OUTLINES, LAYER_INLIERS):
        counts = rows_per_photo(path, layer)
        assert set(counts) <= set(photos), f"{layer}: rows of photos not in poses"
        for photo, row in by_photo.iterrows():
            if row["status"] != "ok":
                assert counts.get(photo, 0) == 0, (layer, photo)
            elif layer == LAYER_INLIERS:
                assert counts.get(photo, 0) == row["inliers"], (layer, photo, counts.get(photo))
            else:
                assert counts.get(photo, 0) <= 1, (layer, photo, counts.get(photo))
