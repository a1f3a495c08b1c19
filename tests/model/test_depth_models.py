"""Depth providers: tiny random Depth Anything V2 models saved and loaded offline, cube-map geometry with a
fake model whose depth is known, depth files in the published formats, and ``loc2 depth``."""

from __future__ import annotations

import math
import sys

import cv2
import numpy as np
import pytest
import torch

from loc2.core import cli
from loc2.core.errors import DepthError, ModelNotFoundError
from loc2.core.geometry.cameras import Equirectangular, Pinhole
from loc2.core.geometry.lifting import lift_tokens
from loc2.core.inputs.depth import FileDepth, write_depth
from loc2.core.model.depth_models import (
    CUBE_FACES,
    CubeMap,
    DepthAnythingV2,
    ModelDepth,
    UniK3DDepth,
    _import_transformers,
    disparity_to_relative_depth,
    panorama_directions,
)

FACE_ORDER = list(CUBE_FACES)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def save_tiny_depth_anything(path, kind: str) -> None:
    """A randomly initialised Depth Anything model with a tiny DINOv2 backbone, and its image processor."""
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    backbone = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        image_size=56,
        patch_size=14,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        depth_estimation_type=kind,
        max_depth=20 if kind == "metric" else 1,
    )
    torch.manual_seed(0)
    DepthAnythingForDepthEstimation(config).save_pretrained(path)
    DPTImageProcessor(
        do_resize=True,
        size={"height": 56, "width": 56},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
    ).save_pretrained(path)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("TRANSFORMERS_OFFLINE", "1")
    root = tmp_path_factory.mktemp("da")
    out = {}
    for kind in ("metric", "relative"):
        save_tiny_depth_anything(root / kind, kind)
        out[kind] = root / kind
    yield out
    mp.undo()


def test_tiny_metric_model_gives_metres_for_photos_and_panoramas(tiny_models):
    provider = DepthAnythingV2(tiny_models["metric"], device="cpu")
    assert provider.metric
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (42, 70, 3), dtype=np.uint8)
    d = provider.depth_for(photo, Pinhole.from_fov(70, 42, 60))
    assert d.kind == "z" and d.metric and d.max_depth is None
    assert d.depth_m.shape == (42, 70) and d.depth_m.dtype == np.float32
    assert np.isfinite(d.depth_m).all() and (d.depth_m > 0).all() and (d.depth_m <= 20).all()
    pano = rng.integers(0, 255, (32, 64, 3), dtype=np.uint8)
    r = provider.depth_for(pano, Equirectangular(64, 32))
    assert r.kind == "radial" and r.metric and r.depth_m.shape == (32, 64)
    assert np.isfinite(r.depth_m).all() and (r.depth_m > 0).all()


def test_tiny_relative_model_is_declared_relative(tiny_models):
    provider = DepthAnythingV2(tiny_models["relative"], device="cpu")
    assert not provider.metric
    d = provider.depth_for(np.full((28, 56, 3), 128, np.uint8), Pinhole.from_fov(56, 28, 60))
    assert d.kind == "z" and not d.metric and d.max_depth == provider.relative_far
    assert d.depth_m.shape == (28, 56)


