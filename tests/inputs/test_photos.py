"""EXIF reading, orientation and camera models of real JPEGs written with Pillow's Exif API."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational

from loc2.core.errors import PhotoError
from loc2.core.geometry.cameras import Equirectangular, Pinhole
from loc2.core.inputs.photos import _dms, _rational, camera_for_photo, load_rgb, read_photo

GPS = ExifTags.GPS
TAG = ExifTags.Base
R = IFDRational


def write_jpeg(
    path: Path,
    size: tuple[int, int] = (64, 48),
    gps: dict | None = None,
    exif_ifd: dict | None = None,
    ifd0: dict | None = None,
    pixels: np.ndarray | None = None,
) -> Path:
    """Write a JPEG with the given IFD0, Exif and GPS tags (Pillow's Exif API)."""
    exif = Image.Exif()
    for tag, value in (ifd0 or {}).items():
        exif[tag] = value
    if gps:
        exif[ExifTags.IFD.GPSInfo] = gps
    if exif_ifd:
        exif[ExifTags.IFD.Exif] = exif_ifd
    img = Image.fromarray(pixels) if pixels is not None else Image.new("RGB", size, (90, 120, 150))
    img.save(path, format="JPEG", quality=95, exif=exif.tobytes())
    return path


def dms(deg: float, minutes: float, seconds: float) -> tuple:
    return (R(round(deg * 100), 100), R(round(minutes * 1000), 1000), R(round(seconds * 1000), 1000))


def test_southern_western_hemisphere_and_full_metadata(tmp_path):
    path = write_jpeg(
        tmp_path / "rio.jpg",
        size=(64, 48),
        ifd0={TAG.Make: "Acme\x00", TAG.Model: " Cam 9 ", TAG.Orientation: 1},
        gps={
            GPS.GPSLatitudeRef: "S",
            GPS.GPSLatitude: dms(22, 57, 7.2),
            GPS.GPSLongitudeRef: "W",
            GPS.GPSLongitude: dms(43, 12, 36.0),
            GPS.GPSAltitudeRef: b"\x01",
            GPS.GPSAltitude: R(125, 10),
            GPS.GPSImgDirectionRef: "T",
            GPS.GPSImgDirection: R(2705, 10),
            GPS.GPSHPositioningError: R(35, 10),
        },
        exif_ifd={
            TAG.DateTimeOriginal: "2023:05:01 12:34:56",
            TAG.OffsetTimeOriginal: "-03:00",
            TAG.FocalLengthIn35mmFilm: 26,
            TAG.FocalLength: R(425, 100),
        },
    )
    photo = read_photo(path)
    assert photo.lat == pytest.approx(-(22 + 57 / 60 + 7.2 / 3600), abs=1e-9)
    assert photo.lon == pytest.approx(-(43 + 12 / 60 + 36 / 3600), abs=1e-9)
    assert photo.altitude == pytest.approx(-12.5)
    assert photo.heading_deg == pytest.approx(270.5) and photo.heading_ref == "T"
    assert photo.horizontal_error_m == pytest.approx(3.5)
    assert photo.focal_35mm == 26 and photo.focal_mm == pytest.approx(4.25)
    assert photo.make == "Acme" and photo.model == "Cam 9"
    assert (photo.width, photo.height, photo.orientation) == (64, 48, 1)
    assert photo.timestamp == datetime(2023, 5, 1, 12, 34, 56, tzinfo=timezone(timedelta(hours=-3)))
    assert photo.sensor_width_mm is None


def test_northern_eastern_and_gps_timestamp_and_magnetic_heading(tmp_path):
    path = write_jpeg(
        tmp_path / "zh.jpg",
        gps={
            GPS.GPSLatitudeRef: "N",
            GPS.GPSLatitude: (R(47, 1), R(2245, 100), R(0, 1)),  # fractional minutes
            GPS.GPSLongitudeRef: "E",
            GPS.GPSLongitude: (R(8, 1), R(32, 1), R(0, 0)),  # 0/0 seconds: "unused"
            GPS.GPSAltitudeRef: 0,
            GPS.GPSAltitude: R(4081, 10),
            GPS.GPSImgDirectionRef: "M",
            GPS.GPSImgDirection: R(360, 1),
            GPS.GPSDateStamp: "2022:12:31",
            GPS.GPSTimeStamp: (R(23, 1), R(59, 1), R(595, 10)),
        },
    )
    photo = read_photo(path)
    assert photo.lat == pytest.approx(47 + 22.45 / 60, abs=1e-9)
    assert photo.lon == pytest.approx(8 + 32 / 60, abs=1e-9)
    assert photo.altitude == pytest.approx(408.1)
    assert photo.heading_deg == 0.0 and photo.heading_ref == "M"
    assert photo.timestamp == datetime(2022, 12, 31, 23, 59, 59, 500000, tzinfo=timezone.utc)
    assert photo.focal_35mm is None and photo.horizontal_error_m is None


def test_bad_rationals_and_ranges_become_none(tmp_path):
    path = write_jpeg(
        tmp_path / "bad.jpg",
        gps={
            GPS.GPSLatitudeRef: "N",
            GPS.GPSLatitude: (R(95, 1), R(0, 1), R(0, 1)),  # out of range
            GPS.GPSLongitudeRef: "E",
            GPS.GPSLongitude: (R(8, 1), R(32, 1), R(1, 0)),  # zero denominator
            GPS.GPSAltitude: R(5, 0),
            GPS.GPSImgDirection: R(400, 1),
            GPS.GPSHPositioningError: R(-1, 1),
        },
        exif_ifd={
            TAG.FocalLength: R(0, 0),
            TAG.FocalLengthIn35mmFilm: 0,
            TAG.DateTimeOriginal: "0000:00:00 00:00:00",
        },
        ifd0={TAG.Orientation: 9},
    )
    photo = read_photo(path)
    assert photo.lat is None and photo.lon is None
    assert photo.altitude is None and photo.heading_deg is None and photo.horizontal_error_m is None
    assert photo.focal_mm is None and photo.focal_35mm is None and photo.timestamp is None
    assert photo.orientation is None and (photo.width, photo.height) == (64, 48)


def test_rational_helpers_edge_cases():
    assert _rational(R(1, 0)) is None
    assert _rational(R(0, 0)) is None and _rational(R(0, 0), zero_over_zero=0.0) == 0.0
    assert _rational((3, 4)) == 0.75 and _rational((3, 0)) is None
    assert _rational(2) == 2.0 and _rational(2.5) == 2.5 and _rational(float("nan")) is None
    assert _rational("12") is None and _rational(None) is None and _rational(True) is None
    assert _dms(((52, 1), (30, 2), (0, 1))) == pytest.approx(52.25)
    assert _dms((R(52, 1), R(61, 1), R(0, 1))) is None  # 61 minutes
    assert _dms((R(-33, 1), R(30, 1), R(0, 1))) == pytest.approx(-33.5)
    assert _dms(R(1234, 100)) == pytest.approx(12.34)  # a single decimal-degrees value
    assert _dms(("a", "b", "c")) is None and _dms(()) is None


def test_missing_gps_and_null_island_and_void_status(tmp_path):
    photo = read_photo(write_jpeg(tmp_path / "plain.jpg"))
    assert photo.lat is None and photo.lon is None and photo.heading_deg is None and not photo.has_position
    assert photo.make is None and photo.timestamp is None and photo.orientation is None
    zero = {GPS.GPSLatitudeRef: "N", GPS.GPSLatitude: dms(0, 0, 0), GPS.GPSLongitudeRef: "E",
            GPS.GPSLongitude: dms(0, 0, 0)}  # fmt: skip
    assert read_photo(write_jpeg(tmp_path / "zero.jpg", gps=zero)).lat is None
    void = {GPS.GPSStatus: "V", GPS.GPSLatitudeRef: "N", GPS.GPSLatitude: dms(10, 0, 0),
            GPS.GPSLongitudeRef: "E", GPS.GPSLongitude: dms(10, 0, 0)}  # fmt: skip
    assert read_photo(write_jpeg(tmp_path / "void.jpg", gps=void)).lat is None
    void[GPS.GPSStatus] = "A"
    assert read_photo(write_jpeg(tmp_path / "active.jpg", gps=void)).lat == pytest.approx(10.0)


# Displayed image for each EXIF orientation, from the stored array A (H, W, 3).
DISPLAY = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, k=1),
}


