"""The whole match–lift–align pipeline on small random networks, on the CPU."""

import numpy as np
import pytest
import torch

from loc2.core.checkpoints import read_checkpoint, save_checkpoint
from loc2.core.depth import DepthMap, FlatGroundDepth
from loc2.core.errors import CheckpointError, DepthError, ImageError, ModelNotFoundError
from loc2.core.geometry import Equirectangular, lift_tokens
from loc2.core.localizer import STATUS_NO_VALID_DEPTH, Localizer, describe_device, resolve_device
from loc2.core.presets import VIGOR

TINY = VIGOR.replace(
    name="tiny", backbone="dinov2_vits14", embed_dim=384, ground_size_hw=(84, 168), aerial_size_px=84
)


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
    assert res.position_xy_m.shape == (2,) and np.isfinite(res.position_xy_m).all()
    assert np.allclose(res.rotation @ res.rotation.T, np.eye(2), atol=1e-6)
    assert 0 <= res.heading_deg < 360 and res.scale > 0
    n = res.num_inliers
    assert n >= 3 and res.inliers_ground_px.shape == (n, 2) and res.inliers_aerial_xy_m.shape == (n, 2)
    assert (res.inliers_residual_m < 2.5).all() and (res.inliers_prob > 0).all()
    # inlier keypoints lie on the input image; ground tokens below the horizon only (flat ground)
    assert (res.inliers_ground_px[:, 0] < 240).all() and (res.inliers_ground_px[:, 1] > 60).all()
    # the inliers' ground points moved by the pose land within the threshold of their aerial points
    moved = res.scale * res.inliers_ground_xy_m @ res.rotation.T + res.position_xy_m
    assert np.allclose(
        np.linalg.norm(moved - res.inliers_aerial_xy_m, axis=1), res.inliers_residual_m, atol=1e-3
    )
    assert res.layout_aerial_xy_m.shape == (res.num_valid_tokens, 2)
    assert set(res.timings_s) >= {"backbone_ground", "backbone_aerial", "heads", "solver"}


def test_same_generator_same_pose(tiny):
    ground, aerial = _images(1)
    a = tiny.localize(ground, aerial, 50.0, FlatGroundDepth(), generator=torch.Generator().manual_seed(3))
    b = tiny.localize(ground, aerial, 50.0, FlatGroundDepth(), generator=torch.Generator().manual_seed(3))
    assert np.array_equal(a.position_xy_m, b.position_xy_m) and a.num_inliers == b.num_inliers


def test_prepared_ground_view_serves_several_crops_with_the_same_poses(tiny):
    """localize = prepare_ground + localize_view; a view prepared once gives each crop the pose that a
    full localize gives it."""
    ground, aerial = _images(4)
    view = tiny.prepare_ground(ground, FlatGroundDepth())
    assert view.desc_ground.shape[:2] == (1, view.valid.size) and view.ground_xy_m.shape == (
        view.valid.size,
        2,
    )
    for crop in (aerial, aerial[::-1].copy()):
        full = tiny.localize(
            ground, crop, 60.0, FlatGroundDepth(), generator=torch.Generator().manual_seed(2)
        )
        part = tiny.localize_view(view, crop, 60.0, generator=torch.Generator().manual_seed(2))
        assert np.allclose(full.position_xy_m, part.position_xy_m, atol=1e-4)
        assert full.num_inliers == part.num_inliers


def test_aerial_outside_orthophoto_is_never_matched(tiny):
    ground, aerial = _images(2)
    valid = np.zeros((100, 100), bool)
    valid[:, :50] = True  # only the left half of the crop lies on the orthophoto
    res = tiny.localize(ground, aerial, 72.0, FlatGroundDepth(), aerial_valid=valid)
    assert res.ok and (res.inliers_aerial_xy_m[:, 1] <= 0.0 + 1e-9).all()


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
    assert np.allclose(a.position_xy_m, b.position_xy_m)
    with pytest.raises(ModelNotFoundError, match="missing.pt"):
        Localizer.from_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.pt"):
        Localizer.from_checkpoint(tmp_path / "junk.pt")
    torch.save(tiny.matcher.state_dict(), tmp_path / "raw.pt")
    with pytest.raises(CheckpointError, match="not a Loc2 checkpoint"):
        Localizer.from_checkpoint(tmp_path / "raw.pt")


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
