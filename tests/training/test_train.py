"""Weakly supervised training: the loss falls on a fixed batch; checkpoints, sidecar, curve and resume."""

import json

import numpy as np
import pytest
import torch

from loc2.core.localizer import Localizer
from loc2.core.model.checkpoints import read_checkpoint
from loc2.core.model.presets import demo_preset
from loc2.core.training.data import SyntheticData
from loc2.core.training.loss import loss_terms
from loc2.core.training.trainer import TrainConfig, train

TINY = demo_preset().replace(
    name="tiny-demo",
    backbone="cnn",
    embed_dim=32,
    desc_dim=32,
    head_widths=(32, 32),
    ground_size_hw=(64, 128),
    aerial_size_px=96,
    aerial_grid=21,
    extra={"backbone_kwargs": {"embed_dim": 32, "width": 8, "stride": 8}},  # trained, not frozen
)


@pytest.fixture(scope="module")
def data():
    return SyntheticData(TINY, [5], camera="panorama", per_city=4, workers=1)


def test_views_are_consistent_with_their_pose(data):
    batch = data.batch(4, np.random.default_rng(0))
    assert batch.ground.shape == (4, 3, 64, 128) and batch.aerial.shape == (4, 3, 96, 96)
    assert torch.allclose(batch.R @ batch.R.transpose(1, 2), torch.eye(2).expand(4, 2, 2), atol=1e-6)
    assert (batch.t.abs() <= 15.0 + 1e-6).all()  # the camera lies within max_offset of the crop centre
    assert all(np.isfinite(d).any() for d in batch.depth)


def test_short_training_lowers_the_loss_on_a_fixed_batch(data):
    torch.manual_seed(0)
    loc = Localizer(TINY, *Localizer.build_networks(TINY), device="cpu")
    batch = data.batch(4, np.random.default_rng(1))
    params = list(loc.backbone.parameters()) + list(loc.matcher.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3)
    loc.backbone.train()
    loc.matcher.train()
    losses = []
    for _ in range(25):
        terms = loss_terms(loc, batch, torch.Generator().manual_seed(0))
        opt.zero_grad()
        terms["loss"].backward()
        opt.step()
        losses.append(float(terms["loss"].detach()))
    nce_first = losses[0]
    assert min(losses[-5:]) < 0.8 * nce_first, losses


def test_train_writes_checkpoint_sidecar_curve_and_resumes(tmp_path):
    out = tmp_path / "m.pt"
    cfg = TrainConfig(
        out=out,
        steps=3,
        batch_size=2,
        seeds=(5,),
        per_city=3,
        log_every=1,
        save_every=2,
        preset=TINY,
        workers=1,
    )
    train(cfg, command="loc2 train --test")
    preset, _, _ = read_checkpoint(out)
    assert preset == TINY
    meta = json.loads(out.with_suffix(".pt.json").read_text())
    assert meta["training"]["steps"] == 3 and meta["command"] == "loc2 train --test"
    assert meta["data"]["synthetic_seeds"] == [5] and "loss" in meta["metrics"]
    assert out.with_suffix(".loss.png").stat().st_size > 1000
    cfg.steps, cfg.resume = 5, True
    train(cfg)
    meta = json.loads(out.with_suffix(".pt.json").read_text())
    assert meta["training"]["steps"] == 5
    state = torch.load(out.with_suffix(".pt.state"), weights_only=True)
    assert state["step"] == 5 and len(json.loads(state["history"])) == 5