def asymmetric_pixels() -> np.ndarray:
    """(32, 48, 3) stored image of 2 × 3 blocks of 16 px with distinct colours."""
    colours = np.array(
        [[(255, 0, 0), (0, 255, 0), (0, 0, 255)], [(255, 255, 0), (0, 255, 255), (255, 255, 255)]], np.uint8
    )
    return np.repeat(np.repeat(colours, 16, axis=0), 16, axis=1)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_swaps_size_and_rotates_pixels(tmp_path, orientation):
    stored = asymmetric_pixels()
    path = write_jpeg(tmp_path / f"o{orientation}.jpg", pixels=stored, ifd0={TAG.Orientation: orientation})
    photo = read_photo(path)
    want = DISPLAY[orientation](stored)
    assert photo.orientation == orientation
    assert (photo.height, photo.width) == want.shape[:2]
    assert (photo.width, photo.height) == ((32, 48) if orientation >= 5 else (48, 32))
    got = load_rgb(path)
    assert got.shape == want.shape and got.dtype == np.uint8
    # Compare block centres (JPEG blurs block edges).
    centres = np.abs(got[8::16, 8::16].astype(int) - want[8::16, 8::16].astype(int))
    assert centres.max() < 20


def test_broken_files_raise_photo_error(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(PhotoError, match="empty.jpg.*empty"):
        read_photo(empty)
    text = tmp_path / "notes.jpg"
    text.write_text("this is not a JPEG at all\n" * 20)
    for fn in (read_photo, load_rgb):
        with pytest.raises(PhotoError, match="notes.jpg.*not an image"):
            fn(text)
    noise = np.random.default_rng(0).integers(0, 255, size=(240, 320, 3)).astype(np.uint8)
    full = write_jpeg(tmp_path / "full.jpg", pixels=noise, gps={GPS.GPSLatitude: dms(1, 2, 3)})
    data = full.read_bytes()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) * 6 // 10])
    for fn in (read_photo, load_rgb):
        with pytest.raises(PhotoError, match="truncated.jpg.*(truncated|corrupt)"):
            fn(truncated)
    header_only = tmp_path / "header.jpg"
    header_only.write_bytes(data[:20])
    with pytest.raises(PhotoError, match="header.jpg"):
        read_photo(header_only)
    with pytest.raises(PhotoError, match="missing.jpg.*no such file"):
        read_photo(tmp_path / "missing.jpg")
    # Without verification a truncated file's header is still read.
    assert read_photo(truncated, verify=False).width == 320


