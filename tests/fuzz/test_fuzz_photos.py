"""Generated bad photos: truncated, zero-byte, wrong extension, random bytes, huge declared size, EXIF with
NaN / infinite / out-of-range GPS, 0/0 rationals, GPSImgDirection 720°, odd orientations, bytes flipped.

The photo readers run in-process (volume): each case gives a photo whose numbers are all in range (or
unknown), or a PhotoError naming the file; never another exception.
"""

from __future__ import annotations

import io
import math
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import ExifTags, Image, TiffImagePlugin

from loc2.core.errors import Loc2Error
from loc2.core.inputs.photos import camera_for_photo, load_rgb, read_photo
from loc2.core.inputs.priors import items_from_images

GPS = ExifTags.GPS
CASE_SECONDS = 10.0  # a bad photo is answered within this (large: two shared cores)


def _jpeg(width: int = 64, height: int = 32, exif: Image.Exif | None = None, fmt: str = "JPEG") -> bytes:
    rng = np.random.default_rng(width * 1000 + height)
    image = Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    buf = io.BytesIO()
    kwargs = {"exif": exif} if exif is not None else {}
    image.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


GOOD = _jpeg()

numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**31), 2**32),
    st.sampled_from([0.0, -0.0, 90.0, 180.0, 720.0, -720.0, 999.0, 1e300]),
)
rationals = st.one_of(
    st.builds(TiffImagePlugin.IFDRational, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.just(TiffImagePlugin.IFDRational(0, 0)),
    numbers.filter(lambda v: isinstance(v, int) or math.isfinite(v)).map(
        lambda v: TiffImagePlugin.IFDRational(abs(v))
    ),
)
refs = st.sampled_from(["N", "S", "E", "W", "T", "M", "X", "", "NN", "\x00"])


@st.composite
def exif_blocks(draw) -> Image.Exif:
    """EXIF with generated GPS (any of the fields, any values) and an orientation, maybe out of range."""
    exif = Image.Exif()
    gps = {}
    if draw(st.booleans()):
        gps[GPS.GPSLatitude] = tuple(draw(st.lists(rationals, min_size=1, max_size=3)))
        gps[GPS.GPSLatitudeRef] = draw(refs)
    if draw(st.booleans()):
        gps[GPS.GPSLongitude] = tuple(draw(st.lists(rationals, min_size=1, max_size=3)))
        gps[GPS.GPSLongitudeRef] = draw(refs)
    if draw(st.booleans()):
        gps[GPS.GPSImgDirection] = draw(st.one_of(rationals, st.just(TiffImagePlugin.IFDRational(720))))
        gps[GPS.GPSImgDirectionRef] = draw(refs)
    if draw(st.booleans()):
        gps[GPS.GPSHPositioningError] = draw(rationals)
    if draw(st.booleans()):
        gps[GPS.GPSAltitude] = draw(rationals)
    if gps:
        exif[ExifTags.IFD.GPSInfo] = gps
    if draw(st.booleans()):
        exif[ExifTags.Base.Orientation] = draw(st.integers(0, 65535))
    if draw(st.booleans()):
        exif[ExifTags.Base.FocalLengthIn35mmFilm] = draw(st.integers(0, 65535))
    return exif


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG header declaring ``width`` × ``height`` with one tiny (wrong) data chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


@st.composite
def bad_photo_files(draw) -> tuple[str, bytes]:
    """(file name, bytes) of a generated bad photo."""
    kind = draw(
        st.sampled_from(["truncated", "empty", "random", "wrong_ext", "huge", "exif", "flipped", "tiny"])
    )
    if kind == "truncated":
        return "t.jpg", GOOD[: draw(st.integers(1, len(GOOD) - 1))]
    if kind == "empty":
        return "e.jpg", b""
    if kind == "random":
        return draw(st.sampled_from(["r.jpg", "r.png", "r.tif"])), draw(st.binary(min_size=1, max_size=512))
    if kind == "wrong_ext":
        data = draw(st.sampled_from([_jpeg(fmt="PNG"), GOOD, b"photo,lon,lat\n"]))
        return draw(st.sampled_from(["w.jpg", "w.png", "w.tif", "w.JPEG"])), data
    if kind == "huge":
        side = draw(st.sampled_from([2**31 - 1, 1_000_000, 65_535, 0]))
        return "h.png", _png_with_size(side, draw(st.sampled_from([side, 1, 0])))
    if kind == "flipped":
        data = bytearray(_jpeg(exif=draw(exif_blocks())))
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return "f.jpg", bytes(data)
    if kind == "tiny":
        return "s.jpg", _jpeg(width=draw(st.integers(1, 4)), height=draw(st.integers(1, 4)))
    exif = draw(exif_blocks())
    try:
        return "x.jpg", _jpeg(exif=exif)
    except (ValueError, TypeError, OverflowError, struct.error):  # Pillow cannot write these values
        return "x.jpg", _jpeg()


def _check_photo(photo) -> None:
    """Every number a photo reports is in range, or unknown."""
    assert photo.width > 0 and photo.height > 0
    if photo.lat is not None:
        assert math.isfinite(photo.lat) and -90 <= photo.lat <= 90
    if photo.lon is not None:
        assert math.isfinite(photo.lon) and -180 <= photo.lon <= 180
    if photo.heading_deg is not None:
        assert math.isfinite(photo.heading_deg) and 0 <= photo.heading_deg < 360
    if photo.horizontal_error_m is not None:
        assert math.isfinite(photo.horizontal_error_m) and photo.horizontal_error_m >= 0
    if photo.orientation is not None:
        assert 1 <= photo.orientation <= 8


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bad_photos")


@given(case=bad_photo_files(), hfov=st.one_of(st.none(), numbers))
def test_a_bad_photo_is_read_or_refused_naming_it(folder, case, hfov):
    name, data = case
    path = folder / name
    path.write_bytes(data)
    t0 = time.perf_counter()
    try:
        photo = read_photo(path)
    except Loc2Error as exc:
        assert str(path) in str(exc) and "Traceback" not in str(exc)
    else:
        _check_photo(photo)
        try:
            rgb = load_rgb(path)
            assert rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8
            camera_for_photo(photo, None if hfov is None else float(hfov))
        except Loc2Error as exc:
            assert str(path) in str(exc)
    assert time.perf_counter() - t0 < CASE_SECONDS


@given(cases=st.lists(bad_photo_files(), min_size=1, max_size=4))
def test_a_folder_of_bad_photos_keeps_the_good_one(tmp_path_factory, cases):
    """Bad photos beside a good one: the good one is an item with its GPS, each bad one an item or an
    error naming it; none is lost."""
    folder = tmp_path_factory.mktemp("mixed")
    exif = Image.Exif()
    exif[ExifTags.IFD.GPSInfo] = {
        GPS.GPSLatitudeRef: "N",
        GPS.GPSLatitude: (47.0, 22.0, 1.5),
        GPS.GPSLongitudeRef: "E",
        GPS.GPSLongitude: (8.0, 32.0, 2.5),
    }
    (folder / "good.jpg").write_bytes(_jpeg(exif=exif))
    for i, (name, data) in enumerate(cases):
        (folder / f"bad{i}_{name}").write_bytes(data)
    items, errors = items_from_images([folder])
    names = sorted([it.path.name for it in items] + [p.name for p, _ in errors])
    assert names == sorted(p.name for p in folder.iterdir())  # every photo once, as an item or an error
    good = next(it for it in items if it.path.name == "good.jpg")
    assert good.lat == pytest.approx(47 + 22 / 60 + 1.5 / 3600) and good.lon == pytest.approx(
        8 + 32 / 60 + 2.5 / 3600
    )
    for path, message in errors:
        assert str(path) in message
