"""The evaluation protocol on the tiny fixture datasets, with oracles whose answers are known.

``DotOracle`` reads the pose off the fixture images (red dot = camera, blue dot = ahead, bright band = north)
and adds a fixed offset, so the conventions of the readers and of the metrics are checked end to end.
``TruthOracle`` returns the true pose plus chosen per-sample offsets, so every metric can be computed by hand.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from test_datasets import find_dot, north_column_heading_deg

from loc2.core import cli
from loc2.core.errors import Loc2Error
from loc2.core.evaluation.inference import evaluate, localize_samples, match_batch
from loc2.core.evaluation.kitti import KittiDataset
from loc2.core.evaluation.metrics import markdown_table, pose_errors, summarize
from loc2.core.evaluation.vigor import VigorDataset
from loc2.core.geometry.cameras import pixel_to_aerial_xy
from loc2.core.geometry.pose import Similarity2D, rotation_matrix
from loc2.core.inputs.depth import FlatGroundDepth
from loc2.core.localizer import LocalizationResult, Localizer
from loc2.core.model.checkpoints import save_checkpoint
from loc2.core.model.presets import KITTI
from loc2.core.solver.config import PUBLISHED

TINY_KITTI = KITTI.replace(
    name="tiny-kitti",
    backbone="dinov2_vits14",
    embed_dim=384,
    ground_size_hw=(56, 182),
    aerial_size_px=56,
    head_widths=(64, 32),
    desc_dim=32,
)


def _result(t, R) -> LocalizationResult:
    return LocalizationResult(
        status="ok",
        pose=Similarity2D(np.asarray(R, float), np.asarray(t, float), 1.0),
        num_inliers=50,
        inlier_ratio=0.5,
        timings_s={"solver": 0.001},
    )


class DotOracle:
    """Reads the pose from the fixture images and adds ``offset_m`` (aerial frame) and ``yaw_offset_deg``."""

    def __init__(self, offset_m=(0.0, 0.0), yaw_offset_deg=0.0):
        self.offset_m = np.asarray(offset_m, float)
        self.yaw_offset_deg = yaw_offset_deg

    def localize(
        self, ground_rgb, aerial_rgb, aerial_footprint_m, depth, camera=None, generator=None, config=None
    ):
        size = aerial_rgb.shape[0]
        cam = pixel_to_aerial_xy(np.array(find_dot(aerial_rgb, 0)), aerial_footprint_m, size)
        if ground_rgb.shape[1] == 2 * ground_rgb.shape[0]:  # VIGOR panorama: heading from the north band
            R = Similarity2D.from_heading(north_column_heading_deg(ground_rgb)).R
        else:  # KITTI: heading from the dot ahead of the camera
            ahead = pixel_to_aerial_xy(np.array(find_dot(aerial_rgb, 2)), aerial_footprint_m, size)
            v = ahead - cam
            R = Similarity2D.from_heading(math.degrees(math.atan2(v[1], -v[0]))).R
        return _result(cam + self.offset_m, rotation_matrix(math.radians(self.yaw_offset_deg)) @ R)


class TruthOracle:
    """The true pose plus per-sample offsets (along, across the true heading, yaw), found by image hash."""

    def __init__(self, dataset, offsets):
        self.table = {}
        for i in range(len(dataset)):
            s = dataset[i]
            heading = s.pose_true.R @ np.array([-1.0, 0.0])
            across = np.array([-heading[1], heading[0]])
            along_m, across_m, dyaw = offsets[i]
            # in the frame the sample's aerial points are laid out in (KITTI: units of 100.26 / 100.27 m)
            t = (s.pose_true.t + along_m * heading + across_m * across) / s.aerial_unit_m
            self.table[self._key(s.ground_rgb, s.aerial_rgb)] = (
                _result(t, rotation_matrix(math.radians(dyaw)) @ s.pose_true.R) if dyaw is not None else None
            )

    @staticmethod
    def _key(ground, aerial):
        return hashlib.sha256(ground.tobytes() + aerial.tobytes()).hexdigest()

    def localize(
        self, ground_rgb, aerial_rgb, aerial_footprint_m, depth, camera=None, generator=None, config=None
    ):
        result = self.table[self._key(ground_rgb, aerial_rgb)]
        return result or LocalizationResult(status="no_pose", message="oracle gives up")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the small networks here gain nothing from two, and lose a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_pose_errors_by_hand():
    R_true = Similarity2D.from_heading(90.0).R  # heading east: along = +y, across = x
    e = pose_errors(
        Similarity2D(rotation_matrix(math.radians(-80.0)), np.array([1.0, 5.0])),
        Similarity2D(R_true, np.array([-2.0, 1.0])),
    )
    assert e["position_error_m"] == pytest.approx(5.0)
    assert e["along_heading_error_m"] == pytest.approx(4.0) and e["across_heading_error_m"] == pytest.approx(
        3.0
    )
    assert e["yaw_true_deg"] == pytest.approx(-90.0) and e["yaw_error_deg"] == pytest.approx(10.0)
    # yaw folded into [0, 180]: 170° against −170° is 20°
    e = pose_errors(
        Similarity2D(rotation_matrix(math.radians(170)), np.zeros(2)),
        Similarity2D(rotation_matrix(math.radians(-170)), np.zeros(2)),
    )
    assert e["yaw_error_deg"] == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("heading_deg", "paper_lateral", "paper_longitudinal", "along", "across"),
    [
        # heading east (α = 0, yaw −90°): h = (−1, 0); the paper's longitudinal is the row (north-south) error,
        # which is across the vehicle; its lateral is the column error, along the vehicle
        (90.0, 4.0, 3.0, 4.0, 3.0),
        # heading north (α = 90°, yaw 0°): h = (0, 1); longitudinal = |dy| (columns: across), lateral = |dx| (along)
        (0.0, 3.0, 4.0, 3.0, 4.0),
        # heading north-east (yaw −45°): h = (−√½, √½); here the two conventions agree
        (45.0, 7 / math.sqrt(2), 1 / math.sqrt(2), 1 / math.sqrt(2), 7 / math.sqrt(2)),
    ],
)
def test_kitti_splits_by_hand(heading_deg, paper_lateral, paper_longitudinal, along, across):
    """One error (dx, dy) = (3, 4) m (rows down, columns right) split the paper's way (method §10:
    longitudinal = |dx·h₀ + dy·h₁|, lateral = |h₀·dy − h₁·dx|, h = (sin ψ, cos ψ)) and along / across the
    true heading, by hand."""
    true = Similarity2D.from_heading(heading_deg, np.array([10.0, -20.0]))
    pred = Similarity2D(true.R, true.t + np.array([3.0, 4.0]))
    e = pose_errors(pred, true)
    assert e["yaw_true_deg"] == pytest.approx(-heading_deg)
    assert e["paper_lateral_error_m"] == pytest.approx(paper_lateral)
    assert e["paper_longitudinal_error_m"] == pytest.approx(paper_longitudinal)
    assert e["along_heading_error_m"] == pytest.approx(along)
    assert e["across_heading_error_m"] == pytest.approx(across)
    assert e["position_error_m"] == pytest.approx(5.0)


def test_vigor_dot_oracle_end_to_end(vigor_root):
    """Readers' t and R agree with what the images show: the only error left is the oracle's offset."""
    ds = VigorDataset(vigor_root, "same", "unknown", seed=5, ground_size_hw=None)
    report = evaluate(DotOracle((0.6, -0.8), 3.0), ds, dataset_name="vigor")
    m = report.metrics
    assert m["count"] == 4 and m["with_pose"] == 4 and m["without_pose"] == 0
    for o in report.outcomes:
        assert o.position_error_m == pytest.approx(1.0, abs=0.2)
        assert o.yaw_error_deg == pytest.approx(3.0, abs=2.0)
    assert m["position_error_m"]["median"] == pytest.approx(1.0, abs=0.2)
    assert report.orientation_deg == 180.0 and report.split == "same"


def test_kitti_dot_oracle_end_to_end(kitti_root):
    ds = KittiDataset(kitti_root, "same", 180, ground_size_hw=(91, 308), aerial_size_px=504, depth_dir=None)
    report = evaluate(DotOracle((0.0, 0.0), 0.0), ds, dataset_name="kitti", depth_provider=FlatGroundDepth())
    for o in report.outcomes:
        assert o.position_error_m < 0.3 and o.yaw_error_deg < 2.5


def test_kitti_metrics_by_hand(kitti_root):
    ds = KittiDataset(kitti_root, "same", 10, ground_size_hw=(91, 308), aerial_size_px=126)
    # (along the heading m, across m, yaw offset °)
    offsets = [(0.5, 2.0, 0.5), (3.0, 0.2, -3.0), (7.0, 0.6, 10.0)]
    report = evaluate(TruthOracle(ds, offsets), ds, dataset_name="kitti")
    m = report.metrics
    pos = [math.hypot(a, b) for a, b, _ in offsets]
    assert m["position_error_m"]["mean"] == pytest.approx(np.mean(pos))
    assert m["position_error_m"]["median"] == pytest.approx(np.median(pos))
    assert m["along_heading_error_m"]["mean"] == pytest.approx((0.5 + 3.0 + 7.0) / 3)
    assert m["along_heading_error_m"]["recall@1m"] == pytest.approx(1 / 3)
    assert m["along_heading_error_m"]["recall@5m"] == pytest.approx(2 / 3)
    assert m["across_heading_error_m"]["median"] == pytest.approx(0.6)
    assert m["across_heading_error_m"]["recall@1m"] == pytest.approx(2 / 3)
    assert m["across_heading_error_m"]["recall@5m"] == pytest.approx(1.0)
    # the paper's columns, each sample's from its own errors (test_kitti_splits_by_hand pins the formula)
    for o in report.outcomes:
        e = pose_errors(
            Similarity2D(np.eye(2), np.asarray(o.t_pred_m)),
            Similarity2D.from_heading(-o.yaw_true_deg, np.asarray(o.t_true_m)),
        )
        assert o.paper_longitudinal_error_m == pytest.approx(e["paper_longitudinal_error_m"])
    paper_lon = [o.paper_longitudinal_error_m for o in report.outcomes]
    assert m["paper_longitudinal_error_m"]["mean"] == pytest.approx(np.mean(paper_lon))
    assert m["paper_lateral_error_m"]["median"] == pytest.approx(
        np.median([o.paper_lateral_error_m for o in report.outcomes])
    )
    assert m["yaw_error_deg"]["mean"] == pytest.approx((0.5 + 3 + 10) / 3)
    assert m["yaw_error_deg"]["median"] == pytest.approx(3.0)
    assert m["yaw_error_deg"]["recall@1deg"] == pytest.approx(1 / 3)
    assert m["yaw_error_deg"]["recall@5deg"] == pytest.approx(2 / 3)
    table = markdown_table(report)
    assert "| paper | 1.13 | 0.77 |" in table and "33.33%" in table and "66.67%" in table


def test_samples_without_a_pose_are_left_out_and_counted(kitti_root, vigor_root):
    """As the release: a sample without a pose is not scored at the prior; it is counted and left out."""
    ds = KittiDataset(kitti_root, "same", 10, ground_size_hw=(91, 308), aerial_size_px=126)
    report = evaluate(TruthOracle(ds, [(1.0, 0, 0), (0, 0, None), (3.0, 0, 0)]), ds, dataset_name="kitti")
    assert report.ransac is False  # KITTI's published solver by default
    m = report.metrics
    without = report.outcomes[1]
    assert without.status == "no_pose" and not without.has_pose and math.isnan(without.position_error_m)
    assert m["count"] == 3 and m["with_pose"] == 2 and m["without_pose"] == 1
    # scored at the prior it would have added ‖t‖ (several metres); left out, the mean is (1 + 3) / 2
    assert m["position_error_m"]["mean"] == pytest.approx(2.0, abs=1e-3)
    assert m["along_heading_error_m"]["recall@5m"] == pytest.approx(1.0)
    assert "2 with a pose (1 without one" in markdown_table(report)
    v = VigorDataset(vigor_root, "same", "known", ground_size_hw=(32, 64), aerial_size_px=64)
    rep = evaluate(TruthOracle(v, [(0, 0, None)] * 4), v, dataset_name="vigor")
    assert rep.metrics["without_pose"] == 4 and math.isnan(rep.metrics["position_error_m"]["median"])


def test_json_and_markdown_outputs(kitti_root, tmp_path):
    ds = KittiDataset(kitti_root, "same", 10, ground_size_hw=(91, 308), aerial_size_px=126)
    report = evaluate(
        TruthOracle(ds, [(1.5, 0, 2)] * 3), ds, dataset_name="kitti", config=PUBLISHED.replace(ransac=False)
    )
    report.write_json(tmp_path / "r.json")
    report.write_markdown(tmp_path / "r.md")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["ransac"] is False and data["orientation_deg"] == 10.0
    assert data["metrics"]["position_error_m"]["mean"] == pytest.approx(1.5)
    assert data["paper"]["position_error_m"] == {"mean": 1.13, "median": 0.77}
    assert len(data["samples"]) == 3 and data["samples"][0]["name"].endswith("0000000000.png")
    assert math.isnan(report.outcomes[0].scale) is False
    md = (tmp_path / "r.md").read_text()
    assert "without RANSAC" in md
    # both splits, under names that cannot be confused, each documented
    assert "the paper's columns in the release's convention" in md and "| along-heading mean (m) |" in md
    assert "release's convention" in data["kitti_splits"]["paper_lateral_error_m"]


@pytest.fixture(scope="module")
def tiny_localizer():
    torch.manual_seed(0)
    return Localizer.from_preset(TINY_KITTI, device="cpu")


def test_fp16_backbone_only_on_cuda(tiny_localizer):
    """The published presets ask for the release's fp16 backbone; the CPU path stays float32."""
    assert TINY_KITTI.fp16_backbone and tiny_localizer.fp16_backbone is False
    assert {p.dtype for p in tiny_localizer.backbone.parameters()} == {torch.float32}
    forced = Localizer(TINY_KITTI, tiny_localizer.backbone, tiny_localizer.matcher, "cpu", fp16_backbone=True)
    assert forced.fp16_backbone is False


