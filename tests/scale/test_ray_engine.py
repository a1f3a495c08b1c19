"""``loc2 localize --engine ray`` on a local Ray instance started here (2 CPUs): the same poses as one
process, bit for bit; a worker killed mid-run loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest
import torch

from loc2.core.cli import main
from loc2.core.inputs.priors import items_from_images
from loc2.core.output.formats import read_layer, read_poses
from loc2.core.pipeline.batch import localize_batch
from loc2.core.scale.parts import _read_column, done_photos, iter_results, list_parts
from loc2.core.scale.ray_engine import WORKERS_DIR, RayConfig, run_localize_ray
from loc2.core.types import MODE_APPEND, JobOptions, LocalizeRequest, OutputSpec, PhotoSource

ray = pytest.importorskip("ray", reason="the Ray engine's tests need the ray extra (pip install 'loc2[ray]')")
pytest.importorskip("ray.data")

from scale_scene import N_PHOTOS, TILE_M  # noqa: E402
from test_parts import assert_same_results  # noqa: E402


def _options(scene) -> JobOptions:
    return JobOptions(model=str(scene / "tiny.pt"), device="cpu", use_ransac=False, seed=3)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def single_process(scale_scene):
    """The poses of one process (`localize_batch`, one thread), by photo."""
    items, _ = items_from_images([str(scale_scene / "photos")])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        results = localize_batch(items, scale_scene / "ortho.tif", _options(scale_scene))
    finally:
        torch.set_num_threads(threads)
    return {r.photo: r for r in results}


def _assert_all_once(parts_dir, reference) -> None:
    photos = [p for part in list_parts(parts_dir) for p in _read_column(part, "photo")]
    assert sorted(photos) == sorted(reference)  # every photo, each once
    for result in iter_results(parts_dir):
        assert_same_results(result, reference[result.photo], skip=("runtime_s",))


@pytest.mark.slow
def test_the_command_line_on_ray_gives_the_single_process_poses(
    local_ray, scale_scene, single_process, tmp_path, capsys
):
    assert sum(r.ok for r in single_process.values()) >= N_PHOTOS // 2  # a test of poses, not of failures
    out = tmp_path / "results.gpkg"
    argv = ["localize", "--ortho", str(scale_scene / "ortho.tif"), "--images", str(scale_scene / "photos")]
    argv += ["--model", str(scale_scene / "tiny.pt"), "--device", "cpu", "--no-ransac", "--seed", "3"]
    argv += [
        "--engine",
        "ray",
        "--workers",
        "2",
        "--part-size",
        "8",
        "--batch-size",  # each part through the backbone 4 photos at a time, solved on a thread beside it
        "4",
        "--tile-size",
        str(TILE_M),
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert f"{N_PHOTOS}/{N_PHOTOS} photos" in err and "photos/s" in err and "ETA" in err
    assert f"merged {N_PHOTOS} photos into {out}" in err
    parts_dir = tmp_path / "results.parts"
    assert len(list_parts(parts_dir)) == 6  # 2 tiles of 20 photos, batches of 8
    _assert_all_once(parts_dir, single_process)
    poses = read_poses(out)
    assert sorted(poses["photo"]) == sorted(single_process)
    for _, row in poses.iterrows():
        assert row["heading"] == single_process[row["photo"]].heading_deg or row["status"] != "ok"
    assert len(read_layer(out, "shifts")) == sum(r.ok for r in single_process.values())

    assert main(argv) == 1  # the parts are there: refused without --resume
    assert "--resume goes on with them" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0  # nothing left to do; the merge is rewritten
    assert f"resumed: {N_PHOTOS} photos were already in" in capsys.readouterr().err
    assert len(read_poses(out)) == N_PHOTOS


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_nothing_and_the_rerun_duplicates_nothing(
    local_ray, scale_scene, single_process, tmp_path
):
    parts_dir = tmp_path / "parts"
    request = LocalizeRequest(
        ortho=str(scale_scene / "ortho.tif"),
        photos=PhotoSource(images=[str(scale_scene / "photos")]),
        output=OutputSpec(str(parts_dir), None, MODE_APPEND),
        options=_options(scale_scene),
    )
    # no restart: the dead worker stops the job (Ray's default restarts it and reruns its batch)
    config = RayConfig(parts_dir=parts_dir, workers=1, batch_size=2, tile_m=TILE_M, max_restarts=0)
    outcome: dict = {}

    def first_run() -> None:
        try:
            outcome["progress"] = run_localize_ray(request, config)[0]
        except Exception as exc:  # noqa: BLE001 - the driver may see the worker's death
            outcome["error"] = exc

    driver = threading.Thread(target=first_run)
    driver.start()
    deadline = time.monotonic() + 120
    while len(list_parts(parts_dir)) < 3 and time.monotonic() < deadline and driver.is_alive():
        time.sleep(0.05)
    records = list((parts_dir / WORKERS_DIR).glob("*.json"))
    assert records, "no worker started"
    pid = json.loads(records[0].read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    killed_with = len(list_parts(parts_dir))
    driver.join(timeout=180)
    assert not driver.is_alive()
    assert 3 <= killed_with < N_PHOTOS // 2, "the worker was not killed mid-run"
    for part in list_parts(parts_dir):  # every part complete and readable
        assert len(_read_column(part, "photo")) >= 1
    before = done_photos(parts_dir)
    assert "--resume to go on" in str(outcome["error"]) and len(before) < N_PHOTOS

    progress, skipped = run_localize_ray(request, config)  # the rerun: resume by photo id
    assert skipped == len(before)
    assert progress.done == N_PHOTOS - len(before) > 0
    _assert_all_once(parts_dir, single_process)
