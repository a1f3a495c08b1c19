"""The pipeline tests' scene (``tests/pipeline/conftest.py``'s ``scene`` fixture): a random 80 m orthophoto (EPSG:32632) with EXIF JPEGs, good and bad, and a tiny
random-weight model (a ViT-S/14 at 84 × 168 px; its poses are meaningless but deterministic)."""

from __future__ import annotations

import numpy as np
import pyproj
import rasterio
import torch
from PIL import Image
from rasterio.transform import from_origin

from loc2.core.localizer import Localizer
from loc2.core.model.checkpoints import save_checkpoint
from loc2.core.model.presets import VIGOR

TINY = VIGOR.replace(
    name="tiny", backbone="dinov2_vits14", embed_dim=384, ground_size_hw=(84, 168), aerial_size_px=84
)
ORIGIN = (465000.0, 5247000.0)  # EPSG:32632, west/north edge


def _dms(v: float):
    v = abs(v)
    d = int(v)
    m = int((v - d) * 60)
    return (d, m, (v - d - m / 60) * 3600)


def jpeg(path, lonlat=None, seed=0):
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 255, (128, 256, 3), dtype=np.uint8))
    exif = Image.Exif()
    if lonlat is not None:
        lon, lat = lonlat
        exif[0x8825] = {1: "N", 2: _dms(lat), 3: "E", 4: _dms(lon), 16: "T", 17: 30.0}
    im.save(path, exif=exif)


def make_scene(root):
    """Write the scene into the folder ``root`` and return it."""
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
    jpeg(photos / "a.jpg", to_ll.transform(ORIGIN[0] + 40, ORIGIN[1] - 40), seed=1)
    jpeg(photos / "b_nogps.jpg", None, seed=2)
    (photos / "c_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    jpeg(photos / "d.jpg", to_ll.transform(ORIGIN[0] + 30, ORIGIN[1] - 50), seed=3)
    jpeg(photos / "e_outside.jpg", to_ll.transform(ORIGIN[0] + 5000, ORIGIN[1]), seed=4)
    torch.manual_seed(0)
    loc = Localizer.from_preset(TINY, device="cpu")
    save_checkpoint(root / "tiny.pt", TINY, loc.backbone, loc.matcher, {"command": "test"})
    return root


def lonlat(dx, dy):
    """(lon, lat) of the point ``dx`` m east and ``dy`` m south of the orthophoto's north-west corner."""
    return pyproj.Transformer.from_crs(32632, 4326, always_xy=True).transform(ORIGIN[0] + dx, ORIGIN[1] - dy)