def test_batched_path_matches_one_by_one(kitti_root, tiny_localizer):
    """A sample's matching probabilities and lifted points do not depend on the batch it is in, and the
    batched path ends in complete results."""
    ds = KittiDataset(kitti_root, "same", 10, ground_size_hw=(56, 182), aerial_size_px=56)
    samples = [ds[i] for i in range(3)]
    batch = match_batch(tiny_localizer, samples)
    assert batch.P.shape == (3, 41 * 41, 4 * 13) and batch.views[0].grid_rc == (4, 13)
    for i, s in enumerate(samples):
        alone = match_batch(tiny_localizer, [s])
        torch.testing.assert_close(batch.P[i], alone.P[0], rtol=1e-4, atol=1e-9)
        np.testing.assert_array_equal(batch.views[i].valid, alone.views[0].valid)
        np.testing.assert_allclose(batch.views[i].xy_ground_m, alone.views[0].xy_ground_m)
    results = localize_samples(tiny_localizer, samples[:2], PUBLISHED, [torch.Generator().manual_seed(0)] * 2)
    assert [r.status for r in results] == ["ok", "ok"] and results[0].num_inliers >= 3
    assert set(results[0].timings_s) == {"depth", "backbone_ground", "backbone_aerial", "heads", "solver"}
    assert results[0].inliers_ground_px.shape == (results[0].num_inliers, 2)
    direct = PUBLISHED.replace(ransac=False)
    single = localize_samples(tiny_localizer, samples[:1], direct, None)  # a batch of one: Localizer.localize
    assert single[0].ok and single[0].timings_s["backbone_ground"] > 0


