"""``loc2 localize`` and the batch pipeline on real files: GeoTIFF, EXIF JPEGs, GeoPackage output."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from pipeline_scene import ORIGIN, TINY, lonlat

from loc2.core.cli import main
from loc2.core.localizer import Localizer
from loc2.core.output.formats import read_poses
from loc2.core.pipeline import batch, search
from loc2.core.pipeline.batch import localize_batch
from loc2.core.pipeline.search import search_offsets_m
from loc2.core.solver.config import PRECISE, PUBLISHED
from loc2.core.solver.ransac import PoseEstimate
from loc2.core.types import JobOptions, PhotoItem


def test_search_offsets_cover_the_radius():
    assert search_offsets_m(5.0, 72.0).tolist() == [[0.0, 0.0]]
    offsets = search_offsets_m(40.0, 72.0)
    assert len(offsets) > 1 and offsets[0].tolist() == [0.0, 0.0]
    # every point within the radius lies within one crop's reach (a quarter footprint) of some centre
    rng = np.random.default_rng(0)
    pts = rng.uniform(-40, 40, (2000, 2))
    pts = pts[np.hypot(*pts.T) <= 40]
    d = np.hypot(pts[:, None, 0] - offsets[None, :, 0], pts[:, None, 1] - offsets[None, :, 1]).min(1)
    assert (d <= 18.0 + 1e-9).all()


def test_batch_goes_on_past_bad_photos_and_reports_each(scene):
    items = [
        PhotoItem(scene / "photos" / "a.jpg", *lonlat(40, 40)),
        PhotoItem(scene / "photos" / "b_nogps.jpg", None, None),
        PhotoItem(scene / "photos" / "c_corrupt.jpg", *lonlat(40, 40)),
        PhotoItem(scene / "photos" / "e_outside.jpg", *lonlat(5000, 0)),
        PhotoItem(scene / "photos" / "d.jpg", *lonlat(30, 50)),
    ]
    seen = []
    results = localize_batch(
        items,
        scene / "ortho.tif",
        JobOptions(model=str(scene / "tiny.pt"), device="cpu"),
        on_result=seen.append,
    )
    assert [r.status for r in results] == ["ok", "failed", "failed", "failed", "ok"]
    assert seen == results
    assert "no GPS position" in results[1].message and "b_nogps.jpg" in results[1].message
    assert "c_corrupt.jpg" in results[2].message
    assert "outside the orthophoto" in results[3].message
    ok = results[0]
    assert ok.crs_wkt and np.isfinite([ok.x, ok.y, ok.lon, ok.lat, ok.heading_deg]).all()
    assert ok.prior_heading_deg is None  # none given with these items
    assert len(ok.inliers_xy_crs) == ok.num_inliers and len(ok.layout_xy_crs) > 0


def test_search_prepares_the_ground_image_once_for_all_crops(scene, monkeypatch):
    calls = []
    real = Localizer.ground_views
    monkeypatch.setattr(
        Localizer, "ground_views", lambda self, inputs: calls.append(len(inputs)) or real(self, inputs)
    )
    options = JobOptions(model=str(scene / "tiny.pt"), device="cpu", search_radius_m=20.0)
    [result] = localize_batch(
        [PhotoItem(scene / "photos" / "a.jpg", *lonlat(40, 40))], scene / "ortho.tif", options
    )
    assert (
        result.status == "ok"
        and len(result.candidates) == len(search_offsets_m(20.0, TINY.aerial_footprint_m)) > 1
    )
    assert calls == [1]


def test_search_crops_matches_are_stacked_into_one_P_in_crop_order(scene, monkeypatch):
    pieces, stacked = [], []
    real_match, real_joint = Localizer.match_view, search.joint_pose
    monkeypatch.setattr(
        Localizer, "match_view", lambda self, *a, **k: pieces.append(real_match(self, *a, **k)) or pieces[-1]
    )
    monkeypatch.setattr(
        search,
        "joint_pose",
        lambda loc, view, crops, probs, *a: stacked.append(probs) or real_joint(loc, view, crops, probs, *a),
    )
    options = JobOptions(model=str(scene / "tiny.pt"), device="cpu", search_radius_m=20.0)
    [result] = localize_batch(
        [PhotoItem(scene / "photos" / "a.jpg", *lonlat(40, 40))], scene / "ortho.tif", options
    )
    assert result.status == "ok" and len(pieces) == len(result.candidates) > 1
    [[P]] = stacked
    assert torch.equal(P, torch.cat(pieces))


@pytest.mark.parametrize(("radius_m", "windowed"), [(5.0, False), (20.0, True)])
def test_inlier_ratio_of_a_search_counts_one_footprint_around_the_pose(
    scene, monkeypatch, radius_m, windowed
):
    """One crop: the paper's ratio over every sample; several: over the samples on one footprint."""
    ratios = []
    real = PoseEstimate.inlier_ratio_on
    monkeypatch.setattr(PoseEstimate, "inlier_ratio_on", lambda *a: ratios.append(real(*a)) or ratios[-1])
    options = JobOptions(model=str(scene / "tiny.pt"), device="cpu", search_radius_m=radius_m)
    [result] = localize_batch(
        [PhotoItem(scene / "photos" / "a.jpg", *lonlat(40, 40))], scene / "ortho.tif", options
    )
    assert result.status == "ok" and (len(result.candidates) > 1) == windowed
    assert ratios == ([result.inlier_ratio] if windowed else [])


