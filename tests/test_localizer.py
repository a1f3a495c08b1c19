"""The whole match–lift–align pipeline on small random networks, on the CPU."""

import numpy as np
import pytest
import torch
from pipeline_scene import TINY

from loc2.core.errors import CheckpointError, DepthError, ImageError, ModelNotFoundError
from loc2.core.geometry.cameras import TOKEN_SHIFTS, Equirectangular
from loc2.core.geometry.lifting import lift_tokens
from loc2.core.geometry.pose import Similarity2D
from loc2.core.inputs.depth import DepthMap, FlatGroundDepth
from loc2.core.localizer import GroundView, Localizer
from loc2.core.model.checkpoints import read_checkpoint, save_checkpoint
from loc2.core.model.runtime import describe_device, resolve_device
from loc2.core.types import STATUS_NO_VALID_DEPTH


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Localizer.from_preset(TINY, device="cpu")


def _images(seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (120, 240, 3), dtype=np.uint8), rng.integers(
        0, 255, (100, 100, 3), dtype=np.uint8
    )


def test_end_to_end_result_is_well_formed(tiny):
    ground, aerial = _images()
    res = tiny.localize(ground, aerial, 72.0, FlatGroundDepth(), generator=torch.Generator().manual_seed(0))
    assert res.ok and res.message == ""
    pose = res.pose
    assert pose.t.shape == (2,) and np.isfinite(pose.t).all()
    assert np.allclose(pose.R @ pose.R.T, np.eye(2), atol=1e-6)
    assert 0 <= pose.heading_aerial_deg < 360 and pose.s > 0
    n = res.num_inliers
    assert n >= 3 and res.inliers_ground_px.shape == (n, 2) and res.inliers_xy_aerial_m.shape == (n, 2)
    assert (res.inliers_residual_m < 2.5).all() and (res.inliers_prob > 0).all()
    # inlier keypoints lie on the input image; ground tokens below the horizon only (flat ground)
    assert (res.inliers_ground_px[:, 0] < 240).all() and (res.inliers_ground_px[:, 1] > 60).all()
    # the inliers' ground points moved by the pose land within the threshold of their aerial points
    moved = pose.apply(res.inliers_xy_ground_m)
    assert np.allclose(
        np.linalg.norm(moved - res.inliers_xy_aerial_m, axis=1), res.inliers_residual_m, atol=1e-3
    )
    assert res.layout_xy_aerial_m.shape == (res.num_valid_tokens, 2)
    assert set(res.timings_s) >= {"backbone_ground", "backbone_aerial", "heads", "solver"}


def test_same_generator_same_pose(tiny):
    ground, aerial = _images(1)
    a = tiny.localize(ground, aerial, 50.0, FlatGroundDepth(), generator=torch.Generator().manual_seed(3))
    b = tiny.localize(ground, aerial, 50.0, FlatGroundDepth(), generator=torch.Generator().manual_seed(3))
    assert np.array_equal(a.pose.t, b.pose.t) and a.num_inliers == b.num_inliers


def test_prepared_ground_view_serves_several_crops_with_the_same_poses(tiny):
    """localize = prepare_ground + localize_view; a view prepared once gives each crop the pose that a
    full localize gives it."""
    ground, aerial = _images(4)
    view = tiny.prepare_ground(ground, FlatGroundDepth())
    assert view.desc_ground.shape[:2] == (1, view.valid.size) and view.xy_ground_m.shape == (
        view.valid.size,
        2,
    )
    for crop in (aerial, aerial[::-1].copy()):
        full = tiny.localize(
            ground, crop, 60.0, FlatGroundDepth(), generator=torch.Generator().manual_seed(2)
        )
        part = tiny.localize_view(view, crop, 60.0, generator=torch.Generator().manual_seed(2))
        assert np.allclose(full.pose.t, part.pose.t, atol=1e-4)
        assert full.num_inliers == part.num_inliers


def test_aerial_outside_orthophoto_is_never_matched(tiny):
    ground, aerial = _images(2)
    valid = np.zeros((100, 100), bool)
    valid[:, :50] = True  # only the left half of the crop lies on the orthophoto
    res = tiny.localize(ground, aerial, 72.0, FlatGroundDepth(), aerial_valid=valid)
    assert res.ok and (res.inliers_xy_aerial_m[:, 1] <= 0.0 + 1e-9).all()