def test_cli_eval_with_a_checkpoint(kitti_root, tiny_localizer, tmp_path, capsys):
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, TINY_KITTI, tiny_localizer.backbone, tiny_localizer.matcher, {"note": "test"})
    out_json, out_md = tmp_path / "o" / "r.json", tmp_path / "o" / "r.md"
    argv = [
        "eval",
        "kitti",
        "--root",
        str(kitti_root),
        "--split",
        "same",
        "--checkpoint",
        str(ckpt),
        "--device",
        "cpu",
        "--limit",
        "2",
        "--batch-size",
        "2",
        "--json",
        str(out_json),
        "--markdown",
        str(out_md),
        "--quiet",
    ]
    assert cli.main(argv) == 0
    data = json.loads(out_json.read_text())
    assert data["metrics"]["count"] == 2 and data["dataset"] == "kitti" and data["ransac"] is False
    assert data["config"]["limit"] == 2 and data["config"]["checkpoint"] == str(ckpt)
    # KITTI's published protocol without a flag: one weighted solve on 1,024 draws; fp32 on the CPU
    assert data["config"]["solver"]["ransac"] is False and data["config"]["solver"]["direct_samples"] == 1024
    assert data["config"]["fp16_backbone"] is False and data["config"]["resize_filter"] == "pillow_bilinear"
    assert "paper_lateral_error_m" in data["metrics"] and "along_heading_error_m" in data["metrics"]
    assert set(data["kitti_splits"]) == {
        "paper_lateral_error_m", "paper_longitudinal_error_m", "across_heading_error_m", "along_heading_error_m",
    }  # fmt: skip
    assert "KITTI same-area" in capsys.readouterr().out and out_md.is_file()


