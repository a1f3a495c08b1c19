"""A scene for the scale tests: a random GeoTIFF orthophoto, 40 random JPEG photos with EXIF GPS on two
orthophoto tiles, a tiny random-weight checkpoint (fast on two cores)."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import rasterio
import torch
from PIL import Image
from rasterio.transform import from_origin

from loc2.core.localizer import Localizer
from loc2.core.model.checkpoints import save_checkpoint
from loc2.core.model.presets import VIGOR

TINY = VIGOR.replace(  # a small CNN and narrow heads: a photo in a fraction of a second on one core
    name="tiny",
    backbone="cnn",
    embed_dim=32,
    desc_dim=16,
    head_widths=(16,),
    aerial_grid=15,
    ground_size_hw=(64, 128),
    aerial_size_px=64,
    published_grid=False,
    extra={"backbone_kwargs": {"embed_dim": 32, "width": 8, "stride": 16}},
)
ORIGIN = (465000.0, 5247000.0)  # EPSG:32632, the orthophoto's west/north edge
N_PHOTOS = 40
TILE_M = 40.0  # photos fall on two tiles of 40 m


def _dms(v: float) -> tuple[float, float, float]:
    v = abs(v)
    d = int(v)
    m = int((v - d) * 60)
    return (d, m, (v - d - m / 60) * 3600)


def write_photo(path, lonlat, seed: int) -> None:
    """A random 64 × 128 JPEG with an EXIF GPS position (and a 5 m horizontal error)."""
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 255, (64, 128, 3), dtype=np.uint8))
    exif = Image.Exif()
    lon, lat = lonlat
    exif[0x8825] = {1: "N", 2: _dms(lat), 3: "E", 4: _dms(lon), 16: "T", 17: float(seed * 37 % 360), 31: 2.0}
    image.save(path, exif=exif)


@pytest.fixture(scope="session")
def scale_scene(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    rng = np.random.default_rng(0)
    with rasterio.open(
        root / "ortho.tif",
        "w",
        driver="GTiff",
        width=800,
        height=800,
        count=3,
        dtype="uint8",
        crs="EPSG:32632",
        transform=from_origin(*ORIGIN, 0.1, 0.1),
    ) as ds:
        ds.write(rng.integers(0, 255, (3, 800, 800), dtype=np.uint8))
    to_ll = pyproj.Transformer.from_crs(32632, 4326, always_xy=True)
    photos = root / "photos"
    photos.mkdir()
    for i in range(N_PHOTOS):
        east = 20.0 + 40.0 * (i % 2) + (i // 2) * 0.5  # even photos on one tile, odd ones on the next
        write_photo(photos / f"p{i:03d}.jpg", to_ll.transform(ORIGIN[0] + east, ORIGIN[1] - 30.0), seed=i + 1)
    torch.manual_seed(0)
    loc = Localizer.from_preset(TINY, device="cpu")
    save_checkpoint(root / "tiny.pt", TINY, loc.backbone, loc.matcher, {"command": "test"})
    return root
