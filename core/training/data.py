"""Training views: ground images with depth, aerial crops and true poses, rendered from synthetic cities."""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..geometry.cameras import Equirectangular, Pinhole
from ..geometry.pose import Similarity2D
from ..model.presets import Preset


@dataclass
class Batch:
    """A training batch. Poses map ground BEV points to the aerial frame: X = R·Y + t (metres)."""

    ground: torch.Tensor  # (B, 3, H, W) in [0, 1]
    aerial: torch.Tensor  # (B, 3, S, S) in [0, 1]
    depth: list[np.ndarray]  # per sample (H, W) metres, NaN invalid (radial for panoramas, z for pinhole)
    cameras: list  # per sample camera model at the ground image's size
    R: torch.Tensor  # (B, 2, 2)
    t: torch.Tensor  # (B, 2) metres, aerial frame


def _image_tensor(images: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)


@dataclass
class Sample:
    """One rendered training view: ground image + depth, its aerial crop and the true pose in that crop."""

    ground: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float16 metres, NaN invalid
    aerial: np.ndarray  # (S, S, 3) uint8
    camera: object  # Equirectangular or Pinhole at the ground image's size
    xy_aerial_m: np.ndarray  # (2,) camera position, aerial frame (x down, y right)
    heading_aerial_deg: float  # camera heading, clockwise from the crop's up (north)


def render_samples(
    seed: int, count: int, preset_dict: dict, camera: str, max_offset_m: float, pinhole_fraction: float
) -> list[Sample]:
    """Render ``count`` training views in synthetic city ``seed`` (a worker function: plain arguments)."""
    from ..synthetic.city import SyntheticCity

    preset = Preset.from_dict(preset_dict)
    city = SyntheticCity(seed)
    rng = np.random.default_rng([seed, 7])
    h, w = preset.ground_size_hw
    footprint, size = preset.aerial_footprint_m, preset.aerial_size_px
    out = []
    for pos in city.sample_positions(rng, count):
        heading = float(rng.uniform(0, 360))
        pinhole = camera == "pinhole" or (camera == "mixed" and rng.random() < pinhole_fraction)
        if pinhole:
            cam = Pinhole.from_fov(w, int(round(w * 3 / 4)), 90.0)
            rgb, depth = city.render_pinhole(tuple(pos), heading, cam)
        else:
            cam = Equirectangular(w, h)
            rgb, depth = city.render_panorama(tuple(pos), heading, (h, w))
        r = max_offset_m * math.sqrt(rng.random())
        a = rng.uniform(0, 2 * math.pi)
        centre = pos + r * np.array([math.sin(a), math.cos(a)])  # local metres (≈ ground metres)
        aerial = city.render_aerial(tuple(centre), footprint, size)
        t = city.local_to_aerial(pos, centre, 0.0)
        out.append(Sample(rgb, depth.astype(np.float16), aerial, cam, np.asarray(t, np.float64), heading))
    return out


