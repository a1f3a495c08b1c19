"""Street-level photos: EXIF metadata (position, heading, focal length, orientation) and pixels, via Pillow.

Conventions:

* ``lat``/``lon``: WGS84 degrees, signed (south and west negative). ``altitude``: metres, negative below
  the reference (GPSAltitudeRef = 1).
* ``heading_deg``: GPSImgDirection, degrees clockwise from north in [0, 360); ``heading_ref`` says which
  north: ``'T'`` true, ``'M'`` magnetic, ``None`` not stated.
* ``width``/``height``: pixels of the photo as displayed, i.e. AFTER the EXIF orientation (orientations 5–8
  swap the stored width and height). :func:`load_rgb` returns pixels in that same orientation.
* A missing, unparsable or out-of-range tag becomes ``None``; a file that is not a readable image raises
  :class:`PhotoError` naming it. Rationals with a zero denominator are invalid (``None``) except ``0/0``
  inside a degrees/minutes/seconds triple, which some writers use for "unused" and is read as 0. A position
  of exactly (0, 0) or with GPSStatus ``V`` (measurement void) is treated as missing.
* Panoramas: the XMP "Photo Sphere" tags (``GPano:ProjectionType``, ``GPano:PoseHeadingDegrees`` and the
  cropped-area sizes that 360° cameras write) are read from JPEGs when present. A photo is a full 360°
  equirectangular panorama if GPano says so, or, without GPano, if it is 2:1 (±1 %). PoseHeadingDegrees
  (the heading of the panorama's centre column) is the heading prior when GPSImgDirection is absent.
"""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from ..errors import PhotoError
from ..geometry.cameras import Equirectangular, Pinhole

# Diagonal of the 36 × 24 mm frame that "35 mm equivalent" focal lengths refer to.
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
# Aspect ratio accepted as an equirectangular 360° panorama (2:1 within ±1 %).
PANORAMA_ASPECT = 2.0
PANORAMA_ASPECT_TOLERANCE = 0.01
# Millimetres per FocalPlaneResolutionUnit (2 inch, 3 cm, 4 mm, 5 µm; 1 = "no unit", read as inch).
_FOCAL_PLANE_UNIT_MM = {1: 25.4, 2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}

_GPS = ExifTags.GPS
_TAG = ExifTags.Base
# Errors Pillow raises on broken files (decoders raise OSError; parsers also SyntaxError, struct errors...).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, MemoryError)
# A JPEG APP1 segment holding an XMP packet starts with this namespace string.
_XMP_APP1_PREFIX = b"http://ns.adobe.com/xap/1.0/\x00"
_GPANO_FIELDS = (
    "ProjectionType",
    "PoseHeadingDegrees",
    "FullPanoWidthPixels",
    "FullPanoHeightPixels",
    "CroppedAreaImageWidthPixels",
    "CroppedAreaImageHeightPixels",
)


@dataclass(frozen=True)
class Photo:
    """Metadata of one photo; ``None`` wherever the file does not say (see the module docstring)."""

    path: Path
    width: int
    height: int
    orientation: int | None = None
    lat: float | None = None
    lon: float | None = None
    altitude: float | None = None
    heading_deg: float | None = None
    heading_ref: str | None = None
    focal_35mm: float | None = None
    focal_mm: float | None = None
    sensor_width_mm: float | None = None
    timestamp: datetime | None = None
    horizontal_error_m: float | None = None
    make: str | None = None
    model: str | None = None
    format: str | None = None
    projection: str | None = None  # GPano:ProjectionType, lower case ("equirectangular", ...)
    partial_panorama: bool = False  # GPano cropped area smaller than the full panorama

    @property
    def has_position(self) -> bool:
        return self.lat is not None and self.lon is not None

    @property
    def is_panorama(self) -> bool:
        """A full 360° equirectangular panorama: GPano says so, or (without GPano) a 2:1 aspect (±1 %)."""
        if self.projection is not None:
            return self.projection == "equirectangular" and not self.partial_panorama
        return is_panorama_aspect(self.width, self.height)

    @property
    def stored_width(self) -> int:
        """Width of the stored (un-rotated) pixel array, i.e. along the sensor's x axis."""
        return self.height if (self.orientation or 1) >= 5 else self.width

    def hfov_from_exif(self) -> float | None:
        """Horizontal field of view (degrees, of the photo as displayed) from EXIF, or ``None``.

        From FocalLengthIn35mmFilm first (:func:`hfov_for_focal_35mm`; for a portrait photo the short side is
        horizontal), otherwise from FocalLength and the sensor width (FocalPlaneXResolution), square pixels.
        """
        w, h = self.width, self.height
        if self.focal_35mm:
            return hfov_for_focal_35mm(w, h, self.focal_35mm)
        if self.focal_mm and self.sensor_width_mm:
            mm_per_px = self.sensor_width_mm / self.stored_width
            return math.degrees(2 * math.atan(w * mm_per_px / 2 / self.focal_mm))
        return None


