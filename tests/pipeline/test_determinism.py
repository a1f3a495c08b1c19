"""One photo, one seed, one pose, at any CPU thread count (``core/model/runtime.py``).

Every check runs in fresh processes: torch takes its thread count from ``OMP_NUM_THREADS`` /
``MKL_NUM_THREADS`` at start-up, and MKL reads ``MKL_CBWR`` once, at its first call, so neither can be
set inside the test process (which may have run MKL already). This file is also the helper those
processes run: ``python test_determinism.py networks|sampler`` prints a JSON object of digests.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # fresh processes at several thread counts: 7-45 s each

THREADS = (1, 2, 3, 16)
CITY_SEED = 1002  # never used in training (below 1000), nor by `loc2 demo` (1001)
# the variables that set torch's (and MKL's) thread count, and the choice the engine makes itself
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_CBWR")


def _env(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _THREAD_VARIABLES}
    env["OMP_WAIT_POLICY"] = "PASSIVE"  # 16 threads on a small machine: waiting threads sleep, not spin
    return {**env, **variables}


def _digest(tensor) -> str:
    return hashlib.sha256(tensor.detach().contiguous().cpu().numpy().tobytes()).hexdigest()


def _run_helper(job: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), job],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------ the command line
CLI_ENVS = {
    "1 thread": {"OMP_NUM_THREADS": "1"},
    "2 threads": {"OMP_NUM_THREADS": "2"},
    "3 threads": {"OMP_NUM_THREADS": "3"},
    "16 threads": {"OMP_NUM_THREADS": "16"},
    "MKL_NUM_THREADS=3": {"MKL_NUM_THREADS": "3"},
    "OMP 2, MKL 1": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "1"},
}


def _loc2_command() -> list[str]:
    script = Path(sys.executable).with_name("loc2")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "loc2.core.cli"]


def _poses(path: Path) -> list[dict[str, str]]:
    """The written rows as text (every digit), without the one column that is a wall-clock time."""
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k != "runtime_s"} for row in csv.DictReader(fh)]


def test_the_command_line_writes_the_same_poses_at_any_thread_count(tmp_path):
    from loc2.core.synthetic.datasets import generate_dataset

    city = tmp_path / "city"
    generate_dataset(city, CITY_SEED, n_panoramas=2, n_pinhole=2, prior_sigma_m=5.0)
    poses = {}
    for name, variables in CLI_ENVS.items():
        out = tmp_path / f"poses {name}.csv"
        args = ["localize", "--ortho", str(city / "ortho.tif"), "--images", str(city / "photos")]
        args += ["--device", "cpu", "--out", str(out), "--overwrite"]
        done = subprocess.run(
            _loc2_command() + args, env=_env(**variables), capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"{name}: {done.stderr[-3000:]}"
        poses[name] = _poses(out)
    first = poses["1 thread"]
    assert len(first) == 4 and sum(row["status"] == "ok" for row in first) >= 3
    for name, rows in poses.items():
        for a, b in zip(first, rows, strict=True):
            differing = {k: (a[k], b[k]) for k in a if a[k] != b[k]}
            assert not differing, f"{Path(a['photo']).name}, 1 thread vs {name}: {differing}"


def _worker_poses(request: dict, threads: str) -> None:
    """Run one localize job through ``loc2 worker`` (the plugin's engine process) at ``threads`` threads;
    stdin is closed once the job is done (a shutdown would cancel it)."""
    engine_main = Path(__file__).resolve().parents[2] / "core" / "__main__.py"
    worker = subprocess.Popen(
        [sys.executable, "-I", str(engine_main), "worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=_env(OMP_NUM_THREADS=threads),
        text=True,
    )
    try:
        worker.stdin.write(json.dumps({"cmd": "localize", "job": "j", "request": request}) + "\n")
        worker.stdin.flush()
        events = []
        for line in worker.stdout:
            events.append(json.loads(line))
            if events[-1]["event"] in ("done", "failed"):
                break
        assert events and events[-1]["event"] == "done", events[-3:]
        worker.stdin.close()
        assert worker.wait(60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(30)


def test_the_worker_writes_the_command_lines_poses_at_1_and_2_threads(tmp_path):
    """A whole batch through the worker (as the plugin runs it) at 1 and 2 threads: the CLI's rows."""
    from loc2.core.synthetic.datasets import generate_dataset

    city = tmp_path / "city"
    generate_dataset(city, CITY_SEED, n_panoramas=1, n_pinhole=1, prior_sigma_m=5.0)
    cli_out = tmp_path / "cli.csv"
    args = ["localize", "--ortho", str(city / "ortho.tif"), "--images", str(city / "photos")]
    done = subprocess.run(
        _loc2_command() + [*args, "--device", "cpu", "--out", str(cli_out)],
        env=_env(OMP_NUM_THREADS="2"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    expected = _poses(cli_out)
    assert len(expected) == 2 and any(row["status"] == "ok" for row in expected)
    for threads in ("1", "2"):
        out = tmp_path / f"worker {threads}.csv"
        request = {
            "ortho": str(city / "ortho.tif"),
            "photos": {"images": [str(city / "photos")]},
            "output": {"path": str(out), "mode": "refuse"},
            "options": {"device": "cpu"},
        }
        _worker_poses(request, threads)
        assert _poses(out) == expected, f"worker at {threads} thread(s) vs the CLI at 2"


# ------------------------------------------------------------------------------------ the networks
def test_published_networks_give_the_same_matching_probabilities_at_any_thread_count():
    """DINOv2 ViT-L/14 and the matcher (random weights in the published layouts) on a small input."""
    digests = _run_helper("networks")
    assert set(digests) == {str(t) for t in THREADS}
    assert len(set(digests.values())) == 1, digests


def _networks_job() -> dict[str, str]:
    import numpy as np
    import torch
    from layouts import dinov2_vitl14_layout, random_state, read_layout

    from loc2.core.inputs.depth import FlatGroundDepth
    from loc2.core.localizer import Localizer
    from loc2.core.model.presets import VIGOR

    preset = VIGOR.replace(ground_size_hw=(56, 112), aerial_size_px=56)  # 4 × 8 ground, 4 × 4 aerial tokens
    backbone = random_state(dinov2_vitl14_layout(), seed=0)
    matcher = random_state(read_layout("loc2_matcher_state_dict.tsv"), seed=1)
    localizer = Localizer.from_preset(preset, backbone, matcher, device="cpu")  # the engine's own settings
    rng = np.random.default_rng(0)
    ground = rng.integers(0, 256, (112, 224, 3), dtype=np.uint8)
    aerial = rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)
    out = {}
    for threads in THREADS:
        torch.set_num_threads(threads)
        view = localizer.prepare_ground(ground, FlatGroundDepth())
        P = localizer.match_view(view, aerial, 72.0)
        assert P.shape == (41 * 41, 32) and bool(torch.isfinite(P).all()) and float(P.sum()) > 0
        out[str(threads)] = _digest(P)
    return out


# ------------------------------------------------------------------------------------ the sampler
def test_the_sampler_draws_the_same_pairs_at_any_thread_count():
    results = _run_helper("sampler")
    assert set(results) == {str(t) for t in THREADS}
    for threads, result in results.items():
        assert result == results["1"], f"1 thread vs {threads}"


def _sampler_job() -> dict[str, dict]:
    import torch

    from loc2.core.solver.sampling import CorrespondenceSampler

    gen = torch.Generator().manual_seed(11)
    a, g = 3 * 41 * 41, 1000  # three search crops' aerial points × ground tokens: several 1M-entry chunks
    spread = torch.rand(a, g, generator=gen) ** 8  # many small entries: draws with replacement suffice
    peaked = spread * 1e-4  # a few thousand heavy entries: the explicit race
    heavy = torch.randint(0, a * g, (3000,), generator=gen)
    peaked.view(-1)[heavy] = torch.rand(3000, generator=gen) + 0.5
    flat = torch.rand(a, g, generator=gen)  # one entry holds 1 %, the rest is flat: the light ones race too
    flat[0, 0] = 2.5e4
    columns = torch.rand(g, generator=gen) < 0.7
    cases = {
        "spread": (spread, None),
        "peaked": (peaked, None),
        "peaked, masked": (peaked, columns),
        "flat and one peak": (flat, None),
    }
    out = {}
    for threads in THREADS:
        torch.set_num_threads(threads)
        result = {}
        for name, (P, cols) in cases.items():
            sampler = CorrespondenceSampler(P, cols)
            draws = torch.Generator().manual_seed(0)
            pairs = [torch.stack(sampler.draw(count, draws)) for count in (8192, 8192, 20000)]
            result[name] = {
                "total": sampler.total.hex(),
                "block maxima": _digest(sampler.block_max),
                "rounds": _digest(torch.stack(sampler.draw_rounds(20, 8192, draws))),
                "blocks": _digest(sampler.block_cdf),
                "pairs": [_digest(p) for p in pairs],
            }
        out[str(threads)] = result
    return out


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the shared helpers (layouts)
    jobs = {"networks": _networks_job, "sampler": _sampler_job}
    print(json.dumps(jobs[sys.argv[1]]()))
