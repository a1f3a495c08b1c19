"""Generated bad orthophotos: no CRS, geographic, geocentric or local CRSs, rotated or flipped or empty
geotransforms, 1 × 1 px, 1 to 5 bands, 8/16-bit integers and floats, nodata-only and NaN pixels, and crops
around points outside the raster or not finite.

``Orthophoto.open`` and ``crop`` run in-process: each case gives a crop of uint8 RGB pixels, or an
OrthoError naming the file; never another exception.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import given
from hypothesis import strategies as st
from rasterio.transform import Affine

from loc2.core.errors import Loc2Error
from loc2.core.inputs.ortho import Orthophoto

CASE_SECONDS = 20.0
ORIGIN = (465_000.0, 5_246_120.0)  # UTM 32N, near Zurich
LOCAL_WKT = 'LOCAL_CS["site grid",LOCAL_DATUM["x",0],UNIT["metre",1],AXIS["X",EAST],AXIS["Y",NORTH]]'
CRSS = [None, "EPSG:32632", "EPSG:4326", "EPSG:3857", "EPSG:2056", "EPSG:4978", LOCAL_WKT]


@st.composite
def rasters(draw) -> dict:
    """The parameters of a generated GeoTIFF."""
    crs = draw(st.sampled_from(CRSS))
    res = draw(st.sampled_from([0.25, 1.0, 1e-6, 1e6]))
    if crs == "EPSG:4326":
        origin, res = (8.5, 47.4), res * 1e-5
    else:
        origin = ORIGIN
    kind = draw(st.sampled_from(["north_up", "north_up", "rotated", "south_up", "identity", "zero"]))
    transform = {
        "north_up": Affine(res, 0, origin[0], 0, -res, origin[1]),
        "rotated": Affine(
            res, draw(st.sampled_from([0.1, -0.5])) * res, origin[0], 0.2 * res, -res, origin[1]
        ),
        "south_up": Affine(res, 0, origin[0], 0, res, origin[1]),
        "identity": Affine.identity(),
        "zero": Affine(0, 0, origin[0], 0, 0, origin[1]),
    }[kind]
    return {
        "crs": crs,
        "transform": transform,
        "width": draw(st.sampled_from([1, 2, 7, 64])),
        "height": draw(st.sampled_from([1, 3, 64])),
        "count": draw(st.integers(1, 5)),
        "dtype": draw(st.sampled_from(["uint8", "uint16", "int16", "float32"])),
        "fill": draw(st.sampled_from(["random", "constant", "nodata", "nan"])),
        "nodata": draw(st.sampled_from([None, 0])),
    }


def _write(path: Path, p: dict) -> None:
    rng = np.random.default_rng(0)
    shape = (p["count"], p["height"], p["width"])
    top = 65535 if p["dtype"] == "uint16" else 255
    data = rng.integers(0, top, shape).astype(p["dtype"])
    if p["fill"] == "constant":
        data[:] = 7
    elif p["fill"] == "nodata" or (p["fill"] == "nan" and p["dtype"] != "float32"):
        data[:] = 0
    elif p["fill"] == "nan":
        data[:] = np.nan
    nodata = 0 if p["fill"] == "nodata" else p["nodata"]
    profile = dict(driver="GTiff", width=p["width"], height=p["height"], count=p["count"], dtype=p["dtype"])
    profile.update(transform=p["transform"], nodata=nodata)
    if p["crs"] is not None:
        profile["crs"] = rasterio.crs.CRS.from_user_input(p["crs"])
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("orthos")


@given(
    params=rasters(),
    where=st.sampled_from(["centre", "corner", "outside", "far", "nan"]),
    footprint_m=st.sampled_from([0.5, 40.0, 1e5]),
    up_deg=st.floats(-720, 720),
)
def test_a_bad_orthophoto_is_cropped_or_refused_naming_it(folder, params, where, footprint_m, up_deg):
    path = folder / "ortho.tif"
    try:
        _write(path, params)
    except rasterio.errors.RasterioError:  # GDAL itself will not write this one
        return
    t0 = time.perf_counter()
    try:
        with Orthophoto.open(path) as ortho:
            b = ortho.bounds
            cx, cy = (b.left + b.right) / 2, (b.bottom + b.top) / 2
            centre = {
                "centre": (cx, cy),
                "corner": (b.left, b.top),
                "outside": (b.right + 3 * (b.right - b.left) + 100, cy),
                "far": (1e30, -1e30),
                "nan": (math.nan, cy),
            }[where]
            crop = ortho.crop(centre, footprint_m, 32, up_deg)
    except Loc2Error as exc:
        assert str(path) in str(exc)
    else:
        assert crop.image.shape == (32, 32, 3) and crop.image.dtype == np.uint8
        assert crop.valid.shape == (32, 32)
    assert time.perf_counter() - t0 < CASE_SECONDS