def test_cli_eval_errors(kitti_root, vigor_root, tiny_localizer, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LOC2_CACHE", str(tmp_path / "cache"))
    assert cli.main(["eval", "kitti", "--root", str(kitti_root), "--quiet"]) == 1
    assert "give --checkpoint" in capsys.readouterr().err
    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, TINY_KITTI, tiny_localizer.backbone, tiny_localizer.matcher, {})
    assert cli.main(["eval", "vigor", "--root", str(vigor_root), "--checkpoint", str(ckpt), "--quiet"]) == 1
    assert "expects pinhole images" in capsys.readouterr().err
    argv = [
        "eval",
        "kitti",
        "--root",
        str(kitti_root),
        "--backbone-weights",
        "dinov2-vitl14",
        "--matcher-weights",
        "loc2-kitti-10",
    ]
    assert cli.main(argv) == 1
    assert "dinov2-vitl14 is missing" in capsys.readouterr().err


def test_summarize_empty_and_vigor_keys():
    m = summarize([], "vigor")
    assert m["count"] == 0 and math.isnan(m["position_error_m"]["mean"])
    assert m["without_pose"] == 0 and "paper_lateral_error_m" not in m and "along_heading_error_m" not in m
    with pytest.raises(Loc2Error, match="no depth map"):
        from loc2.core.evaluation.inference import _depth_of

        class _S:
            depth = None
            name = "x"

        _depth_of(_S(), None)
