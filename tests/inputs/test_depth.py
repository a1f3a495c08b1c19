"""Depth maps from files in the published formats, and flat-ground depth."""

import math

import cv2
import numpy as np
import pytest
import rasterio

from loc2.core.errors import DepthError
from loc2.core.geometry.cameras import Equirectangular, Pinhole
from loc2.core.inputs.depth import DepthMap, FileDepth, FlatGroundDepth, depth_file_for

TRUE = np.array([[0.0, 1.5, 12.25], [35.0, 2.0, 0.004]], dtype=np.float32)


def _write_all(tmp_path):
    mm = tmp_path / "pano_mm.png"
    cv2.imwrite(str(mm), np.round(TRUE * 1000).astype(np.uint16))
    k = tmp_path / "kitti.png"
    cv2.imwrite(str(k), np.round(TRUE * 256).astype(np.uint16))
    npy = tmp_path / "d.npy"
    np.save(npy, TRUE)
    tif = tmp_path / "d.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=3, height=2, count=1, dtype="float32") as ds:
        ds.write(TRUE, 1)
    return mm, k, npy, tif


def test_formats_read_to_metres_with_zero_invalid(tmp_path):
    mm, k, npy, tif = _write_all(tmp_path)
    pano, pin = Equirectangular(6, 3), Pinhole.from_fov(6, 4, 90)
    expected = TRUE.copy()
    expected[0, 0] = np.nan
    np.testing.assert_allclose(FileDepth(mm).read(pano), expected, atol=1e-3)  # inferred: millimetres
    np.testing.assert_allclose(FileDepth(k).read(pin), np.round(expected * 256) / 256)  # inferred: /256
    np.testing.assert_allclose(FileDepth(k, fmt="png_mm").read(pin), np.round(expected * 256) / 1000)
    np.testing.assert_allclose(FileDepth(npy).read(), expected)
    np.testing.assert_allclose(FileDepth(tif).read(), expected)


def test_bad_depth_files_are_named(tmp_path):
    with pytest.raises(DepthError, match="not found"):
        FileDepth(tmp_path / "none.png").read()
    rgb = tmp_path / "rgb.png"
    cv2.imwrite(str(rgb), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DepthError, match="rgb.png.*uint16"):
        FileDepth(rgb).read()
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"not numpy")
    with pytest.raises(DepthError, match="junk.npy"):
        FileDepth(junk).read()
    with pytest.raises(DepthError, match="unknown depth format"):
        FileDepth(rgb, fmt="exr")


def test_depth_size_must_fit_the_image(tmp_path):
    mm, *_ = _write_all(tmp_path)
    with pytest.raises(DepthError, match="aspect"):
        FileDepth(mm).depth_for(np.zeros((10, 10, 3), np.uint8), Equirectangular(10, 10))
    dm = FileDepth(mm).depth_for(np.zeros((20, 30, 3), np.uint8), Equirectangular(30, 20))
    assert dm.kind == "radial" and dm.metric


def test_depth_file_lookup(tmp_path):
    (tmp_path / "a.npy").write_bytes(b"")
    assert depth_file_for(tmp_path, tmp_path / "photos" / "a.jpg").path.name == "a.npy"
    with pytest.raises(DepthError, match="no depth map named b"):
        depth_file_for(tmp_path, "b.jpg")


def test_flat_ground_panorama_and_pinhole():
    pano = FlatGroundDepth(camera_height_m=2.0).depth_for(
        np.zeros((180, 360, 3), np.uint8), Equirectangular(360, 180)
    )
    assert not pano.metric and pano.kind == "radial"
    assert np.isnan(pano.depth_m[:91]).all()  # horizon and above
    row = 120  # θ = π·120.5/180 → 30.5° below the horizon
    assert pano.depth_m[row, 7] == pytest.approx(2.0 / math.sin(math.radians(30.5)), rel=1e-5)
    cam = Pinhole(fx=100, fy=100, cx=50, cy=40, width=100, height=80)
    pin = FlatGroundDepth(camera_height_m=1.5).depth_for(np.zeros((80, 100, 3), np.uint8), cam)
    assert pin.kind == "z" and np.isnan(pin.depth_m[:41]).all()
    assert pin.depth_m[70, 3] == pytest.approx(1.5 * 100 / 30.5, rel=1e-5)


def test_centred_tokens_take_the_depth_where_the_token_ray_points():
    # flat ground under a panorama: a pixel-centred token is lifted along its centre ray, so its depth must be
    # the ground distance along that ray, not along the ray of the token's top-left pixel
    cam = Equirectangular(1024, 512)
    dm = FlatGroundDepth(camera_height_m=1.6).depth_for(np.zeros((512, 1024, 3), np.uint8), cam)
    centred = dm.tokens(20, 40, max_depth=35.0, centred=True)
    theta, _ = cam.token_angles(20, 40, published_grid=False)
    along_centre_ray = 1.6 / np.sin(theta - math.pi / 2)
    ground_rows = np.flatnonzero(np.isfinite(centred[:, 0]))
    assert ground_rows.size >= 8
    np.testing.assert_allclose(
        centred[ground_rows], along_centre_ray[ground_rows, None].repeat(40, 1), rtol=0.03
    )
    corner = dm.tokens(20, 40, max_depth=35.0)  # the published weights' sampling: each token's top-left pixel
    near_horizon = ground_rows[1]  # its top-left pixel is 4.5° nearer the horizon than its centre
    assert corner[near_horizon, 0] > 1.3 * along_centre_ray[near_horizon]


def test_tokens_nearest_and_clipped():
    d = np.arange(16, dtype=np.float32).reshape(4, 4)
    dm = DepthMap(d, kind="radial")
    tok = dm.tokens(2, 2, max_depth=10.0)
    assert np.isnan(tok[0, 0])  # zero is invalid
    assert tok[0, 1] == 2.0 and tok[1, 0] == 8.0
    assert np.isnan(tok[1, 1])  # 10 reaches the clip
    assert DepthMap(d, kind="radial", max_depth=100.0).tokens(2, 2, max_depth=10.0)[1, 1] == 10.0