def test_camera_for_photo_models(tmp_path):
    pano = read_photo(write_jpeg(tmp_path / "pano.jpg", size=(200, 100)))
    cam = camera_for_photo(pano, hfov_deg=70.0)
    assert isinstance(cam, Equirectangular) and (cam.width, cam.height) == (200, 100)
    assert isinstance(
        camera_for_photo(read_photo(write_jpeg(tmp_path / "p2.jpg", size=(201, 100)))), Equirectangular
    )

    # 3:2 landscape with a 35 mm equivalent of 24 mm: hfov = 2·atan(18/24).
    land = read_photo(
        write_jpeg(tmp_path / "land.jpg", size=(90, 60), exif_ifd={TAG.FocalLengthIn35mmFilm: 24})
    )
    cam = camera_for_photo(land)
    assert isinstance(cam, Pinhole) and cam.hfov_deg == pytest.approx(math.degrees(2 * math.atan(18 / 24)))
    # The same photo in portrait (orientation 6): the 24 mm side is horizontal.
    port = read_photo(
        write_jpeg(
            tmp_path / "port.jpg",
            size=(90, 60),
            exif_ifd={TAG.FocalLengthIn35mmFilm: 24},
            ifd0={TAG.Orientation: 6},
        )
    )
    cam = camera_for_photo(port)
    assert (cam.width, cam.height) == (60, 90)
    assert cam.hfov_deg == pytest.approx(math.degrees(2 * math.atan(12 / 24)))
    # 4:3 under the diagonal convention: width spans 43.27·0.8 mm.
    phone = read_photo(
        write_jpeg(tmp_path / "phone.jpg", size=(80, 60), exif_ifd={TAG.FocalLengthIn35mmFilm: 26})
    )
    want = math.degrees(2 * math.atan(math.hypot(36, 24) * 0.8 / 2 / 26))
    assert camera_for_photo(phone).hfov_deg == pytest.approx(want)

    # Focal length + focal-plane resolution: 6000 px full width at 1000 px/cm → 60 mm... scaled image of 120 px.
    sensor = read_photo(
        write_jpeg(
            tmp_path / "sensor.jpg",
            size=(120, 80),
            exif_ifd={
                TAG.FocalLength: R(35, 1),
                TAG.FocalPlaneXResolution: R(2500, 1),
                TAG.FocalPlaneResolutionUnit: 3,
                TAG.ExifImageWidth: 6000,
            },
        )
    )
    assert sensor.sensor_width_mm == pytest.approx(24.0)
    assert camera_for_photo(sensor).hfov_deg == pytest.approx(math.degrees(2 * math.atan(12 / 35)))

    unknown = read_photo(write_jpeg(tmp_path / "unknown.jpg", size=(90, 60)))
    with pytest.raises(PhotoError, match="unknown.jpg.*field of view is unknown.*--hfov"):
        camera_for_photo(unknown)
    assert camera_for_photo(unknown, hfov_deg=65.0).hfov_deg == pytest.approx(65.0)
    with pytest.raises(PhotoError, match="between 0 and 180"):
        camera_for_photo(unknown, hfov_deg=180.0)