def test_flat_ground_panorama_gets_the_unit_scale_refinement(scene, monkeypatch):
    import loc2.core.solver.ransac as ransac

    chosen, spreads = [], []
    real = search.photo_solver_config
    monkeypatch.setattr(search, "photo_solver_config", lambda *a: chosen.append(real(*a)) or chosen[-1])
    real_ml = ransac.maximum_likelihood_pose
    monkeypatch.setattr(
        ransac,
        "maximum_likelihood_pose",
        lambda *a, **k: spreads.append((a[2], k["spread_m"])) or real_ml(*a, **k),
    )
    options = JobOptions(model=str(scene / "tiny.pt"), device="cpu", search_radius_m=5.0)
    [result] = localize_batch(
        [PhotoItem(scene / "photos" / "a.jpg", *lonlat(40, 40))], scene / "ortho.tif", options
    )
    assert result.status == "ok" and result.depth == "flat"
    assert chosen == [PRECISE.for_photo(metric_depth=True, panorama=True, flat_ground=True)]
    assert chosen[0].likelihood_unit_scale is True
    # and each token's footprint on flat ground, at the options' camera height
    [(xy_ground_m, spread_m)] = spreads
    assert spread_m.shape == xy_ground_m.shape
    seen = xy_ground_m.norm(dim=1) > 0.5
    assert seen.any() and bool((spread_m[seen] > 0).all())


def _localize_args(scene) -> list[str]:
    """``loc2 localize`` on the scene's orthophoto with its tiny model, on the CPU (photos and output to add)."""
    return [
        "localize",
        "--ortho",
        str(scene / "ortho.tif"),
        "--model",
        str(scene / "tiny.pt"),
        "--device",
        "cpu",
    ]


def test_cli_writes_refuses_resumes_and_survives_an_interrupt(scene, tmp_path, monkeypatch, capsys):
    out = tmp_path / "res.gpkg"
    args = _localize_args(scene)
    photos = [str(scene / "photos" / n) for n in ("a.jpg", "d.jpg", "b_nogps.jpg")]

    real = batch.localize_item
    calls = {"n": 0}

    def crash_on_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(batch, "localize_item", crash_on_second)
    assert main([*args, "--images", *photos, "--out", str(out), "--figures", str(tmp_path / "figs")]) == 130
    monkeypatch.setattr(batch, "localize_item", real)
    poses = read_poses(out)
    assert list(poses["photo"]) == [photos[0]]  # the first result survived the interrupt
    assert (tmp_path / "figs" / "a.png").is_file()

    assert main([*args, "--images", *photos, "--out", str(out)]) == 1  # refuses to overwrite silently
    assert "already holds results" in capsys.readouterr().err

    assert main([*args, "--images", *photos, "--out", str(out), "--resume"]) == 0
    poses = read_poses(out)
    assert sorted(poses["photo"]) == sorted(photos)
    assert poses.crs.to_epsg() == 32632
    by_photo = poses.set_index("photo")
    assert by_photo.loc[photos[2], "status"] == "failed"
    assert by_photo.loc[photos[1], "status"] == "ok"
    assert by_photo.loc[photos[1], "prior_head"] == pytest.approx(30.0, abs=1e-6)  # from EXIF
    # each row records how it was made: a located photo the precision its backbone ran in, a failed one
    # the options as asked
    assert list(by_photo.loc[photos[1], ["solver", "precision"]]) == ["precise", "float32"]
    assert list(by_photo.loc[photos[2], ["solver", "precision"]]) == ["precise", "auto"]


def test_cli_exit_status_nonzero_only_when_nothing_localized(scene, tmp_path, capsys):
    args = _localize_args(scene)
    bad = [str(scene / "photos" / "b_nogps.jpg")]
    assert main([*args, "--images", *bad, "--out", str(tmp_path / "x.gpkg")]) == 1
    assert "no photo could be localized" in capsys.readouterr().err
    assert (
        main([*args, "--images", str(tmp_path / "empty_dir_missing"), "--out", str(tmp_path / "y.gpkg")]) == 1
    )
    (tmp_path / "empty").mkdir()
    assert main([*args, "--images", str(tmp_path / "empty"), "--out", str(tmp_path / "z.gpkg")]) == 1
    assert "no images" in capsys.readouterr().err


