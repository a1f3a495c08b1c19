"""VIGOR and KITTI readers on tiny datasets written here in the public folder and label formats.

The fixture images carry their own ground truth: a red dot on the aerial tile where the camera stands, a blue
dot ahead of it (KITTI) and a bright column facing north in the panorama (VIGOR). Reading the dots back from
the prepared samples checks the published transformations independently of the formulas for t and R.
"""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from loc2.core.errors import DatasetError
from loc2.core.evaluation.datasets import collate_samples, parse_orientation
from loc2.core.evaluation.kitti import KITTI_CAMERA_GPS_SHIFT_M, KittiDataset, kitti_true_pose
from loc2.core.evaluation.vigor import VIGOR_METRES_PER_PIXEL, VigorDataset
from loc2.core.geometry.cameras import Equirectangular, Pinhole, pixel_to_aerial_xy
from loc2.core.geometry.pose import Similarity2D
from loc2.core.types import KITTI_METRES_PER_PIXEL_512

PANO_HW = (128, 256)
CITIES = ("NewYork", "Seattle", "SanFrancisco", "Chicago")
# (Δ1, Δ2) in pixels of the 640-px tile, one label line per city.
VIGOR_DELTAS = {
    "NewYork": (40.0, -60.0),
    "Seattle": (-100.0, 25.0),
    "SanFrancisco": (12.0, 150.0),
    "Chicago": (-70.0, -90.0),
}
KITTI_DATE = "2011_09_26"
KITTI_DRIVE = "2011_09_26_drive_0005_sync"
KITTI_RAW_HW = (375, 1242)
# frame → (heading yaw rad, sx, sy, θ)
KITTI_FRAMES = {
    "0000000000.png": (0.3, 0.25, -0.5, 0.4),
    "0000000001.png": (-2.2, -0.8, 0.6, -0.9),
    "0000000002.png": (1.9, 0.05, 0.9, 0.75),
}
P_RECT_02 = (721.5377, 0.0, 609.5593, 44.85728, 0.0, 721.5377, 172.854, 0.2163791, 0.0, 0.0, 1.0, 0.002745884)


def _dot(img: np.ndarray, col: float, row: float, colour, radius: int = 2) -> None:
    """A filled square centred on continuous pixel coordinates (pixel centres at +0.5)."""
    c, r = int(math.floor(col)), int(math.floor(row))
    img[r - radius : r + radius + 1, c - radius : c + radius + 1] = colour


def write_png(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb)
    assert ok, path