class SyntheticData:
    """Training views pre-rendered from a pool of synthetic cities (one worker process per core), served
    with random panorama rolls (a roll by k columns turns the camera by −360·k/W degrees)."""

    def __init__(
        self,
        preset: Preset,
        seeds: list[int],
        camera: str = "panorama",
        max_offset_m: float = 15.0,
        per_city: int = 200,
        pinhole_fraction: float = 0.25,
        workers: int = 2,
        cache: Path | None = None,
    ):
        self.preset = preset
        key = json.dumps(
            [
                preset.ground_size_hw,
                preset.aerial_size_px,
                preset.aerial_footprint_m,
                list(seeds),
                camera,
                max_offset_m,
                per_city,
                pinhole_fraction,
            ]
        )
        t0 = time.perf_counter()
        samples = _load_cache(cache, key) if cache else None
        if samples is None:
            jobs = [(s, per_city, preset.to_dict(), camera, max_offset_m, pinhole_fraction) for s in seeds]
            samples = _render_all(jobs, workers)
            if cache:
                _save_cache(cache, key, samples)
        self.panoramas = [x for x in samples if isinstance(x.camera, Equirectangular)]
        self.pinholes = [x for x in samples if isinstance(x.camera, Pinhole)]
        print(
            f"rendered {len(samples)} training views from {len(seeds)} cities in {time.perf_counter() - t0:.0f} s",
            file=sys.stderr,
        )

    def batch(self, size: int, rng: np.random.Generator) -> Batch:
        use_pinhole = self.pinholes and (
            not self.panoramas
            or rng.random() < len(self.pinholes) / (len(self.pinholes) + len(self.panoramas))
        )
        pool = self.pinholes if use_pinhole else self.panoramas
        grounds, aerials, depths, cams, Rs, ts = [], [], [], [], [], []
        for i in rng.integers(0, len(pool), size):
            x = pool[i]
            ground, depth, heading = x.ground, x.depth.astype(np.float32), x.heading_aerial_deg
            if isinstance(x.camera, Equirectangular):
                k = int(rng.integers(0, ground.shape[1]))
                ground, depth = np.roll(ground, k, axis=1), np.roll(depth, k, axis=1)
                heading = (heading - 360.0 * k / ground.shape[1]) % 360.0
            ground = _jitter_colour(ground, rng)
            grounds.append(ground)
            aerials.append(_jitter_colour(x.aerial, rng))
            depths.append(depth)
            cams.append(x.camera)
            Rs.append(Similarity2D.from_heading(heading).R)
            ts.append(x.xy_aerial_m)
        return Batch(
            _image_tensor(grounds),
            _image_tensor(aerials),
            depths,
            cams,
            torch.tensor(np.stack(Rs), dtype=torch.float32),
            torch.tensor(np.stack(ts), dtype=torch.float32),
        )


def _render_all(jobs: list[tuple], workers: int) -> list[Sample]:
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(workers) as pool:
            chunks = pool.starmap(render_samples, jobs)
    else:
        chunks = [render_samples(*job) for job in jobs]
    return [x for chunk in chunks for x in chunk]


def _save_cache(path: Path, key: str, samples: list[Sample]) -> None:
    """Rendered views as one .npz (arrays only; cameras as numbers), so a restart need not re-render."""
    cams = np.array(
        [
            [0, c.width, c.height, 0, 0, 0, 0]
            if isinstance(c, Equirectangular)
            else [1, c.width, c.height, c.fx, c.fy, c.cx, c.cy]
            for c in (x.camera for x in samples)
        ]
    )
    arrays = {
        "key": np.array(key),
        "cams": cams,
        "pos": np.stack([x.xy_aerial_m for x in samples]),
        "heading": np.array([x.heading_aerial_deg for x in samples]),
    }
    for i, x in enumerate(samples):
        arrays[f"g{i}"], arrays[f"d{i}"], arrays[f"a{i}"] = x.ground, x.depth, x.aerial
    np.savez(path, **arrays)


def _load_cache(path: Path, key: str) -> list[Sample] | None:
    if not Path(path).is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        if str(z["key"]) != key:
            return None
        out = []
        for i, (cam, pos, heading) in enumerate(zip(z["cams"], z["pos"], z["heading"], strict=True)):
            kind, w, h = int(cam[0]), int(cam[1]), int(cam[2])
            camera = Equirectangular(w, h) if kind == 0 else Pinhole(*map(float, cam[3:7]), w, h)
            out.append(Sample(z[f"g{i}"], z[f"d{i}"], z[f"a{i}"], camera, pos, float(heading)))
        return out


def _jitter_colour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random brightness/contrast/colour balance, so the model does not rely on exact synthetic colours."""
    gain = rng.uniform(0.75, 1.25) * rng.uniform(0.9, 1.1, 3)
    bias = rng.uniform(-20, 20)
    return np.clip(image.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