def is_panorama_aspect(width: int, height: int) -> bool:
    """Whether an image without GPano tags is taken for a 360° equirectangular panorama: 2:1 within ±1 %."""
    return abs(width / height - PANORAMA_ASPECT) <= PANORAMA_ASPECT * PANORAMA_ASPECT_TOLERANCE


def hfov_for_focal_35mm(width: int, height: int, focal_35mm: float) -> float:
    """Horizontal field of view (degrees) of a ``width`` × ``height`` photo from its 35 mm-equivalent focal
    length (mm).

    Convention: a 35 mm-equivalent focal length f35 means the image diagonal spans the 43.27 mm diagonal of
    a 36 × 24 mm frame (the usual crop-factor definition), so the width spans ``43.27 · W / hypot(W, H)``
    mm: hfov = 2·atan(that / 2 / f35). For a 3:2 landscape photo this is 2·atan(18 / f35).
    """
    return math.degrees(2 * math.atan(_width_35mm(width, height) / 2 / focal_35mm))


def focal_35mm_for_hfov(width: int, height: int, hfov_deg: float) -> float:
    """Inverse of :func:`hfov_for_focal_35mm`: the 35 mm-equivalent focal length (mm) of a field of view."""
    return _width_35mm(width, height) / 2 / math.tan(math.radians(hfov_deg) / 2)


def _width_35mm(width: int, height: int) -> float:
    """The millimetres of the 35 mm frame's diagonal that the photo's width spans."""
    return FULL_FRAME_DIAGONAL_MM * width / math.hypot(width, height)


# ------------------------------------------------------------------------------------ value parsing
def _rational(value, zero_over_zero: float | None = None) -> float | None:
    """A finite float from an EXIF number (IFDRational, (num, den) tuple, int, float); else ``None``.

    Zero denominators give ``None``; ``0/0`` gives ``zero_over_zero``.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        num, den = value
    elif hasattr(value, "numerator") and hasattr(value, "denominator"):
        num, den = value.numerator, value.denominator
    elif isinstance(value, (int, float)):
        num, den = value, 1
    else:
        return None
    try:
        if den == 0:
            return zero_over_zero if num == 0 else None
        out = float(num) / float(den)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return out if math.isfinite(out) else None


def _text(value) -> str | None:
    """An EXIF ASCII/UNDEFINED value as a stripped string (NULs removed), or ``None`` if empty."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    out = value.replace("\x00", "").strip()
    return out or None


def _ref(value) -> str | None:
    """A one-letter reference tag (N/S/E/W/T/M/A/V) in upper case, or ``None``."""
    text = _text(value)
    return text[0].upper() if text else None


def _int(value) -> int | None:
    if isinstance(value, bytes) and len(value) == 1:
        return value[0]
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    f = _rational(value)
    return int(f) if f is not None and f == int(f) else None


def _dms(value) -> float | None:
    """Degrees from a (degrees, minutes, seconds) triple of rationals (fractional parts allowed)."""
    if not isinstance(value, (tuple, list)) or not 1 <= len(value) <= 3:
        single = _rational(value)
        return single
    parts = [_rational(v, zero_over_zero=0.0) for v in value]
    if any(p is None for p in parts):
        return None
    parts += [0.0] * (3 - len(parts))
    deg, minutes, seconds = parts
    if minutes < 0 or seconds < 0 or minutes >= 60 + 1e-9 or seconds >= 60 + 1e-9:
        return None
    sign = -1.0 if deg < 0 else 1.0
    return sign * (abs(deg) + minutes / 60.0 + seconds / 3600.0)


