"""The disk filling up during a write: ``loc2 localize`` under a file-size limit (``RLIMIT_FSIZE``, what a
full disk looks like to a writer: EFBIG instead of ENOSPC; no tmpfs needs mounting, so it runs anywhere).

The run stops with a message that names the output, says what is kept and how to go on; the GeoPackage
stays sound with the rows written before; ``--resume`` without the limit completes it, every photo once.
"""

from __future__ import annotations

import os
import resource
import subprocess

import pytest
from fuzz.test_fuzz_cli import loc2_command
from plugin_fixtures import make_city

from loc2.core.output.export import ResultWriter
from loc2.core.output.formats import read_layer

from .helpers import CRS, assert_each_photo_once, gpkg_is_sound

pytestmark = pytest.mark.slow
HEADROOM_BYTES = 24_000  # room for the unreadable photos' rows, not for a localized photo's inliers


def test_a_full_disk_stops_the_run_with_a_message_and_keeps_what_was_written(tmp_path):
    city = make_city(
        tmp_path / "city", n_panoramas=1
    )  # + a corrupt photo (written first) and one without GPS
    empty = tmp_path / "empty.gpkg"
    ResultWriter(empty, crs=CRS)
    limit = empty.stat().st_size + HEADROOM_BYTES

    def limited() -> None:  # in the child only: Python ignores SIGXFSZ, so writes fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "r.gpkg"
    args = ["localize", "--ortho", str(city.ortho), "--images", str(city.photos_dir), "--out", str(out)]
    args += ["--device", "cpu", "--search-radius", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    full = subprocess.run(
        loc2_command() + args, preexec_fn=limited, env=env, capture_output=True, text=True, timeout=300
    )
    assert full.returncode == 1, full.stderr[-3000:]
    assert "Traceback" not in full.stderr
    message = full.stderr.strip().splitlines()[-1]
    assert str(out) in message and "disk full" in message and "--resume" in message, message
    gpkg_is_sound(out)
    kept = set(read_layer(out, "poses")["photo"])
    assert str(city.corrupt) in kept  # written before the disk filled up, and still there

    done = subprocess.run(
        loc2_command() + [*args, "--resume"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    gpkg_is_sound(out)
    assert_each_photo_once(out, sorted(str(p) for p in city.photos_dir.iterdir()))