def test_cli_rejects_unusable_orthophoto_and_output(scene, tmp_path, capsys):
    nocrs = tmp_path / "nocrs.tif"
    with rasterio.open(nocrs, "w", driver="GTiff", width=10, height=10, count=1, dtype="uint8") as ds:
        ds.write(np.zeros((1, 10, 10), np.uint8))
    photo = str(scene / "photos" / "a.jpg")
    base = ["localize", "--model", str(scene / "tiny.pt"), "--device", "cpu", "--images", photo]
    assert main([*base, "--ortho", str(nocrs), "--out", str(tmp_path / "a.gpkg")]) == 1
    assert "coordinate reference system" in capsys.readouterr().err
    assert (
        main([*base, "--ortho", str(scene / "ortho.tif"), "--out", str(tmp_path / "no" / "dir" / "a.gpkg")])
        == 1
    )
    assert "a.gpkg" in capsys.readouterr().err


def test_missing_published_weights_say_what_to_do(scene):
    with pytest.raises(Exception, match="needs the published weights"):
        batch.load_localizer(JobOptions(model="vigor"))


def test_joint_pose_over_search_crops_is_exact_in_the_crs(scene):
    """Synthetic matching probabilities on three overlapping crops, each pointing every ground point at the
    aerial grid point nearest its true position (where the crop holds it): the joint solve recovers the true
    pose, expresses it in the crop nearest to it and counts each crop's inliers; look-alike matches that
    only one crop makes (a different pose) lose."""
    from loc2.core.geometry.cameras import aerial_grid_xy
    from loc2.core.geometry.pose import Similarity2D
    from loc2.core.inputs.ortho import Orthophoto
    from loc2.core.localizer import GroundView
    from loc2.core.pipeline.search import joint_pose

    loc = Localizer.from_preset(TINY, device="cpu")
    footprint, grid_n = 30.0, TINY.aerial_grid
    rng = np.random.default_rng(0)
    xy_ground_m = rng.uniform(-12, 12, (300, 2))
    view = GroundView(
        torch.zeros(1, 300, 8), xy_ground_m, np.ones(300, bool), (10, 30), (84, 168), (128, 256)
    )
    true_crs = np.array([ORIGIN[0] + 46.0, ORIGIN[1] - 41.0])
    R = Similarity2D.from_heading(35.0).R
    with Orthophoto.open(scene / "ortho.tif") as ortho:
        crops = [
            ortho.crop((ORIGIN[0] + 40 + dx, ORIGIN[1] - 40 + dy), footprint, 84)
            for dx, dy in ((0, 0), (12, 0), (0, -12))
        ]
        grid = aerial_grid_xy(footprint, grid_n)
        probs = []
        for k, crop in enumerate(crops):
            t = crop.crs_to_aerial(true_crs.reshape(1, 2))[0]
            if k == 2:  # a look-alike place: this crop alone matches everything to a different pose
                t, R_k = t + np.array([9.0, -7.0]), Similarity2D.from_heading(120.0).R
            else:
                R_k = R
            target = xy_ground_m @ R_k.T + t
            d = np.linalg.norm(target[:, None] - grid[None], axis=2)
            P = np.zeros((len(grid), len(xy_ground_m)), np.float32)
            inside = d.min(axis=1) < footprint / (grid_n - 1)
            P[d.argmin(axis=1)[inside], np.flatnonzero(inside)] = 0.9
            probs.append(torch.from_numpy(P))
        res, crop, support = joint_pose(loc, view, crops, probs, PUBLISHED, torch.Generator().manual_seed(0))
        precise_config = PRECISE.for_photo(metric_depth=True, panorama=True, flat_ground=False)
        precise, precise_crop, _ = joint_pose(
            loc, view, crops, probs, precise_config, torch.Generator().manual_seed(0)
        )
    # the precise solver averages over every grid-snapped match: far tighter than the published pose
    precise_xy = precise_crop.aerial_to_crs(precise.pose.t.reshape(1, 2))[0]
    assert np.linalg.norm(precise_xy - true_crs) < 0.1
    assert abs((precise.pose.heading_aerial_deg - 35.0 + 180) % 360 - 180) < 0.5
    assert 0.98 < precise.pose.s < 1.02
    assert res.ok
    assert np.allclose(crop.aerial_to_crs(res.pose.t.reshape(1, 2))[0], true_crs, atol=0.3)
    # the kept pose may be a 3-point hypothesis (refinement is kept only when the inliers grow, as published)
    assert abs((res.pose.heading_aerial_deg - 35.0 + 180) % 360 - 180) < 3.0
    assert crop is crops[1]  # its centre is nearest the pose (6 m away, the first crop's 8.5 m)
    assert support[0] > 100 and support[1] > 100 and support[2] < 10
    moved = res.pose.apply(res.inliers_xy_ground_m)
    assert np.allclose(moved, res.inliers_xy_aerial_m, atol=2.5)  # inliers in the chosen crop's frame
