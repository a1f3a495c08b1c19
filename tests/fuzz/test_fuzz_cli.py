"""Bad inputs driven the way users drive them: ``loc2 localize`` on the demo city.

A batch of good photos with bad ones beside them (truncated, zero-byte, wrong extension, random bytes, a
huge declared size, NaN / 0/0 / out-of-range GPS, heading 720°, orientation 9, a position off the
orthophoto) localizes every good photo and writes every bad one as a ``failed`` row naming it, with no
traceback. Bad orthophotos, options, priors files and outputs are refused before any work with a message
naming the input (in-process, fast). The two commands these tests use are in the module's constants.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import ExifTags, Image, TiffImagePlugin
from plugin_fixtures import lonlat_at, make_city, write_photo
from rasterio.transform import Affine

from loc2.core.cli import main
from loc2.core.output.formats import read_layer, read_poses
from loc2.core.types import LAYER_PRIORS, LAYERS

from .test_fuzz_photos import GOOD, _png_with_size

GPS = ExifTags.GPS
BATCH_SECONDS = 600  # the whole CLI batch on two shared cores (about 60 s alone)


def loc2_command() -> list[str]:
    script = Path(sys.executable).with_name("loc2")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "loc2.core.cli"]


def _exif_photo(path: Path, gps: dict, orientation: int | None = None) -> Path:
    exif = Image.Exif()
    exif[ExifTags.IFD.GPSInfo] = gps
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    Image.new("RGB", (64, 32), (90, 120, 150)).save(path, format="JPEG", exif=exif)
    return path


def write_bad_photos(folder: Path) -> list[Path]:
    """One of each kind of bad photo in ``folder``; returns their paths."""
    r = TiffImagePlugin.IFDRational
    bad = {
        "bad_truncated.jpg": GOOD[: len(GOOD) // 2],
        "bad_empty.jpg": b"",
        "bad_text.jpg": b"photo,lon,lat\n",
        "bad_random.tif": bytes(range(256)) * 3,
        "bad_huge.png": _png_with_size(2**31 - 1, 2**31 - 1),
    }
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    _exif_photo(folder / "bad_zero_over_zero.jpg", {GPS.GPSLatitude: (r(0, 0), r(0, 0), r(0, 0))})
    _exif_photo(
        folder / "bad_lat_999.jpg",
        {
            GPS.GPSLatitudeRef: "N",
            GPS.GPSLatitude: (r(999), r(0), r(0)),
            GPS.GPSLongitude: (r(8), r(0), r(0)),
        },
    )
    _exif_photo(
        folder / "bad_heading_720_orientation_9.jpg",
        {GPS.GPSImgDirection: r(720), GPS.GPSImgDirectionRef: "T"},
        orientation=9,
    )
    write_photo(folder / "bad_off_the_ortho.jpg", lonlat_at(5_000.0, 5_000.0), heading_deg=10.0)
    return sorted(p for p in folder.iterdir() if p.name.startswith("bad_"))


@pytest.mark.slow
def test_a_batch_localizes_every_good_photo_beside_bad_ones(tmp_path):
    city = make_city(tmp_path / "city", n_panoramas=2, with_bad=False)
    bad = write_bad_photos(city.photos_dir)
    out = tmp_path / "r.gpkg"
    args = ["localize", "--ortho", str(city.ortho), "--images", str(city.photos_dir), "--out", str(out)]
    args += ["--device", "cpu", "--search-radius", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    t0 = time.monotonic()
    done = subprocess.run(
        loc2_command() + args, capture_output=True, text=True, timeout=BATCH_SECONDS, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr + done.stdout
    poses = read_poses(out).set_index("photo")
    good = [str(p) for p in city.located]
    assert sorted(poses.index) == sorted(good + [str(p) for p in bad])  # every photo exactly once
    assert (poses.loc[good, "status"] == "ok").all()
    for path in bad:
        row = poses.loc[str(path)]
        assert row["status"] == "failed" and path.name in row["message"], (path.name, row["message"])
    for layer in LAYERS[1:]:
        try:
            frame = read_layer(out, layer)
        except Exception:  # noqa: BLE001 - the matches layer is not written without --matches
            continue
        allowed = set(poses.index) if layer == LAYER_PRIORS else set(good)  # a failed photo keeps its prior
        assert set(frame["photo"]) <= allowed, layer
    summary = done.stderr.strip().splitlines()[-1]
    assert f"{len(good)} of {len(good) + len(bad)} photos localized, {len(bad)} failed" in summary
    assert time.monotonic() - t0 < BATCH_SECONDS


def _ortho(
    path: Path, transform: Affine | None = None, crs: str | None = "EPSG:32632", size: int = 8
) -> Path:
    profile = dict(driver="GTiff", width=size, height=size, count=1, dtype="uint16")
    profile["transform"] = transform or Affine(0.5, 0, 465_000, 0, -0.5, 5_246_120)
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(np.full((1, size, size), 1000, np.uint16))
    return path


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return make_city(tmp_path_factory.mktemp("city"), n_panoramas=2, with_bad=False)


def _bad_orthos(tmp: Path) -> dict[str, tuple[Path, str]]:
    text = tmp / "ortho.tif"
    text.write_text("not a raster")
    return {
        "no CRS": (_ortho(tmp / "nocrs.tif", crs=None), "coordinate reference system"),
        "rotated": (_ortho(tmp / "rot.tif", Affine(0.5, 0.1, 465_000, 0.1, -0.5, 5_246_120)), "rotation"),
        "not a raster": (text, "cannot be read as a raster"),
        "geocentric CRS": (_ortho(tmp / "geocent.tif", crs="EPSG:4978"), "neither projected nor geographic"),
    }


def test_bad_orthophotos_are_refused_naming_them(city, tmp_path, capsys):
    photo = str(city.located[0])
    for name, (ortho, needle) in _bad_orthos(tmp_path).items():
        args = ["localize", "--ortho", str(ortho), "--images", photo, "--out", str(tmp_path / f"{name}.gpkg")]
        assert main([*args, "--device", "cpu"]) == 1, name
        err = capsys.readouterr().err
        assert str(ortho) in err and needle in err, (name, err)
        assert not (tmp_path / f"{name}.gpkg").exists()


@pytest.mark.parametrize(
    ("option", "needle"),
    [
        (["--search-radius", "-5"], "search radius"),
        (["--search-radius", "nan"], "search radius"),
        (["--search-radius", "1e9"], "search radius"),
        (["--hfov", "0"], "field of view"),
        (["--hfov", "360"], "field of view"),
        (["--camera-height", "0"], "camera height"),
        (["--camera-height", "-1.6"], "camera height"),
        (["--camera-height", "inf"], "camera height"),
    ],
)
def test_bad_options_are_refused_naming_them(city, tmp_path, capsys, option, needle):
    args = ["localize", "--ortho", str(city.ortho), "--images", str(city.located[0])]
    assert main([*args, "--out", str(tmp_path / "r.gpkg"), "--device", "cpu", *option]) == 1
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "r.gpkg").exists()


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"name,size\n", "lacks column(s) photo, lon, lat"),
        (b"photo,lon,lat\na.jpg,8.5,999\n", "line 2"),
        (b"photo,lon,lat\na.jpg,nan,47\n", "not finite"),
        (b"photo,lon,lat,crs\na.jpg,1,2,EPSG:999999\n", "unknown CRS"),
        (b"photo;lon;lat\n\xff\xfe.jpg;8;47\n", "cannot be read"),
        (b"", "empty"),
    ],
)
def test_bad_priors_files_are_refused_naming_them(city, tmp_path, capsys, content, needle):
    priors = tmp_path / "priors.csv"
    priors.write_bytes(content)
    args = [
        "localize",
        "--ortho",
        str(city.ortho),
        "--priors",
        str(priors),
        "--out",
        str(tmp_path / "r.gpkg"),
    ]
    assert main([*args, "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert str(priors) in err and needle in err, err


def test_bad_outputs_are_refused_before_any_work(city, tmp_path, capsys):
    """A folder, a place under a file, a missing folder, an existing non-GeoPackage, another's CSV."""
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    not_gpkg = tmp_path / "photo.gpkg"
    not_gpkg.write_bytes(GOOD)
    foreign = tmp_path / "table.csv"
    foreign.write_text("id,name\n1,x\n")
    cases = {
        tmp_path: "is a folder",
        a_file / "r.gpkg": "is not a folder",
        tmp_path / "missing" / "r.gpkg": "does not exist",
        not_gpkg: "not a readable GeoPackage",
        foreign: "already holds results",
    }
    base = ["localize", "--ortho", str(city.ortho), "--images", str(city.located[0]), "--device", "cpu"]
    for out, needle in cases.items():
        before = sorted(tmp_path.rglob("*"))
        assert main([*base, "--out", str(out)]) == 1, out
        err = capsys.readouterr().err
        assert needle in err and str(out) in err, (out, err)
        assert sorted(tmp_path.rglob("*")) == before  # nothing written, nothing removed
    assert not_gpkg.read_bytes() == GOOD
    for out in (not_gpkg, foreign):  # appending to them is refused too
        assert main([*base, "--out", str(out), "--resume"]) == 1
        assert str(out) in capsys.readouterr().err


def test_an_unreadable_model_file_is_refused_without_unsafe_advice(city, tmp_path, capsys):
    out = tmp_path / "r.gpkg"
    for name, data in {
        "garbage.pt": bytes(range(256)) * 4,
        "zip.pt": b"PK\x03\x04junk",
        "empty.pt": b"",
    }.items():
        model = tmp_path / name
        model.write_bytes(data)
        args = ["localize", "--ortho", str(city.ortho), "--images", str(city.located[0]), "--out", str(out)]
        assert main([*args, "--model", str(model), "--device", "cpu"]) == 1
        err = capsys.readouterr().err
        assert str(model) in err and "not a readable PyTorch weights file" in err, err
        assert "weights_only=False" not in err and "weights_only` set to `False" not in err, err
        assert not out.exists()  # the output is touched only once the model is loaded