def test_missing_model_folder_and_missing_packages(tmp_path, monkeypatch):
    with pytest.raises(ModelNotFoundError, match="nowhere"):
        DepthAnythingV2(tmp_path / "nowhere", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        DepthAnythingV2(tmp_path / "empty", device="cpu")
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(DepthError, match="pip install transformers"):
        _import_transformers()
    monkeypatch.setitem(sys.modules, "unik3d", None)
    monkeypatch.setitem(sys.modules, "unik3d.models", None)
    with pytest.raises(DepthError, match="UniK3D is not installed"):
        UniK3DDepth(tmp_path, device="cpu")


def _rays_by_hand(h: int, w: int) -> np.ndarray:
    """Unit rays of the pixel centres: θ = π(v+½)/H from the zenith, φ = 2π(u+½)/W; (sinθcosφ, −sinθsinφ, cosθ)."""
    v, u = np.meshgrid(np.arange(h) + 0.5, np.arange(w) + 0.5, indexing="ij")
    theta, phi = math.pi * v / h, 2 * math.pi * u / w
    return np.stack([np.sin(theta) * np.cos(phi), -np.sin(theta) * np.sin(phi), np.cos(theta)], -1)


def test_panorama_rays_are_the_lifting_convention():
    rays = panorama_directions(16, 32)
    np.testing.assert_allclose(rays, _rays_by_hand(16, 32), atol=1e-12)
    depth = np.full((16, 32), 3.0)
    lifted = lift_tokens(Equirectangular(32, 16), depth, published_grid=False).reshape(16, 32, 2)
    np.testing.assert_allclose(lifted, 3.0 * rays[..., :2], atol=1e-12)
    assert rays[8, 16, 0] < -0.99  # the centre column looks forward, along −x


def test_faces_see_their_axes():
    """A panorama whose colour is the ray direction, rendered to faces: each face pixel shows its own ray."""
    h, w = 96, 192
    pano = _rays_by_hand(h, w).astype(np.float32)
    cube = CubeMap(24)
    faces = cube.render(pano)
    assert faces.shape == (6, 24, 24, 3)
    np.testing.assert_allclose(faces, cube.face_rays(), atol=0.01)
    centre = faces[:, 11:13, 11:13].mean((1, 2))
    centre /= np.linalg.norm(centre, axis=-1, keepdims=True)
    np.testing.assert_allclose(centre, [CUBE_FACES[k][0] for k in FACE_ORDER], atol=0.01)
    # the top row of the front face looks up, its right column looks right
    front = faces[FACE_ORDER.index("front")]
    assert front[0, 12, 2] > 0.5 and front[12, -1, 1] > 0.5


def test_constant_planes_stitch_to_radial_distance():
    """Face k predicts the constant z-depth k + 1: the radial distance is z / cos(angle off the face axis)
    and the lifted points of each face lie on its plane."""
    h, w = 40, 80

    def fake(images):
        assert images.shape[0] == 6 and images.dtype == np.uint8
        return np.stack([np.full(images.shape[1:3], k + 1.0) for k in range(len(images))])

    provider = ModelDepth(fake, metric=True, face_px=20)
    depth = provider.depth_for(np.zeros((h, w, 3), np.uint8), Equirectangular(w, h))
    assert depth.kind == "radial" and depth.metric
    rays = _rays_by_hand(h, w)
    axes = np.array([CUBE_FACES[k][0] for k in FACE_ORDER], float)
    cos = rays @ axes.T
    best = cos.argmax(-1)
    np.testing.assert_allclose(depth.depth_m, (best + 1) / cos.max(-1), rtol=1e-5)
    lifted = lift_tokens(Equirectangular(w, h), depth.depth_m, published_grid=False).reshape(h, w, 2)
    front, right, back, left = (best == FACE_ORDER.index(k) for k in ("front", "right", "back", "left"))
    np.testing.assert_allclose(lifted[front][:, 0], -1.0, atol=1e-5)  # front plane: x = −z = −1
    np.testing.assert_allclose(lifted[right][:, 1], 2.0, atol=1e-5)  # right plane: y = +2
    np.testing.assert_allclose(lifted[back][:, 0], 3.0, atol=1e-5)
    np.testing.assert_allclose(lifted[left][:, 1], -4.0, atol=1e-5)
    assert 6.0 < depth.depth_m.max() <= 6 * math.sqrt(3)  # towards a cube corner of the down face


def test_disparity_to_relative_depth():
    disparity = np.array([[10.0, 5.0, 1.0, 0.2, 0.0, np.nan]])
    depth, ref = disparity_to_relative_depth(disparity, far=20.0, reference=10.0)
    assert ref == 10.0
    np.testing.assert_allclose(depth[0, :3], [1.0, 2.0, 10.0])
    assert np.isnan(depth[0, 3:]).all()  # 0.02 < 1/20: beyond the far limit; zero and NaN invalid
    auto, ref = disparity_to_relative_depth(np.array([[4.0, 2.0, 1.0]]))
    assert ref == pytest.approx(np.percentile([4.0, 2.0, 1.0], 95))


def test_relative_panorama_uses_one_reference_for_all_faces():
    provider = ModelDepth(lambda imgs: np.stack([np.full(imgs.shape[1:3], 1.0 + k) for k in range(6)]), False)
    d = provider.depth_for(np.zeros((20, 40, 3), np.uint8), Equirectangular(40, 20))
    assert not d.metric and d.max_depth == 20.0
    # face disparities 1..6 with one reference (95th pct ≈ 6): depth ratio front / down = 6 / 1
    front = d.depth_m[10, 20] * np.abs(_rays_by_hand(20, 40)[10, 20, 0])
    down = d.depth_m[-1, 0] * np.abs(_rays_by_hand(20, 40)[-1, 0, 2])
    assert front / down == pytest.approx(6.0, rel=0.02)


def test_depth_files_round_trip(tmp_path):
    d = np.array([[1.2345, 0.0, np.nan], [30.5, 70.0, 300.0]], np.float32)
    mm = FileDepth(write_depth(tmp_path / "a.png", d, "png_mm"), "png_mm").read()
    np.testing.assert_allclose(mm[0, 0], 1.2345, atol=5e-4)
    assert np.isnan(mm[0, 1]) and np.isnan(mm[0, 2])  # 0 and NaN are written as 0 = invalid
    assert mm[1, 1] == pytest.approx(65.535) and mm[1, 0] == pytest.approx(30.5)  # millimetres saturate
    q = FileDepth(write_depth(tmp_path / "b.png", d, "png_256"), "png_256").read()
    np.testing.assert_allclose(q[1, :2], [30.5, 70.0], atol=1 / 512)
    assert q[1, 2] == pytest.approx(65535 / 256)
    raw = cv2.imread(str(tmp_path / "b.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16 and raw[0, 0] == round(1.2345 * 256)
    n = FileDepth(write_depth(tmp_path / "c.npy", d, "npy")).read()
    np.testing.assert_allclose(n[1], [30.5, 70.0, 300.0])
    with pytest.raises(DepthError, match="unknown depth format"):
        write_depth(tmp_path / "d.png", d, "jpg")


def test_cli_depth_writes_published_formats(tiny_models, tmp_path, capsys):
    rng = np.random.default_rng(1)
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    cv2.imwrite(str(imgs / "pano.jpg"), rng.integers(0, 255, (32, 64, 3), dtype=np.uint8))
    cv2.imwrite(str(imgs / "photo.png"), rng.integers(0, 255, (30, 80, 3), dtype=np.uint8))
    out = tmp_path / "depth"
    argv = ["depth", "--model-dir", str(tiny_models["metric"]), "--images", str(imgs), "--out", str(out)]
    assert cli.main([*argv, "--device", "cpu"]) == 0
    pano = cv2.imread(str(out / "pano.png"), cv2.IMREAD_UNCHANGED)
    photo = cv2.imread(str(out / "photo.png"), cv2.IMREAD_UNCHANGED)
    assert pano.shape == (32, 64) and pano.dtype == np.uint16 and photo.shape == (30, 80)
    # the same metres in the two published encodings: millimetres (panorama) and 1/256 m (photo)
    assert 1 < np.median(pano) / 1000 <= 20 and 1 < np.median(photo) / 256 <= 20
    assert "pano.jpg ->" in capsys.readouterr().out
    rel = ["depth", "--model-dir", str(tiny_models["relative"]), "--images", str(imgs / "photo.png")]
    assert cli.main([*rel, "--out", str(out), "--device", "cpu"]) == 1
    assert "use --format npy" in capsys.readouterr().err
    assert cli.main([*rel, "--out", str(out), "--format", "npy", "--device", "cpu"]) == 0
    assert np.load(out / "photo.npy").shape == (30, 80)
