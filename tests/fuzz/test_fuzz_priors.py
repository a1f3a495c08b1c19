"""Generated bad priors CSVs: every column missing, NaN, ±inf, lat 999, wrong CRS codes, non-UTF-8 bytes, a
BOM, semicolons, blank and ragged rows, NUL bytes, and 10⁵ rows.

``items_from_csv`` runs in-process: each file gives items whose numbers are all in range, or a PriorError
naming the file (and the lines); never another exception.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from loc2.core.errors import Loc2Error
from loc2.core.inputs.priors import items_from_csv

CASE_SECONDS = 10.0

headers = st.lists(
    st.sampled_from(
        ["photo", "lon", "lat", "heading", "crs", "uncertainty", "x", "y", "name", "", "LAT", " lon "]
    ),
    min_size=0,
    max_size=7,
)
cells = st.one_of(
    st.sampled_from(
        [
            "",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "+Infinity",
            "999",
            "-999",
            "47.37",
            "8.54",
            "1e400",
            "0,5",
            "720",
            "-1",
            "EPSG:2056",
            "2056",
            "EPSG:999999",
            "99999999999999999999",
            "EPSG:4326",
            "+proj=nonsense",
            'LOCAL_CS["x"]',
            "EPSG:4978",
            "IAU_2015:49900",
            "a.jpg",
            "ü.jpg",
            '"quoted, cell"',
            "\t",
        ]
    ),
    st.text(max_size=12),
    st.floats().map(repr),
)


@st.composite
def csv_files(draw) -> bytes:
    """The bytes of a generated priors file."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    header = draw(headers)
    n_cols = max(len(header), 1)
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=n_cols + 1), max_size=8))
    text = "\n".join(delimiter.join(r) for r in [header, *rows])
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):  # bytes that are no UTF-8, or a NUL, somewhere
        pos = draw(st.integers(0, len(data)))
        data = (
            data[:pos] + draw(st.sampled_from([b"\xff\xfe", b"\x00", b"\xc3", b"\r", b"\x1c"])) + data[pos:]
        )
    return data


def _check_items(items) -> None:
    for item in items:
        assert str(item.path)
        if item.lon is not None or item.lat is not None:
            assert math.isfinite(item.lon) and -180 <= item.lon <= 180
            assert math.isfinite(item.lat) and -90 <= item.lat <= 90
        if item.heading_deg is not None:
            assert math.isfinite(item.heading_deg) and 0 <= item.heading_deg < 360
        if item.uncertainty_m is not None:
            assert math.isfinite(item.uncertainty_m) and item.uncertainty_m >= 0


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("priors")


@given(data=csv_files())
@example(data=b'crs,lon,lat,photo\nLOCAL_CS["x"],0,999,nan')  # found by the long run: a PROJ error
def test_a_bad_priors_csv_gives_in_range_items_or_a_message_naming_it(folder, data):
    path = folder / "priors.csv"
    path.write_bytes(data)
    t0 = time.perf_counter()
    try:
        items = items_from_csv(path)
    except Loc2Error as exc:
        assert str(path) in str(exc)
    else:
        _check_items(items)
    assert time.perf_counter() - t0 < CASE_SECONDS


@pytest.mark.slow
@pytest.mark.parametrize("bad_every", [0, 1000])
def test_a_hundred_thousand_rows_are_read_or_refused_in_bounded_time(tmp_path, bad_every):
    """10⁵ rows: read in seconds; with a bad row every 1000, one message listing the first few lines."""
    lines = ["photo;lon;lat;heading"]
    for i in range(100_000):
        lat = "999" if bad_every and i % bad_every == 7 else f"{47 + i * 1e-6:.6f}"
        lines.append(f"p{i}.jpg;8,5;{lat};{i % 400}")
    path = tmp_path / "big.csv"
    path.write_text("\ufeff" + "\n".join(lines), encoding="utf-8")
    t0 = time.perf_counter()
    if bad_every:
        with pytest.raises(Loc2Error) as info:
            items_from_csv(path)
        message = str(info.value)
        assert str(path) in message and "100 bad row(s)" in message and "line 9:" in message
        assert "and 90 more" in message and len(message) < 2000
    else:
        items = items_from_csv(path)
        assert len(items) == 100_000
        _check_items(items[::997])
    assert time.perf_counter() - t0 < 60.0
