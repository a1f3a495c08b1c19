"""Faults at the output, in-process and fast: a run killed between a photo's layers (detail rows written,
its poses row not) and two runs writing into one output.

A photo counts as done only once its poses row is written (it is written last); a resumed output first
drops the rows of photos without a poses row, so every photo ends up exactly once in every layer.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from loc2.core.errors import ExportError
from loc2.core.output.export import ResultWriter
from loc2.core.output.lock import lock_path, output_lock
from loc2.core.output.tables import layer_tables
from loc2.core.types import LAYER_POSES, MODE_APPEND

from .helpers import CRS, assert_each_photo_once, gpkg_is_sound, made_up_result


def _killed_between_layers(writer: ResultWriter, index: int) -> None:
    """What a kill -9 after a photo's detail layers and before its poses row leaves on disk."""
    tables = layer_tables([made_up_result(index)])
    del tables[LAYER_POSES]
    writer.write_tables(tables)


@pytest.mark.parametrize("suffix", [".gpkg", ".shp", ".geojson"])
def test_a_photo_killed_between_its_layers_is_written_once_on_resume(tmp_path, suffix):
    out = tmp_path / f"r{suffix}"
    first = ResultWriter(out, crs=CRS)
    first.write(made_up_result(1))
    _killed_between_layers(first, 2)  # the run dies here: photo 2 has detail rows, no poses row

    resumed = ResultWriter(out, crs=CRS, mode=MODE_APPEND)
    assert resumed.done_photos() == {"/photos/p1.jpg"}
    assert_each_photo_once(out, ["/photos/p1.jpg"])  # photo 2's rows are gone
    resumed.write(made_up_result(2))
    resumed.write(made_up_result(3))
    assert_each_photo_once(out, [f"/photos/p{i}.jpg" for i in (1, 2, 3)])
    if suffix == ".gpkg":
        gpkg_is_sound(out)


def test_the_rows_of_a_photo_killed_before_any_poses_row_are_dropped(tmp_path):
    out = tmp_path / "r.gpkg"
    _killed_between_layers(ResultWriter(out, crs=CRS), 1)  # killed during the very first photo
    ResultWriter(out, crs=CRS, mode=MODE_APPEND).write(made_up_result(1))
    assert_each_photo_once(out, ["/photos/p1.jpg"])
    gpkg_is_sound(out)


HOLD = """
import sys, time
from loc2.core.output.lock import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def test_a_second_run_into_the_same_output_is_refused_until_the_first_ends(tmp_path):
    out = tmp_path / "r.gpkg"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with (
            pytest.raises(ExportError, match=f"being written by another Loc2 run \\(process {holder.pid}\\)"),
            output_lock(out),
        ):
            pass
        holder.kill()  # kill -9: the operating system releases the lock; its file stays behind
        holder.wait(10)
        assert lock_path(out).exists()
        t0 = time.monotonic()
        with output_lock(out):  # a stale lock file never blocks
            pass
        assert time.monotonic() - t0 < 1.0 and not lock_path(out).exists()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