def test_no_valid_depth_is_a_status_not_an_exception(tiny):
    ground, aerial = _images()
    empty = DepthMap(np.full((120, 240), np.nan, np.float32), kind="radial")
    res = tiny.localize(ground, aerial, 72.0, empty)
    assert res.status == STATUS_NO_VALID_DEPTH and "valid depth" in res.message and not res.ok


def test_bad_inputs_say_what_is_wrong(tiny):
    ground, aerial = _images()
    with pytest.raises(ImageError, match="ground image.*\\(H, W, 3\\)"):
        tiny.localize(ground[..., 0], aerial, 72.0, FlatGroundDepth())
    with pytest.raises(ImageError, match="aerial image.*square"):
        tiny.localize(ground, aerial[:, :90], 72.0, FlatGroundDepth())
    with pytest.raises(ImageError, match="numpy array"):
        tiny.localize("photo.jpg", aerial, 72.0, FlatGroundDepth())
    with pytest.raises(ImageError, match="footprint"):
        tiny.localize(ground, aerial, -1.0, FlatGroundDepth())
    with pytest.raises(DepthError, match="aspect"):
        tiny.localize(ground, aerial, 72.0, DepthMap(np.ones((50, 50), np.float32), kind="radial"))


def test_checkpoint_round_trip_and_errors(tmp_path, tiny):
    path = tmp_path / "model.pt"
    save_checkpoint(path, TINY, tiny.backbone, tiny.matcher, {"command": "test"})
    preset, _, _ = read_checkpoint(path)
    assert preset == TINY
    assert (tmp_path / "model.pt.json").read_text().count('"command": "test"') == 1
    again = Localizer.from_checkpoint(path, device="cpu")
    ground, aerial = _images()
    a = tiny.localize(ground, aerial, 72.0, FlatGroundDepth(), generator=torch.Generator().manual_seed(0))
    b = again.localize(ground, aerial, 72.0, FlatGroundDepth(), generator=torch.Generator().manual_seed(0))
    assert np.allclose(a.pose.t, b.pose.t)
    with pytest.raises(ModelNotFoundError, match="missing.pt"):
        Localizer.from_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.pt"):
        Localizer.from_checkpoint(tmp_path / "junk.pt")
    torch.save(tiny.matcher.state_dict(), tmp_path / "raw.pt")
    with pytest.raises(CheckpointError, match="not a Loc2 checkpoint"):
        Localizer.from_checkpoint(tmp_path / "raw.pt")


def test_confidence_thresholds_calibrated_into_the_sidecar_are_loaded(tmp_path, tiny):
    import json

    path = tmp_path / "model.pt"
    save_checkpoint(path, TINY, tiny.backbone, tiny.matcher, {})
    sidecar = tmp_path / "model.pt.json"
    assert read_checkpoint(path)[0].confidence_min_ratios_for("panorama") == (0.15, 0.40)  # the paper's
    meta = json.loads(sidecar.read_text())
    meta["preset"]["confidence_min_ratios"] = {"panorama": [0.06, None]}
    sidecar.write_text(json.dumps(meta))
    preset = read_checkpoint(path)[0]
    assert preset.confidence_min_ratios_for("panorama") == (0.06, float("inf"))
    assert preset.confidence_min_ratios_for("pinhole") == (float("inf"), float("inf"))
    meta["preset"]["confidence_min_ratios"] = {"panorama": 0.06}
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"model\.pt\.json.*\[medium, high\]"):
        read_checkpoint(path)
    sidecar.write_text("{not json")
    with pytest.raises(CheckpointError, match=r"model\.pt\.json: unreadable"):
        read_checkpoint(path)


