"""Real test data for the plugin tests: a synthetic city and extra bad photos.

The city comes from ``loc2.core.synthetic.generate_dataset`` (GeoTIFF orthophoto in UTM 32N, EPSG:32632,
near Zurich; JPEG photos with EXIF GPS and heading priors; depth maps). :func:`write_ortho` and
:func:`write_photo` write a plain textured GeoTIFF (optionally without CRS) and a JPEG panorama with or
without GPS for the bad-input cases. The plugin tests run the shipped demo model on it (a randomly
initialised model found a pose only by luck, which changed with the CPU).
"""

from __future__ import annotations

import csv
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import pyproj
import rasterio
from PIL import ExifTags, Image
from rasterio.transform import from_origin

CRS = "EPSG:32632"
ORIGIN_XY = (465_000.0, 5_246_120.0)  # north-west corner of the orthophoto, metres
RES_M = 0.5
SIZE_PX = 240
GPS = ExifTags.GPS


def write_ortho(path: Path, seed: int = 0, crs: str | None = CRS) -> Path:
    """A 3-band uint8 GeoTIFF of coloured blocks and noise (no CRS when ``crs`` is None)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(40, 220, (3, SIZE_PX // 12, SIZE_PX // 12)).astype(np.float64)
    data = np.kron(blocks, np.ones((12, 12)))
    data += rng.normal(0, 12, data.shape)
    data[:, 110:130, :] = 70  # an east-west street
    data[:, :, 110:130] = 70  # a north-south street
    data = np.clip(data, 0, 255).astype(np.uint8)
    profile = dict(driver="GTiff", width=SIZE_PX, height=SIZE_PX, count=3, dtype="uint8")
    profile["transform"] = from_origin(ORIGIN_XY[0], ORIGIN_XY[1], RES_M, RES_M)
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    return path


def lonlat_at(dx_m: float, dy_m: float) -> tuple[float, float]:
    """WGS84 lon/lat of the point ``dx_m`` east and ``dy_m`` south of the orthophoto's north-west corner."""
    to_wgs84 = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    return to_wgs84.transform(ORIGIN_XY[0] + dx_m, ORIGIN_XY[1] - dy_m)


def _dms(value: float) -> tuple[Fraction, Fraction, Fraction]:
    value = abs(value)
    d = int(value)
    m = int((value - d) * 60)
    s = (value - d - m / 60) * 3600
    return (Fraction(d), Fraction(m), Fraction(round(s * 10000), 10000))


def write_photo(
    path: Path,
    lonlat: tuple[float, float] | None,
    heading_deg: float | None = None,
    size_wh: tuple[int, int] = (336, 168),
    seed: int = 0,
) -> Path:
    """A JPEG panorama (sky above, textured ground below) with EXIF GPS when ``lonlat`` is given."""
    rng = np.random.default_rng(seed)
    w, h = size_wh
    pixels = np.empty((h, w, 3), np.uint8)
    pixels[: h // 2] = (150, 190, 235)
    pixels[h // 2 :] = rng.integers(30, 200, (h - h // 2, w, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    if lonlat is not None:
        lon, lat = lonlat
        gps = {
            GPS.GPSLatitudeRef: "N" if lat >= 0 else "S",
            GPS.GPSLatitude: _dms(lat),
            GPS.GPSLongitudeRef: "E" if lon >= 0 else "W",
            GPS.GPSLongitude: _dms(lon),
        }
        if heading_deg is not None:
            gps[GPS.GPSImgDirectionRef] = "T"
            gps[GPS.GPSImgDirection] = Fraction(round(heading_deg * 100), 100)
        exif[ExifTags.IFD.GPSInfo] = gps
    image.save(path, format="JPEG", quality=90, exif=exif)
    return path


@contextmanager
def torch_threads_restored():
    """Restore PyTorch's CPU thread count afterwards (the plugin sets it when it loads a CPU model)."""
    import torch

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass
class City:
    """The test data set: a synthetic city (``core.synthetic.generate_dataset``) plus two bad photos.

    ``positions`` / ``headings`` are the priors written into each photo's EXIF (lon, lat; degrees from true
    north), ``truth_xy`` the true camera positions in the orthophoto CRS, by photo file name.
    """

    ortho: Path
    photos_dir: Path
    depth_dir: Path
    located: list[Path] = field(default_factory=list)  # photos with GPS (localizable)
    no_gps: Path | None = None
    corrupt: Path | None = None
    positions: dict[str, tuple[float, float]] = field(default_factory=dict)
    headings: dict[str, float] = field(default_factory=dict)
    truth_xy: dict[str, tuple[float, float]] = field(default_factory=dict)


def make_city(folder: Path, n_panoramas: int = 2, n_pinhole: int = 0, with_bad: bool = True) -> City:
    """A small synthetic city under ``folder`` (100 m square, 0.25 m/px orthophoto in UTM 32N, small
    photos with EXIF GPS and heading priors, depth maps), optionally with a photo without GPS and a corrupt
    one added to the photo folder."""
    from loc2.core.synthetic.datasets import generate_dataset

    out = generate_dataset(
        folder,
        seed=3,
        n_panoramas=n_panoramas,
        n_pinhole=n_pinhole,
        pano_size_hw=(128, 256),
        pinhole_size_hw=(96, 288),
        size_m=100.0,
        cell_m=0.25,
        ortho_mpp=0.25,
        max_range_m=40.0,
    )
    city = City(ortho=out / "ortho.tif", photos_dir=out / "photos", depth_dir=out / "depth")
    with open(out / "truth.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            path = out / row["photo"]
            city.located.append(path)
            city.positions[path.name] = (float(row["prior_lon"]), float(row["prior_lat"]))
            city.headings[path.name] = float(row["prior_heading_deg"])
            city.truth_xy[path.name] = (float(row["x"]), float(row["y"]))
    city.located.sort()
    if with_bad:
        city.no_gps = write_photo(city.photos_dir / "zz_no_gps.jpg", None, seed=9)
        city.corrupt = city.photos_dir / "zz_corrupt.jpg"
        city.corrupt.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return city