def add_xmp(path: Path, xmp: str) -> Path:
    """Insert an XMP packet as an APP1 segment right after the JPEG's SOI marker (as cameras write it)."""
    data = path.read_bytes()
    body = b"http://ns.adobe.com/xap/1.0/\x00" + xmp.encode("utf-8")
    segment = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
    path.write_bytes(data[:2] + segment + data[2:])
    return path


GPANO_ATTRIBUTES = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:GPano="http://ns.google.com/photos/1.0/panorama/"
 GPano:ProjectionType="equirectangular" GPano:PoseHeadingDegrees="123.5"
 GPano:FullPanoWidthPixels="{full_w}" GPano:CroppedAreaImageWidthPixels="{crop_w}"/>
</rdf:RDF></x:xmpmeta>"""

GPANO_ELEMENTS = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description>
<GPano:ProjectionType> {projection} </GPano:ProjectionType>
<GPano:PoseHeadingDegrees>400</GPano:PoseHeadingDegrees>
</rdf:Description></rdf:RDF></x:xmpmeta>"""


def test_gpano_xmp_decides_panorama_and_gives_heading(tmp_path):
    # A 360 camera's file: GPano attributes, full coverage, heading of the centre column, no GPSImgDirection.
    pano = read_photo(
        add_xmp(
            write_jpeg(tmp_path / "pano.jpg", size=(300, 100)),
            GPANO_ATTRIBUTES.format(full_w=300, crop_w=300),
        )
    )
    assert pano.projection == "equirectangular" and not pano.partial_panorama
    assert pano.is_panorama  # 3:1, yet GPano says it is a full sphere
    assert isinstance(camera_for_photo(pano), Equirectangular)
    assert pano.heading_deg == pytest.approx(123.5) and pano.heading_ref == "T"

    # GPSImgDirection wins over PoseHeadingDegrees.
    both = read_photo(
        add_xmp(
            write_jpeg(
                tmp_path / "both.jpg",
                size=(200, 100),
                gps={GPS.GPSImgDirection: R(45, 1), GPS.GPSImgDirectionRef: "M"},
            ),
            GPANO_ATTRIBUTES.format(full_w=200, crop_w=200),
        )
    )
    assert (both.heading_deg, both.heading_ref) == (45.0, "M")

    # A cropped (partial) panorama is refused, naming the file.
    part = read_photo(
        add_xmp(
            write_jpeg(tmp_path / "part.jpg", size=(200, 100)),
            GPANO_ATTRIBUTES.format(full_w=800, crop_w=200),
        )
    )
    assert part.partial_panorama and not part.is_panorama
    with pytest.raises(PhotoError, match="part.jpg: a partial panorama"):
        camera_for_photo(part)

    # Element syntax; another projection is refused even with a 2:1 aspect; an out-of-range heading is dropped.
    cyl = read_photo(
        add_xmp(
            write_jpeg(tmp_path / "cyl.jpg", size=(200, 100)), GPANO_ELEMENTS.format(projection="Cylindrical")
        )
    )
    assert cyl.projection == "cylindrical" and not cyl.is_panorama and cyl.heading_deg is None
    with pytest.raises(PhotoError, match="cyl.jpg: GPano projection 'cylindrical' is not supported"):
        camera_for_photo(cyl, hfov_deg=90.0)

    # Other XMP (no GPano) leaves the aspect rule in charge.
    plain = read_photo(add_xmp(write_jpeg(tmp_path / "plain.jpg", size=(200, 100)), "<x:xmpmeta/>"))
    assert plain.projection is None and plain.is_panorama


def test_png_and_greyscale_load(tmp_path):
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((10, 14), 77, np.uint8)).save(grey)
    photo = read_photo(grey)
    assert (photo.width, photo.height, photo.format) == (14, 10, "PNG")
    rgb = load_rgb(grey)
    assert rgb.shape == (10, 14, 3) and (rgb == 77).all()
