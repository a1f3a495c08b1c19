"""Photo files of a synthetic city: JPEGs with EXIF GPS position, altitude, image direction, time and focal
length, as cameras write them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np


def _exif_dms(value_deg: float):
    """Degrees → (deg, min, sec) EXIF rationals, seconds to 1/10000 (exact integer arithmetic)."""
    from PIL.TiffImagePlugin import IFDRational

    total = int(round(abs(value_deg) * 3600 * 10000))
    deg, rem = divmod(total, 3600 * 10000)
    minutes, sec = divmod(rem, 60 * 10000)
    return IFDRational(deg, 1), IFDRational(minutes, 1), IFDRational(sec, 10000)


def write_jpeg_with_exif(
    path: str | Path,
    rgb: np.ndarray,
    lon: float,
    lat: float,
    altitude_m: float,
    heading_deg: float,
    timestamp: datetime,
    focal_35mm: int | None = None,
    quality: int = 92,
    model: str = "SyntheticCity",
) -> Path:
    """Write an RGB image as JPEG with EXIF GPS position, altitude, true-north image direction, time and
    (pinhole) 35 mm-equivalent focal length, through Pillow's Exif API. Returns the path."""
    from PIL import ExifTags, Image
    from PIL.TiffImagePlugin import IFDRational

    path = Path(path)
    gps_tags, base = ExifTags.GPS, ExifTags.Base
    exif = Image.Exif()
    exif[base.Make] = "Loc2 synthetic"
    exif[base.Model] = model
    exif[base.Orientation] = 1
    exif[ExifTags.IFD.GPSInfo] = {
        gps_tags.GPSVersionID: b"\x02\x03\x00\x00",
        gps_tags.GPSLatitudeRef: "N" if lat >= 0 else "S",
        gps_tags.GPSLatitude: _exif_dms(lat),
        gps_tags.GPSLongitudeRef: "E" if lon >= 0 else "W",
        gps_tags.GPSLongitude: _exif_dms(lon),
        gps_tags.GPSAltitudeRef: 0 if altitude_m >= 0 else 1,
        gps_tags.GPSAltitude: IFDRational(int(round(abs(altitude_m) * 100)), 100),
        gps_tags.GPSImgDirectionRef: "T",
        gps_tags.GPSImgDirection: IFDRational(int(round((heading_deg % 360.0) * 100)) % 36000, 100),
        gps_tags.GPSMapDatum: "WGS-84",
    }
    sub = {base.DateTimeOriginal: timestamp.strftime("%Y:%m:%d %H:%M:%S")}
    if focal_35mm is not None:
        sub[base.FocalLengthIn35mmFilm] = int(focal_35mm)
    exif[ExifTags.IFD.Exif] = sub
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgb, np.uint8)).save(path, "JPEG", quality=quality, exif=exif)
    return path
