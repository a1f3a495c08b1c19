"""kill -9 of ``loc2 localize`` and of ``loc2 worker`` at several points of a batch, then resume.

After every kill the GeoPackage passes SQLite's integrity check and opens in GDAL; after the last resume
every photo is in it exactly once, in every layer (the writer is killed with its process: at the model,
between photos, and at a fixed delay into a photo, which lands inside its writes or its computation).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from fuzz.test_fuzz_cli import loc2_command
from plugin_fixtures import make_city
from worker_client import Worker

from loc2.core.output.lock import lock_path
from loc2.core.worker import protocol as p

from .helpers import assert_each_photo_once, gpkg_is_sound

pytestmark = pytest.mark.slow
WAIT_S = 300.0


def poses_rows(out: Path) -> int:
    """Rows in the poses table now (0 while it does not exist)."""
    if not out.exists():
        return 0
    con = sqlite3.connect(f"file:{out}?mode=ro", uri=True, timeout=30)
    try:
        return con.execute("SELECT count(*) FROM poses").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        con.close()


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return make_city(tmp_path_factory.mktemp("city"), n_panoramas=2)  # + a photo without GPS, a corrupt one


def _photos(city) -> list[str]:
    return sorted(str(f) for f in city.photos_dir.iterdir())


def test_the_command_line_killed_at_several_points_then_resumed(city, tmp_path):
    out = tmp_path / "r.gpkg"
    args = ["localize", "--ortho", str(city.ortho), "--images", str(city.photos_dir), "--out", str(out)]
    args += ["--device", "cpu", "--search-radius", "1", "--resume"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    kill_points = {
        "loading the model": lambda: lock_path(out).exists(),
        "after the first rows": lambda: poses_rows(out) >= 2,
        "into a photo": lambda: poses_rows(out) >= 3,
    }
    for point, condition in kill_points.items():
        run = subprocess.Popen(
            loc2_command() + args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            wait_for(lambda run=run, condition=condition: condition() or run.poll() is not None, point)
            time.sleep(0.3 if point == "into a photo" else 0.0)
        finally:
            run.send_signal(signal.SIGKILL)
            run.wait(30)
        if out.exists():
            gpkg_is_sound(out)
    done = subprocess.run(loc2_command() + args, env=env, capture_output=True, text=True, timeout=WAIT_S)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "already done" in done.stderr.splitlines()[-1]
    gpkg_is_sound(out)
    assert_each_photo_once(out, _photos(city))


def test_the_worker_killed_after_a_result_then_resumed_by_a_new_worker(city, tmp_path):
    out = tmp_path / "w.gpkg"
    request = {
        "ortho": str(city.ortho),
        "photos": {"images": [str(city.photos_dir)]},
        "output": {"path": str(out), "mode": "append"},
        "options": {"device": "cpu", "search_radius_m": 1.0},
    }
    first = Worker(stderr=subprocess.DEVNULL)
    try:
        first.send({"cmd": p.CMD_LOCALIZE, "job": "a", "request": request})
        wait_for(lambda: sum(e["event"] == p.EVENT_RESULT for e in first.seen) >= 3, "three results")
    finally:
        first.kill()
    gpkg_is_sound(out)
    assert poses_rows(out) >= 3  # a result reported is a result kept

    second = Worker(stderr=subprocess.DEVNULL)
    try:
        second.send({"cmd": p.CMD_LOCALIZE, "job": "b", "request": request})
        wait_for(
            lambda: any(e["event"] in (p.EVENT_DONE, p.EVENT_FAILED) for e in second.seen), "the job's end"
        )
        end = second.seen[-1]
        assert end["event"] == p.EVENT_DONE, end
        assert end["summary"]["skipped"] >= 3
        second.send({"cmd": p.CMD_SHUTDOWN})
        assert second.proc.wait(60) == 0
    finally:
        second.kill()
    gpkg_is_sound(out)
    assert_each_photo_once(out, _photos(city))