def test_published_preset_names_its_networks_on_mismatch(tmp_path):
    torch.save({"not": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="wrong.pth.*kitti preset's matcher.*1 unexpected: not"):
        Localizer.from_preset("kitti", matcher_weights=tmp_path / "wrong.pth", device="cpu")


def test_device_description():
    assert resolve_device("cpu").type == "cpu"
    text = describe_device("auto")
    assert (
        text.startswith("CUDA: ")
        if torch.cuda.is_available()
        else text == "CPU — slow for the published weights"
    )


def test_lifting_reads_depth_as_each_token_grid_was_trained(tiny):
    # published presets: torch's nearest resize (each token's top-left pixel), as the published weights were
    # trained; pixel-centred grids (demo preset, loc2 train): each token's centre pixel, where its ray points
    cam = Equirectangular(336, 168)
    depth = DepthMap(np.random.default_rng(0).uniform(2, 30, (168, 336)).astype(np.float32), kind="radial")
    rows, cols = 12, 24  # 14-pixel tokens
    published, _ = tiny.lift(depth, cam, (rows, cols), (168, 336))
    top_left = depth.depth_m[::14, ::14]
    np.testing.assert_allclose(published, lift_tokens(cam, top_left, 14.0, published_grid=True), rtol=1e-6)
    centred_grid = Localizer(TINY.replace(published_grid=False), tiny.backbone, tiny.matcher, device="cpu")
    centred, ok = centred_grid.lift(depth, cam, (rows, cols), (168, 336))
    centre = depth.depth_m[7::14, 7::14]
    np.testing.assert_allclose(centred, lift_tokens(cam, centre, 14.0, published_grid=False), rtol=1e-6)
    assert ok.all()


def test_shifted_grids_lift_along_their_own_token_centres(tiny):
    """A panorama rolled right (down) by half a token has its token centres half a token left (up) of the
    grid's: the depth is read there, columns wrap around, and the grid rolled down drops its top row."""
    centred = Localizer(TINY.replace(published_grid=False), tiny.backbone, tiny.matcher, device="cpu")
    cam = Equirectangular(336, 168)
    depth = DepthMap(np.random.default_rng(1).uniform(2, 30, (168, 336)).astype(np.float32), kind="radial")
    rows, cols = 12, 24  # 14-pixel tokens: centres at 7 + 14·k, shifted ones at 14·k
    right, ok_right = centred.lift(depth, cam, (rows, cols), (168, 336), shift=(0.5, 0.0))
    read = depth.depth_m[7::14, ::14]  # column 0's centre is the panorama's left edge (wraps)
    sin_theta = np.sin(np.pi * (np.arange(rows) + 0.5) / rows)[:, None]  # radial depth → horizontal
    np.testing.assert_allclose(np.linalg.norm(right, axis=1), (read * sin_theta).reshape(-1), rtol=1e-6)
    phi = 2 * np.pi * np.arange(cols) / cols  # azimuth of the shifted centres
    bearing = np.arctan2(-right[:, 1], right[:, 0]).reshape(rows, cols)
    np.testing.assert_allclose(np.cos(bearing - phi), 1.0, atol=1e-9)
    down, ok_down = centred.lift(depth, cam, (rows, cols), (168, 336), shift=(0.0, 0.5))
    assert (
        ok_right.all() and not ok_down.reshape(rows, cols)[0].any() and ok_down.reshape(rows, cols)[1:].all()
    )
    theta = np.pi * np.arange(1, rows) / rows  # the shifted rows' polar angles
    horizontal = depth.depth_m[14::14, 7::14] * np.sin(theta)[:, None]
    np.testing.assert_allclose(np.linalg.norm(down, axis=1).reshape(rows, cols)[1:], horizontal, rtol=1e-6)


def test_dense_panorama_view_adds_three_shifted_grids_each_matched_on_its_own(tiny):
    """``dense``: the grid itself comes first, unchanged, and P's first block is the plain view's P (each
    grid's dual softmax is its own); photos from a pinhole camera and published grids stay single."""
    centred = Localizer(TINY.replace(published_grid=False), tiny.backbone, tiny.matcher, device="cpu")
    ground, aerial = _images(5)
    plain = centred.prepare_ground(ground, FlatGroundDepth())
    dense = centred.prepare_ground(ground, FlatGroundDepth(), dense=True)
    g = plain.valid.size
    assert dense.shifts == ((0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5))
    assert dense.desc_ground.shape[1] == dense.valid.size == len(dense.xy_ground_m) == 4 * g
    torch.testing.assert_close(dense.desc_ground[:, :g], plain.desc_ground, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(dense.xy_ground_m[:g], plain.xy_ground_m)
    p_plain = centred.match_view(plain, aerial, 60.0)
    p_dense = centred.match_view(dense, aerial, 60.0)
    assert p_dense.shape == (p_plain.shape[0], 4 * g)
    torch.testing.assert_close(p_dense[:, :g], p_plain, rtol=1e-3, atol=1e-7)
    for block in p_dense.split(g, 1):  # every grid's matches sum to at most 1 per ground token
        assert float(block.sum(0).max()) <= 1.0 + 1e-5
    res = centred.localize_view(dense, aerial, 60.0, generator=torch.Generator().manual_seed(0))
    assert res.ok and res.num_valid_tokens == int(dense.valid.sum())
    assert ((res.inliers_ground_px >= 0) & (res.inliers_ground_px < [240, 120])).all()
    assert len(tiny.prepare_ground(ground, FlatGroundDepth(), dense=True).shifts) == 1  # published grid


def test_inlier_pixels_of_a_shifted_grid_sit_half_a_token_earlier(tiny):
    """An inlier from the grid rolled right and down is drawn at its own token centre in the image."""
    from types import SimpleNamespace

    rows, cols = 2, 4
    est = SimpleNamespace(
        pose=Similarity2D(torch.eye(2), torch.zeros(2), torch.tensor(1.0)),
        inlier_mask=torch.tensor([True, True]),
        ground_index=torch.tensor([1, 3 * rows * cols + 4]),  # grid 0 (0, 1); grid 3 (1, 0)
        aerial_index=torch.tensor([0, 1]),
        prob=torch.tensor([0.5, 0.5]),
        residual_m=torch.tensor([0.1, 0.2]),
        num_inliers=2,
        inlier_ratio=1.0,
        score=2.0,
    )
    xy = np.zeros((4 * rows * cols, 2))
    view = GroundView(None, xy, np.ones(len(xy), bool), (rows, cols), (28, 56), (56, 112), {}, TOKEN_SHIFTS)
    res = tiny._result(est, view, np.zeros((2, 2)), est.inlier_ratio, {})
    # 14-px tokens on a 56-px-wide input, image twice as large: grid 0 token (0, 1) at (1.5·28, 0.5·28);
    # grid 3 token (1, 0) at (0, 1·28), its column's centre wrapped to the left edge
    np.testing.assert_allclose(res.inliers_ground_px, [[42.0, 14.0], [0.0, 28.0]])


def test_footprint_inlier_ratio_counts_samples_on_one_footprint_around_the_pose():
    from loc2.core.solver.ransac import PoseEstimate

    # 10 samples: 4 inliers near the pose (10, 0); 2 other samples near it; 4 on a crop 100 m east
    xy_aerial_m = np.array(
        [[10.0, 0.0], [12.0, 3.0], [-20.0, 30.0], [40.0, -25.0], [100.0, 100.0], [150.0, 0.0]]
    )
    index = torch.tensor([0, 0, 1, 1, 2, 3, 4, 4, 5, 5])
    inliers = torch.tensor([True, True, True, True, False, False, False, False, False, False])
    est = PoseEstimate(
        pose=Similarity2D(torch.eye(2), torch.tensor([10.0, 0.0]), torch.tensor(1.0)), valid=True, num_inliers=4,
        inlier_mask=inliers, score=4.0, aerial_index=index, ground_index=torch.arange(10),
        prob=torch.ones(10), residual_m=torch.zeros(10),
    )  # fmt: skip
    assert est.inlier_ratio == pytest.approx(0.4)  # over every sample
    # a 72 m footprint centred on (10, 0) holds aerial points 0-3 (|dx|, |dy| <= 36): 6 samples, 4 inliers
    assert est.inlier_ratio_on(xy_aerial_m, 72.0) == pytest.approx(4 / 6)
    assert est.inlier_ratio_on(xy_aerial_m, 20.0) == pytest.approx(1.0)  # points 0 and 1 only
    assert est.inlier_ratio_on(xy_aerial_m[[5] * 6], 10.0) == 0.0  # no sample on it
