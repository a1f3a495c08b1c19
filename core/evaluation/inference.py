"""Localizing evaluation samples: one by one through ``localize``, or (``--batch-size`` > 1, worth it on a
GPU) with the backbone and the matcher heads on whole batches (:func:`match_batch`) and the solver per
sample (:func:`solve_sample`). Objects other than a Localizer with a ``localize`` method (test oracles) go
one by one. DataLoader workers (``--workers``) read and prepare the samples in parallel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from ..errors import Loc2Error
from ..inputs.depth import DepthMap, check_depth_size
from ..inputs.images import image_tensor
from ..localizer import GroundView, LocalizationResult, Localizer
from ..solver.config import PUBLISHED, SolverConfig
from .datasets import DATASET_SOLVER, Sample, collate_samples
from .metrics import EvalReport, Outcome, outcome_for, summarize


def _depth_of(sample: Sample, depth_provider) -> DepthMap:
    if sample.depth is not None:
        return sample.depth
    if depth_provider is None:
        raise Loc2Error(f"{sample.name}: the sample has no depth map; give a depth model (--depth-model)")
    return depth_provider.depth_for(sample.ground_rgb, sample.camera)


def _generator(localizer, seed: int, index: int) -> torch.Generator:
    device = getattr(localizer, "device", torch.device("cpu"))
    return torch.Generator(device=device).manual_seed(int(seed) * 1_000_003 + int(index))


def localize_one(localizer, sample: Sample, config: SolverConfig, generator, depth_provider=None):
    """``localizer.localize`` on one sample (any object with that method, e.g. a test oracle)."""
    return localizer.localize(
        sample.ground_rgb,
        sample.aerial_rgb,
        sample.aerial_footprint_m,
        _depth_of(sample, depth_provider),
        camera=sample.camera,
        generator=generator,
        config=config,
    )


def _batchable(localizer, samples: list[Sample]) -> bool:
    if not isinstance(localizer, Localizer) or len(samples) < 2:
        return False
    first = samples[0]
    return all(
        s.ground_rgb.shape == first.ground_rgb.shape and s.aerial_rgb.shape == first.aerial_rgb.shape
        for s in samples
    )


@dataclass
class BatchMatches:
    """Matching probabilities of a batch and what the solver needs per sample.

    Attributes:
        P: (B, A, G) matching probabilities (aerial points × ground tokens).
        views: per sample, its lifted ground tokens (:class:`GroundView` without descriptors).
        timings_s: seconds per stage for the whole batch.
    """

    P: torch.Tensor
    views: list[GroundView]
    timings_s: dict[str, float]


@torch.inference_mode()
def match_batch(loc: Localizer, samples: list[Sample], depth_provider=None) -> BatchMatches:
    """Backbone (ground, aerial) and matcher heads on a whole batch of same-sized samples."""
    dev, preset = loc.device, loc.preset
    t0 = time.perf_counter()
    depths = [_depth_of(s, depth_provider) for s in samples]
    timings = {"depth": time.perf_counter() - t0}
    h_img, w_img = samples[0].ground_rgb.shape[:2]
    in_h, in_w = loc.input_size(w_img, h_img)
    size = preset.aerial_size_px
    t0 = time.perf_counter()
    resize = preset.resize_filter
    g_feat = loc.features(torch.cat([image_tensor(s.ground_rgb, (in_h, in_w), dev, resize) for s in samples]))
    _sync(dev)
    timings["backbone_ground"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    a_feat = loc.features(torch.cat([image_tensor(s.aerial_rgb, (size, size), dev, resize) for s in samples]))
    _sync(dev)
    timings["backbone_aerial"] = time.perf_counter() - t0
    grid_rc = tuple(g_feat.shape[-2:])
    views = []
    for s, d in zip(samples, depths, strict=True):
        xy_ground_m, ok = _lift(loc, s, d, grid_rc, (in_h, in_w))
        views.append(GroundView(None, xy_ground_m, ok, grid_rc, (in_h, in_w), (h_img, w_img)))
    valid = torch.from_numpy(np.stack([v.valid for v in views])).to(dev)
    t0 = time.perf_counter()
    P = loc.matcher(g_feat, a_feat, valid, None)
    _sync(dev)
    timings["heads"] = time.perf_counter() - t0
    return BatchMatches(P, views, timings)


@torch.inference_mode()
def solve_sample(
    loc: Localizer, matches: BatchMatches, i: int, sample: Sample, config: SolverConfig, generator=None
) -> LocalizationResult:
    """The solver for sample ``i`` of a batch; batch timings are shared equally."""
    n = matches.P.shape[0]
    timings = {k: v / n for k, v in matches.timings_s.items()}
    return loc.solve(
        matches.views[i],
        matches.P[i],
        sample.aerial_footprint_m,
        config,
        generator=generator,
        timings=timings,
    )


def localize_samples(
    localizer,
    samples: list[Sample],
    config: SolverConfig = PUBLISHED,
    generators: list | None = None,
    depth_provider=None,
) -> list[LocalizationResult]:
    """Localize a batch: backbone and heads batched on the device (:func:`match_batch`), the solver per sample.

    Falls back to one ``localize`` call per sample for non-Localizer objects, a batch of one, or samples of
    different sizes.
    """
    generators = generators or [None] * len(samples)
    if not _batchable(localizer, samples):
        return [
            localize_one(localizer, s, config, g, depth_provider)
            for s, g in zip(samples, generators, strict=True)
        ]
    matches = match_batch(localizer, samples, depth_provider)
    return [solve_sample(localizer, matches, i, s, config, generators[i]) for i, s in enumerate(samples)]


def _lift(
    loc: Localizer, sample: Sample, depth: DepthMap, grid_rc, input_hw
) -> tuple[np.ndarray, np.ndarray]:
    """Lifted ground tokens (rows·cols, 2) and their validity, exactly as ``Localizer.localize`` forms them."""
    h_img, w_img = sample.ground_rgb.shape[:2]
    camera = sample.camera
    if (camera.width, camera.height) != (w_img, h_img):
        camera = camera.scaled(w_img, h_img)
    check_depth_size(depth.depth_m, (h_img, w_img), f"{sample.name}: depth map")
    return loc.lift(depth, camera, grid_rc, input_hw)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def evaluate(
    localizer,
    dataset,
    *,
    dataset_name: str,
    config: SolverConfig | None = None,
    batch_size: int = 1,
    workers: int = 0,
    seed: int = 0,
    depth_provider=None,
    on_batch: Callable[[int, str], None] | None = None,
) -> EvalReport:
    """Run ``localizer`` over ``dataset`` (a VigorDataset / KittiDataset or any sequence of Samples).

    Args:
        localizer: a :class:`Localizer` (batched path when ``batch_size`` > 1) or any object with ``localize``.
        dataset_name: ``vigor`` or ``kitti`` (which metrics).
        config: the solver; None: the published protocol of the dataset (``datasets.DATASET_SOLVER``: VIGOR
            RANSAC, KITTI one weighted solve).
        workers: DataLoader worker processes that read and prepare the samples.
        seed: seeds RANSAC per sample (seed, index), so runs are reproducible.
        depth_provider: computes depth for samples read without depth maps.
        on_batch: told (samples done in the batch, the median position error so far) after each batch.
    """
    from torch.utils.data import DataLoader

    config = DATASET_SOLVER[dataset_name] if config is None else config
    loader = DataLoader(
        dataset,
        batch_size=max(1, batch_size),
        shuffle=False,
        num_workers=max(0, workers),
        collate_fn=collate_samples,
    )
    outcomes: list[Outcome] = []
    start = time.perf_counter()
    for batch in loader:
        gens = [_generator(localizer, seed, s.index) for s in batch]
        results = localize_samples(localizer, batch, config, gens, depth_provider)
        for sample, result in zip(batch, results, strict=True):
            outcomes.append(outcome_for(sample, result))
        if on_batch is not None:
            errors = [o.position_error_m for o in outcomes if o.has_pose]
            on_batch(len(batch), f"median {np.median(errors):.2f} m" if errors else "no pose yet")
    orientation = float(getattr(dataset, "orientation_deg", math.nan))
    return EvalReport(
        dataset=dataset_name,
        split=str(getattr(dataset, "split", "")),
        orientation_deg=orientation,
        ransac=config.ransac,
        metrics=summarize(outcomes, dataset_name),
        outcomes=outcomes,
        config={"batch_size": batch_size, "workers": workers, "seed": seed, "solver": asdict(config)},
        elapsed_s=time.perf_counter() - start,
    )