def write_vigor(root: Path, seed: int = 0) -> Path:
    """Four cities, one panorama each: panorama (JPEG), tile (PNG), UniK3D depth (uint16 mm), labels."""
    rng = np.random.default_rng(seed)
    h, w = PANO_HW
    for i, city in enumerate(CITIES):
        pano = rng.integers(0, 40, (h, w, 3), dtype=np.uint8)
        pano[:, w // 2 - 2 : w // 2 + 2] = (
            255  # north: the band is centred on φ = π (between columns w/2−1, w/2)
        )
        write_png(root / city / "panorama" / f"pano_{city}.jpg", pano)
        depth_mm = np.tile((5000 + 10 * np.arange(w)).astype(np.uint16), (h, 1))
        depth_mm[: h // 4] = 0  # sky
        write_png(root / city / "unik3d_depth" / f"pano_{city}.png", depth_mm)
        d1, d2 = VIGOR_DELTAS[city]
        tile = np.full((640, 640, 3), 60, dtype=np.uint8)
        tile[::7] = 80  # some texture
        _dot(tile, 320 - d2, 320 + d1, (255, 0, 0), radius=3)  # camera: row 320 + Δ1, column 320 − Δ2
        write_png(root / city / "satellite" / f"tile_{city}_{i}.png", tile)
        labels = root / "splits_new" / city
        labels.mkdir(parents=True, exist_ok=True)
        negatives = [f"neg_{city}_{k}.png" for k in range(3)]
        (labels / "satellite_list.txt").write_text("\n".join([f"tile_{city}_{i}.png", *negatives]) + "\n")
        line = f"pano_{city}.jpg tile_{city}_{i}.png {d1} {d2} " + " ".join(
            f"{n} 10.0 -5.0" for n in negatives
        )
        for name in (
            "same_area_balanced_test.txt",
            "same_area_balanced_train.txt",
            "pano_label_balanced.txt",
        ):
            (labels / name).write_text(line + "\n")
    return root


def kitti_camera_in_tile(heading_rad: float, ahead_m: float = 0.0) -> tuple[float, float]:
    """(col, row) of the camera (or a point ``ahead_m`` in front of it) in the 512-px tile centred on the GPS."""
    fwd = np.array([math.cos(heading_rad), -math.sin(heading_rad)])  # yaw counter-clockwise from east
    right = np.array([math.sin(heading_rad), math.cos(heading_rad)])
    offset_m = (KITTI_CAMERA_GPS_SHIFT_M[0] + ahead_m) * fwd + KITTI_CAMERA_GPS_SHIFT_M[1] * right
    p = 256.0 + offset_m / KITTI_METRES_PER_PIXEL_512
    return float(p[0]), float(p[1])


def write_kitti(root: Path, seed: int = 0) -> Path:
    """One drive: calib, images, oxts, satellite tiles with dots, depth (value/256 m), test1/test2 files."""
    rng = np.random.default_rng(seed)
    date_dir = root / "raw_data" / KITTI_DATE
    date_dir.mkdir(parents=True, exist_ok=True)
    (date_dir / "calib_cam_to_cam.txt").write_text(
        "calib_time: 09-Jan-2012 13:57:47\n"
        "P_rect_00: 7.215377e+02 0.0 6.095593e+02 0.0 0.0 7.215377e+02 1.728540e+02 0.0 0.0 0.0 1.0 0.0\n"
        "P_rect_02: " + " ".join(f"{v:e}" for v in P_RECT_02) + "\n"
    )
    lines = []
    for frame, (yaw, sx, sy, theta) in KITTI_FRAMES.items():
        drive = date_dir / KITTI_DRIVE
        img = cv2.resize(rng.integers(0, 255, (25, 83, 3), dtype=np.uint8), KITTI_RAW_HW[::-1])
        write_png(drive / "image_02" / "data" / frame, img)
        oxts = [49.01, 8.43, 116.4, 0.01, -0.02, yaw] + [0.1] * 24
        (drive / "oxts" / "data").mkdir(parents=True, exist_ok=True)
        (drive / "oxts" / "data" / frame.replace(".png", ".txt")).write_text(
            " ".join(f"{v:.6f}" for v in oxts)
        )
        tile = np.full((512, 512, 3), 70, dtype=np.uint8)
        tile[:, ::9] = 90
        _dot(tile, *kitti_camera_in_tile(yaw), (255, 0, 0), radius=2)
        _dot(tile, *kitti_camera_in_tile(yaw, ahead_m=10.0), (0, 0, 255), radius=2)
        write_png(root / "satmap" / KITTI_DATE / KITTI_DRIVE / frame, tile)
        depth = np.tile(
            (np.linspace(3, 60, KITTI_RAW_HW[0]) * 256).astype(np.uint16)[:, None], (1, KITTI_RAW_HW[1])
        )
        write_png(root / "depth_anythingv2_depth" / KITTI_DATE / KITTI_DRIVE / "depth" / frame, depth)
        lines.append(f"{KITTI_DATE}/{KITTI_DRIVE}/{frame} {sx:.4f} {sy:.4f} {theta:.4f}")
    (root / "test1_files.txt").write_text("\n".join(lines) + "\n")
    (root / "test2_files.txt").write_text("\n".join(lines[:2]) + "\n")
    return root


def find_dot(img: np.ndarray, channel: int) -> tuple[float, float]:
    """Centroid (col, row; pixel centres at +0.5) of the pixels dominated by one colour channel."""
    others = [c for c in range(3) if c != channel]
    weight = np.clip(img[..., channel].astype(float) - img[..., others].astype(float).max(-1) - 60, 0, None)
    rows, cols = np.nonzero(weight)
    assert len(rows), "dot not found"
    wts = weight[rows, cols]
    return float(np.average(cols, weights=wts) + 0.5), float(np.average(rows, weights=wts) + 0.5)


def north_column_heading_deg(pano: np.ndarray) -> float:
    """Camera heading (clockwise from north) from the bright north band of a panorama."""
    w = pano.shape[1]
    bright = (pano.astype(float).mean(-1) > 200).sum(0).astype(float)
    phi = 2 * math.pi * (np.arange(w) + 0.5) / w
    phi_north = math.atan2((bright * np.sin(phi)).sum(), (bright * np.cos(phi)).sum())
    return math.degrees(math.pi - phi_north) % 360


# ------------------------------------------------------------------------------------------------ VIGOR
def test_vigor_known_orientation_ground_truth_by_hand(vigor_root):
    ds = VigorDataset(vigor_root, "same", "known", ground_size_hw=(64, 128), aerial_size_px=630)
    assert len(ds) == 4
    s = ds[0]  # NewYork: Δ = (40, −60) px at 0.113248 m/px
    assert s.name == "NewYork/panorama/pano_NewYork.jpg"
    np.testing.assert_allclose(s.pose_true.t, [40 * 0.113248, 60 * 0.113248])
    np.testing.assert_allclose(s.pose_true.R, np.eye(2))
    assert s.aerial_footprint_m == pytest.approx(640 * 0.113248)
    assert s.ground_rgb.shape == (64, 128, 3) and s.aerial_rgb.shape == (630, 630, 3)
    assert isinstance(s.camera, Equirectangular) and (s.camera.width, s.camera.height) == (128, 64)
    assert s.depth.kind == "radial" and s.depth.metric
    # the 128 × 256 depth map is resized to the panorama's 64 × 128 by nearest neighbour (column j ← 2j)
    np.testing.assert_allclose(s.depth.depth_m[-1, :3], [5.0, 5.02, 5.04], atol=1e-6)
    assert np.isnan(s.depth.depth_m[0]).all()  # zero = invalid


def test_vigor_dot_on_the_resized_tile_is_at_t(vigor_root):
    ds = VigorDataset(vigor_root, "same", "known", ground_size_hw=None, aerial_size_px=630)
    for i in range(len(ds)):
        s = ds[i]
        xy = pixel_to_aerial_xy(np.array(find_dot(s.aerial_rgb, 0)), s.aerial_footprint_m, 630)
        np.testing.assert_allclose(xy, s.pose_true.t, atol=0.15)  # ≈ 1 px of 0.115 m


def test_vigor_roll_matches_rotation(vigor_root):
    """Rolling by round(r·W) columns ↔ R = rotation by 2πr: the north band gives back R's heading."""
    ds = VigorDataset(vigor_root, "same", "unknown", seed=3, ground_size_hw=None)
    rolls = []
    for i in range(len(ds)):
        s = ds[i]
        r = s.meta["roll_fraction"]
        rolls.append(r)
        assert -0.5 <= r <= 0.5
        np.testing.assert_allclose(
            s.pose_true.R,
            [
                [math.cos(2 * math.pi * r), -math.sin(2 * math.pi * r)],
                [math.sin(2 * math.pi * r), math.cos(2 * math.pi * r)],
            ],
        )
        heading = north_column_heading_deg(s.ground_rgb)
        diff = (heading - s.pose_true.heading_aerial_deg + 180) % 360 - 180
        assert abs(diff) < 360 / PANO_HW[1] * 1.5, (heading, s.pose_true.heading_aerial_deg)
        # depth rolled with the panorama: column j holds what column j − k held
        k = int(round(r * PANO_HW[1]))
        j = np.arange(PANO_HW[1])
        np.testing.assert_allclose(s.depth.depth_m[-1], 5 + 0.01 * ((j - k) % PANO_HW[1]), atol=1e-5)
    assert len(set(np.round(rolls, 6))) == 4
    again = VigorDataset(vigor_root, "same", "unknown", seed=3, ground_size_hw=None, limit=2)
    assert [again[i].meta["roll_fraction"] for i in range(2)] == rolls[
        :2
    ]  # seeded; the limit changes nothing
    other = VigorDataset(vigor_root, "same", "unknown", seed=4, ground_size_hw=None)
    assert other[0].meta["roll_fraction"] != rolls[0]


def test_vigor_cross_area_reads_the_test_cities(vigor_root):
    test = VigorDataset(vigor_root, "cross", "known", ground_size_hw=(32, 64), aerial_size_px=64)
    assert [e.city for e in test.entries] == ["SanFrancisco", "Chicago"]
    train = VigorDataset(vigor_root, "cross", "known", train=True, ground_size_hw=(32, 64), aerial_size_px=64)
    assert [e.city for e in train.entries] == ["NewYork", "Seattle"]
    s = test[1]
    np.testing.assert_allclose(s.pose_true.t, np.array([-70.0, 90.0]) * VIGOR_METRES_PER_PIXEL["Chicago"])


def test_vigor_bad_labels_name_the_file(vigor_root, tmp_path):
    root = write_vigor(tmp_path / "v")
    bad = root / "splits_new" / "Chicago" / "pano_label_balanced.txt"
    bad.write_text("pano.jpg tile.png 1 2\n")
    with pytest.raises(DatasetError, match="pano_label_balanced.txt.*13 fields"):
        VigorDataset(root, "cross")
    bad.write_text("pano.jpg unlisted.png 1 2 a 1 1 b 1 1 c 1 1\n")
    with pytest.raises(DatasetError, match="unlisted.png is not listed"):
        VigorDataset(root, "cross")
    (root / "NewYork" / "unik3d_depth" / "pano_NewYork.png").unlink()
    ds = VigorDataset(root, "same", "known", ground_size_hw=(32, 64))
    with pytest.raises(DatasetError, match="pano_NewYork.png: depth map not found"):
        ds[0]
    assert VigorDataset(root, "same", "known", depth_dir=None, ground_size_hw=(32, 64))[0].depth is None
    with pytest.raises(DatasetError, match="root folder not found"):
        VigorDataset(tmp_path / "nowhere")


def test_orientation_values():
    assert parse_orientation("known", "vigor") == 0 and parse_orientation("unknown", "kitti") == 180
    assert parse_orientation("10", "kitti") == 10 and parse_orientation(None, "kitti") == 10
    assert parse_orientation(None, "vigor") == 180
    with pytest.raises(DatasetError):
        parse_orientation("sideways", "vigor")
    with pytest.raises(DatasetError):
        parse_orientation(270, "kitti")


# ------------------------------------------------------------------------------------------------ KITTI
def test_kitti_ground_truth_by_hand():
    # sx = 0.5, sy = 0, α = 0: the camera lies 10 m to the right (east) of the centre, heading east.
    pose = kitti_true_pose(0.5, 0.0, 0.0)
    np.testing.assert_allclose(pose.t, [0.0, 10.0], atol=1e-12)
    np.testing.assert_allclose(pose.R, Similarity2D.from_heading(90.0).R, atol=1e-12)
    # sy = 0.25 moves it 5 m up (north): x = −5.
    t = kitti_true_pose(0.0, 0.25, 0.0).t
    np.testing.assert_allclose(t, [-5.0, 0.0], atol=1e-12)
    # α = 90°: the image turns counter-clockwise, so "east" becomes "up" and the heading 0° (up).
    pose = kitti_true_pose(0.5, 0.0, 90.0)
    np.testing.assert_allclose(pose.t, [-10.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(pose.R, np.eye(2), atol=1e-12)


def test_kitti_sample_fields(kitti_root):
    ds = KittiDataset(kitti_root, "same", 10)
    assert len(ds) == 3 and len(KittiDataset(kitti_root, "cross", 10)) == 2
    s = ds[0]
    assert s.ground_rgb.shape == (364, 1232, 3) and s.aerial_rgb.shape == (504, 504, 3)
    assert isinstance(s.camera, Pinhole)
    assert s.camera.fx == pytest.approx(721.5377 * 1232 / 1242)
    assert s.camera.cx == pytest.approx(609.5593 * 1232 / 1242)
    assert s.camera.fy == pytest.approx(721.5377 * 364 / 375)
    assert s.camera.cy == pytest.approx(172.854 * 364 / 375)
    assert s.aerial_footprint_m == pytest.approx(100.26, abs=0.01)
    assert s.depth.kind == "z" and s.depth.metric
    assert s.depth.depth_m.shape == (364, 1232)  # resized with the image (the raw 375 × 1242 aspect differs)
    np.testing.assert_allclose(np.nanmin(s.depth.depth_m), 3.0, atol=0.01)
    np.testing.assert_allclose(np.nanmax(s.depth.depth_m), 60.0, atol=0.2)
    assert s.meta["rotation_deg"] == pytest.approx(0.4 * 10)
    pose = kitti_true_pose(0.25, -0.5, 4.0)
    np.testing.assert_allclose(s.pose_true.t, pose.t)
    np.testing.assert_allclose(s.pose_true.R, pose.R)
    assert s.prior_heading_aerial_deg == 90.0


@pytest.mark.parametrize("orientation", [10.0, 180.0])
def test_kitti_dots_follow_the_published_transformations(kitti_root, orientation):
    """Camera dot at t, and the dot 10 m ahead in the direction R gives, after rotation/shift/crop/resize."""
    ds = KittiDataset(kitti_root, "same", orientation, ground_size_hw=(91, 308), depth_dir=None)
    for i in range(len(ds)):
        s = ds[i]
        cam = pixel_to_aerial_xy(np.array(find_dot(s.aerial_rgb, 0)), s.aerial_footprint_m, 504)
        ahead = pixel_to_aerial_xy(np.array(find_dot(s.aerial_rgb, 2)), s.aerial_footprint_m, 504)
        np.testing.assert_allclose(cam, s.pose_true.t, atol=0.25)  # ≈ 1 px of 0.2 m
        direction = (ahead - cam) / np.linalg.norm(ahead - cam)
        expected = s.pose_true.R @ np.array([-1.0, 0.0])  # the camera looks along −x of its BEV frame
        assert math.degrees(math.acos(np.clip(direction @ expected, -1, 1))) < 2.5
        assert s.depth is None


def test_kitti_errors_name_the_file(kitti_root, tmp_path):
    root = write_kitti(tmp_path / "k")
    oxts = root / "raw_data" / KITTI_DATE / KITTI_DRIVE / "oxts" / "data" / "0000000001.txt"
    oxts.write_text("1 2 3")
    ds = KittiDataset(root, "same", 10)
    with pytest.raises(DatasetError, match="0000000001.txt: expected at least 6 numbers"):
        ds[1]
    (root / "raw_data" / KITTI_DATE / "calib_cam_to_cam.txt").write_text("P_rect_00: 1 2 3\n")
    with pytest.raises(DatasetError, match="calib_cam_to_cam.txt: no P_rect_02"):
        ds[0]
    (root / "test2_files.txt").write_text("only/two.png 1 2 3\n")
    with pytest.raises(DatasetError, match="test2_files.txt"):
        KittiDataset(root, "cross")
    with pytest.raises(DatasetError, match="split file not found"):
        KittiDataset(root, "same", split_file=root / "missing.txt")


def test_dataloader_with_workers_batches_samples(kitti_root):
    ds = KittiDataset(kitti_root, "same", 10, ground_size_hw=(91, 308), aerial_size_px=126)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_samples)
    batches = list(loader)
    assert [len(b) for b in batches] == [2, 1]
    assert [s.index for b in batches for s in b] == [0, 1, 2]
    np.testing.assert_array_equal(batches[0][1].aerial_rgb, ds[1].aerial_rgb)