def _coordinate(value, ref, negative_ref: str, positive_ref: str, limit: float) -> float | None:
    """Signed degrees: negative for the ``negative_ref`` hemisphere; ``None`` if out of range."""
    magnitude = _dms(value)
    if magnitude is None:
        return None
    r = _ref(ref)
    if r == negative_ref:
        out = -abs(magnitude)
    elif r == positive_ref:
        out = abs(magnitude)
    else:  # no (or an odd) reference: trust the sign of the value
        out = magnitude
    return out if abs(out) <= limit else None


def _in_range(value: float | None, lo: float, hi: float) -> float | None:
    return value if value is not None and lo <= value <= hi else None


def _parse_datetime(text, offset=None, subsec=None) -> datetime | None:
    """``YYYY:MM:DD HH:MM:SS`` (+ optional ``±HH:MM`` offset and sub-seconds) → datetime, or ``None``."""
    text = _text(text)
    if not text:
        return None
    try:
        dt = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    digits = _text(subsec)
    if digits and digits.isdigit():
        dt = dt.replace(microsecond=int(digits[:6].ljust(6, "0")))
    off = _text(offset)
    if off and len(off) >= 6 and off[0] in "+-":
        try:
            hours, minutes = int(off[1:3]), int(off[4:6])
            sign = 1 if off[0] == "+" else -1
            dt = dt.replace(tzinfo=timezone(sign * timedelta(hours=hours, minutes=minutes)))
        except ValueError:
            pass
    return dt


def _gps_datetime(datestamp, timestamp) -> datetime | None:
    """GPSDateStamp (``YYYY:MM:DD``) + GPSTimeStamp (h, m, s rationals) → UTC datetime, or ``None``."""
    text = _text(datestamp)
    if not text or not isinstance(timestamp, (tuple, list)) or len(timestamp) != 3:
        return None
    hms = [_rational(v, zero_over_zero=0.0) for v in timestamp]
    if any(v is None or v < 0 for v in hms):
        return None
    try:
        day = datetime.strptime(text[:10], "%Y:%m:%d")
    except ValueError:
        return None
    seconds = hms[0] * 3600 + hms[1] * 60 + hms[2]
    if seconds >= 86400 + 1:
        return None
    return (day + timedelta(seconds=seconds)).replace(tzinfo=timezone.utc)


# ------------------------------------------------------------------------------------ reading
def _ifd(exif: Image.Exif, tag: int) -> dict:
    try:
        return dict(exif.get_ifd(tag))
    except Exception:  # a broken sub-IFD is treated as absent; the pixels may still be fine
        return {}


