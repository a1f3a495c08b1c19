"""The command line's progress bar (``core/cli/progress.py``), shared by ``loc2 localize`` and ``loc2 eval``."""

from __future__ import annotations

import io

from loc2.core.cli.progress import ProgressBar


def test_progress_bar_writes_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = ProgressBar(4, "eval test", stream=stream, log_every_s=1e9)
    for _ in range(4):
        bar.update(1, status="median 1.00 m")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("eval test 1/4") and lines[-1].startswith("eval test 4/4")
    assert "100.0%" in lines[-1] and len(lines) == 2  # first and last only


def test_progress_bar_writes_every_update_with_no_interval():
    """``loc2 localize`` logs a line per photo: the label is optional, the status names the photo."""
    stream = io.StringIO()
    bar = ProgressBar(3, stream=stream, log_every_s=0.0)
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        bar.update(1, name)
    lines = stream.getvalue().splitlines()
    assert [line.split()[0] for line in lines] == ["1/3", "2/3", "3/3"]
    assert lines[-1].endswith("c.jpg") and "100.0%" in lines[-1]