@contextlib.contextmanager
def _open_image(path: Path) -> Iterator[Image.Image]:
    """``Image.open(path)``; whatever Pillow raises while the image is open or used becomes a
    :class:`PhotoError` naming the file and the reason (not an image, too large, corrupt or truncated)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                yield img
    except UnidentifiedImageError as exc:
        raise PhotoError(f"{path}: not an image file Pillow can read") from exc
    except Image.DecompressionBombError as exc:
        raise PhotoError(f"{path}: the image is too large to open safely ({exc})") from exc
    except _DECODE_ERRORS as exc:
        raise PhotoError(f"{path}: corrupt or truncated image ({exc})") from exc


def _verify_pixels(img: Image.Image) -> None:
    """Decode the image (JPEG at 1/8 scale through draft mode) so truncated or corrupt data raise here."""
    if img.format == "JPEG":
        img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
    img.load()


def read_photo(path: str | Path, verify: bool = True) -> Photo:
    """Read a photo's size and EXIF metadata with Pillow.

    ``verify`` also decodes the pixels (JPEGs at 1/8 scale, cheaply) so a truncated or corrupt file raises
    :class:`PhotoError` here rather than later. Raises :class:`PhotoError` (path + reason) for a missing,
    empty, unreadable, truncated or non-image file.
    """
    path = Path(path)
    if not path.is_file():
        raise PhotoError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise PhotoError(f"{path}: the file is empty")
    with _open_image(path) as img:
        raw_w, raw_h = img.size
        fmt = img.format
        try:
            exif = img.getexif()
        except Exception:  # unreadable EXIF block: no metadata, pixels may still be fine
            exif = Image.Exif()
        gpano = read_gpano(getattr(img, "applist", []))
        if verify:
            _verify_pixels(img)
    if raw_w <= 0 or raw_h <= 0:
        raise PhotoError(f"{path}: the image has no pixels")
    return _photo_from_exif(path, raw_w, raw_h, fmt, exif, gpano)


def read_gpano(applist: list[tuple[str, bytes]]) -> dict[str, str]:
    """The GPano (Photo Sphere XMP) fields of a JPEG's APP segments, as text; ``{}`` when there are none.

    XMP writes a property either as an attribute (``GPano:ProjectionType="equirectangular"``) or as an
    element (``<GPano:ProjectionType>equirectangular</GPano:ProjectionType>``); both are read. A plain
    pattern search, not an XML parser: the packet comes from an untrusted file and only flat values are
    needed.
    """
    out: dict[str, str] = {}
    for marker, data in applist:
        if marker != "APP1" or not data.startswith(_XMP_APP1_PREFIX):
            continue
        text = data[len(_XMP_APP1_PREFIX) :].decode("utf-8", errors="replace")
        for name in _GPANO_FIELDS:
            m = re.search(rf"GPano:{name}\s*=\s*[\"']([^\"']*)[\"']", text) or re.search(
                rf"<GPano:{name}>\s*([^<]*?)\s*</GPano:{name}>", text
            )
            if m and name not in out:
                out[name] = m.group(1).strip()
    return out


def _gpano_number(gpano: dict[str, str], name: str) -> float | None:
    try:
        value = float(gpano[name])
    except (KeyError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _photo_from_exif(
    path: Path, raw_w: int, raw_h: int, fmt: str | None, exif: Image.Exif, gpano: dict[str, str] | None = None
) -> Photo:
    """Build a :class:`Photo` from the stored size, the parsed EXIF directories and the GPano XMP fields."""
    gpano = gpano or {}
    ifd0 = dict(exif)
    sub = _ifd(exif, ExifTags.IFD.Exif)
    gps = _ifd(exif, ExifTags.IFD.GPSInfo)

    orientation = _int(ifd0.get(_TAG.Orientation))
    orientation = orientation if orientation is not None and 1 <= orientation <= 8 else None
    width, height = (raw_h, raw_w) if orientation is not None and orientation >= 5 else (raw_w, raw_h)

    lat = _coordinate(gps.get(_GPS.GPSLatitude), gps.get(_GPS.GPSLatitudeRef), "S", "N", 90.0)
    lon = _coordinate(gps.get(_GPS.GPSLongitude), gps.get(_GPS.GPSLongitudeRef), "W", "E", 180.0)
    void = _ref(gps.get(_GPS.GPSStatus)) == "V"
    if lat is None or lon is None or void or (lat == 0.0 and lon == 0.0):
        lat = lon = None

    altitude = _in_range(_rational(gps.get(_GPS.GPSAltitude)), -1e5, 1e5)
    if altitude is not None and _int(gps.get(_GPS.GPSAltitudeRef)) == 1:
        altitude = -abs(altitude)

    heading = _in_range(_rational(gps.get(_GPS.GPSImgDirection)), 0.0, 360.0)
    heading = heading % 360.0 if heading is not None else None
    heading_ref = _ref(gps.get(_GPS.GPSImgDirectionRef))
    heading_ref = heading_ref if heading_ref in ("T", "M") else None
    pose_heading = _in_range(_gpano_number(gpano, "PoseHeadingDegrees"), 0.0, 360.0)
    if heading is None and pose_heading is not None:  # GPano's heading is of the centre column, true north
        heading, heading_ref = pose_heading % 360.0, "T"

    projection = gpano.get("ProjectionType", "").strip().lower() or None
    full_w, crop_w = (
        _gpano_number(gpano, "FullPanoWidthPixels"),
        _gpano_number(gpano, "CroppedAreaImageWidthPixels"),
    )
    full_h, crop_h = (
        _gpano_number(gpano, "FullPanoHeightPixels"),
        _gpano_number(gpano, "CroppedAreaImageHeightPixels"),
    )
    partial = bool(
        (full_w and crop_w and crop_w < 0.99 * full_w) or (full_h and crop_h and crop_h < 0.99 * full_h)
    )

    focal_35mm = _in_range(_rational(sub.get(_TAG.FocalLengthIn35mmFilm)), 1e-3, 5000.0)
    focal_mm = _in_range(_rational(sub.get(_TAG.FocalLength)), 1e-3, 5000.0)

    timestamp = _parse_datetime(
        sub.get(_TAG.DateTimeOriginal), sub.get(_TAG.OffsetTimeOriginal), sub.get(_TAG.SubsecTimeOriginal)
    )
    if timestamp is None:
        timestamp = _gps_datetime(gps.get(_GPS.GPSDateStamp), gps.get(_GPS.GPSTimeStamp))
    if timestamp is None:
        timestamp = _parse_datetime(ifd0.get(_TAG.DateTime), sub.get(_TAG.OffsetTime))

    return Photo(
        path=path,
        width=width,
        height=height,
        orientation=orientation,
        lat=lat,
        lon=lon,
        altitude=altitude,
        heading_deg=heading,
        heading_ref=heading_ref,
        focal_35mm=focal_35mm,
        focal_mm=focal_mm,
        sensor_width_mm=_sensor_width_mm(sub, raw_w),
        timestamp=timestamp,
        horizontal_error_m=_in_range(_rational(gps.get(_GPS.GPSHPositioningError)), 0.0, 1e7),
        make=_text(ifd0.get(_TAG.Make)),
        model=_text(ifd0.get(_TAG.Model)),
        format=fmt,
        projection=projection,
        partial_panorama=partial,
    )


def _sensor_width_mm(sub: dict, raw_w: int) -> float | None:
    """Sensor width (mm, along the stored image's x axis) from FocalPlaneXResolution and its unit.

    FocalPlaneXResolution counts pixels of the full-size image (PixelXDimension when present) per unit.
    """
    res = _rational(sub.get(_TAG.FocalPlaneXResolution))
    unit = _int(sub.get(_TAG.FocalPlaneResolutionUnit))
    unit_mm = _FOCAL_PLANE_UNIT_MM.get(unit if unit is not None else 2)
    if not res or res <= 0 or unit_mm is None:
        return None
    full_w = _int(sub.get(_TAG.ExifImageWidth)) or raw_w
    return _in_range(full_w / res * unit_mm, 0.1, 200.0)


def load_rgb(path: str | Path) -> np.ndarray:
    """The photo's pixels as (H, W, 3) uint8 RGB, with the EXIF orientation applied.

    Raises :class:`PhotoError` (path + reason) if the file cannot be decoded.
    """
    path = Path(path)
    if not path.is_file():
        raise PhotoError(f"{path}: no such file")
    with _open_image(path) as img:
        img.load()
        upright = ImageOps.exif_transpose(img)
        return np.asarray(upright.convert("RGB"), dtype=np.uint8).copy()


def camera_for_photo(photo: Photo, hfov_deg: float | None = None) -> Equirectangular | Pinhole:
    """The camera model of a photo, in the pixels of the photo as displayed (after EXIF orientation).

    A full panorama (GPano equirectangular, or a 2:1 photo without GPano) is a 360° :class:`Equirectangular`
    (``hfov_deg`` does not apply to it). A GPano panorama that covers less than 360° × 180°, or of another
    projection (cylindrical, ...), is refused with :class:`PhotoError`.
    Otherwise a centred :class:`Pinhole` with square pixels whose horizontal field of view is ``hfov_deg``
    if given, else derived from EXIF (see :meth:`Photo.hfov_from_exif`). Raises :class:`PhotoError` when
    the field of view is unknown.
    """
    if photo.is_panorama:
        return Equirectangular(width=photo.width, height=photo.height)
    if photo.projection == "equirectangular":
        raise PhotoError(
            f"{photo.path}: a partial panorama (its GPano cropped area is smaller than the full 360° × 180° "
            "sphere); only full equirectangular panoramas are supported"
        )
    if photo.projection is not None:
        raise PhotoError(
            f"{photo.path}: GPano projection {photo.projection!r} is not supported (full equirectangular "
            "panoramas and ordinary photos are)"
        )
    if hfov_deg is not None:
        if not 0.0 < hfov_deg < 180.0:
            raise PhotoError(f"{photo.path}: horizontal field of view {hfov_deg}° is not between 0 and 180")
        return Pinhole.from_fov(photo.width, photo.height, hfov_deg)
    hfov = photo.hfov_from_exif()
    if hfov is None:
        raise PhotoError(
            f"{photo.path}: the field of view is unknown (no FocalLengthIn35mmFilm, nor FocalLength with "
            "FocalPlaneXResolution in EXIF); pass the horizontal field of view with --hfov"
        )
    return Pinhole.from_fov(photo.width, photo.height, hfov)
