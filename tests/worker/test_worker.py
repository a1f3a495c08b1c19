"""``loc2 worker``, the engine process the QGIS plugin drives, spoken to over its real pipes.

Every test starts the worker the way the plugin does (``python -I core/__main__.py worker``) and checks the
protocol of ``core/worker/protocol.py``: the ready line, answers, progress and results, every job ending
with one terminal event, bad lines answered and survived, busy, cancel, shutdown, end of input and the idle
timeout; and that nothing but protocol lines reaches stdout.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from plugin_fixtures import make_city
from worker_client import Worker

from loc2.core.worker import protocol as p


@pytest.fixture
def worker():
    w = Worker()
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait(10)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    return make_city(tmp_path_factory.mktemp("city"), n_panoramas=2)


def _request(city, out: Path, **options) -> dict:
    return {
        "ortho": str(city.ortho),
        "photos": {"images": [str(city.photos_dir)]},
        "output": {"path": str(out), "mode": "overwrite"},
        "options": {"device": "cpu", "search_radius_m": 1.0, **options},
    }


def test_ready_first_then_answers(worker):
    ready = worker.next()
    assert ready["event"] == p.EVENT_READY and ready["protocol"] == p.PROTOCOL_VERSION and ready["pid"]
    worker.send({"cmd": "ping"})
    assert worker.next()["event"] == p.EVENT_PONG
    worker.send({"cmd": "describe", "job": "d", "device": "cpu"})
    info, _ = worker.until(p.EVENT_INFO, "d")
    assert "torch" in info["info"] and "CPU" in info["info"]["device"]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        (b"not json\n", "not JSON"),
        (b"[1, 2]\n", "JSON object"),
        (b'{"job": "x"}\n', "'cmd'"),
        (b'{"cmd": "fly", "job": "x"}\n', "unknown command 'fly'"),
        (b'{"cmd": "localize"}\n', "'job' id"),
        (b'{"cmd": "localize", "job": "x"}\n', "lacks request"),
        (b'{"cmd": "export", "job": "x", "source": "a.gpkg"}\n', "lacks target"),
        (b"\xff\xfe\n", "not UTF-8"),
        (b"{" + b" " * (p.MAX_LINE_BYTES + 10) + b"}\n", "longer than"),
    ],
)
def test_a_bad_line_is_answered_and_survived(worker, line, needle):
    worker.next()  # ready
    worker.send(line)
    error = worker.next()
    assert error["event"] == p.EVENT_ERROR and error["kind"] == p.KIND_PROTOCOL and needle in error["message"]
    worker.send({"cmd": "ping"})
    assert worker.next()["event"] == p.EVENT_PONG


def test_a_bad_request_fails_its_job_with_a_message(worker, city, tmp_path):
    worker.next()
    request = _request(city, tmp_path / "r.gpkg", hfov_deg=0)
    worker.send({"cmd": "localize", "job": "j", "request": request})
    failed, _ = worker.until(p.EVENT_FAILED, "j")
    assert failed["kind"] == p.KIND_INPUT and "field of view" in failed["message"]
    request = _request(city, tmp_path / "r.gpkg", bogus=1)
    worker.send({"cmd": "localize", "job": "k", "request": request})
    failed, _ = worker.until(p.EVENT_FAILED, "k")
    assert "unknown option(s) bogus" in failed["message"]
    request = {**_request(city, tmp_path / "r.gpkg"), "ortho": str(tmp_path / "none.tif")}
    worker.send({"cmd": "localize", "job": "m", "request": request})
    failed, _ = worker.until(p.EVENT_FAILED, "m")
    assert "none.tif" in failed["message"]


def test_localize_progress_results_and_one_terminal_event(worker, city, tmp_path):
    worker.next()
    out = tmp_path / "r.gpkg"
    worker.send({"cmd": "localize", "job": "j", "request": _request(city, out)})
    done, before = worker.until(p.EVENT_DONE, "j")
    progress = [e for e in before if e["event"] == p.EVENT_PROGRESS]
    results = [e["result"] for e in before if e["event"] == p.EVENT_RESULT]
    fractions = [e["fraction"] for e in progress]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert [e["stage"] for e in progress][0] == "model" and "match" in {e["stage"] for e in progress}
    names = {Path(r["photo"]).name for r in results}
    assert names == {"pano_000.jpg", "pano_001.jpg", "zz_no_gps.jpg", "zz_corrupt.jpg"}
    summary = done["summary"]
    assert (
        summary["total"] == 4 and summary["localized"] + summary["failed"] == 4 and not summary["cancelled"]
    )
    assert summary["output"] == str(out) and summary["sources"]["poses"] == f"{out}|layername=poses"
    assert all(e.get("job") == "j" for e in before)
    worker.send({"cmd": "shutdown"})
    assert worker.until(p.EVENT_BYE)[0]
    assert worker.close() == 0
    for line in worker.lines:  # nothing but protocol lines on stdout, all ASCII
        assert isinstance(p.decode(line), dict) and line.isascii()


def test_busy_then_cancel_within_a_second(worker, city, tmp_path):
    worker.next()
    request = _request(city, tmp_path / "r.gpkg", search_radius_m=60.0)  # 29 crops per photo: long enough
    worker.send({"cmd": "localize", "job": "long", "request": request})
    worker.until(p.EVENT_PROGRESS, "long")
    worker.send({"cmd": "localize", "job": "other", "request": request})
    busy, _ = worker.until(p.EVENT_FAILED, "other")
    assert busy["kind"] == p.KIND_BUSY and "long" in busy["message"]
    event, _ = worker.until(p.EVENT_PROGRESS, "long")
    while event["stage"] != "match":
        event, _ = worker.until(p.EVENT_PROGRESS, "long")
    t0 = time.monotonic()
    worker.send({"cmd": "cancel", "job": "long"})
    done, before = worker.until(p.EVENT_DONE, "long")
    assert time.monotonic() - t0 < 1.0
    assert done["summary"]["cancelled"] and not [
        e for e in before if e["event"] == p.EVENT_RESULT and e["result"]["ok"]
    ]


@pytest.mark.slow
def test_end_of_input_and_idle_timeout_end_the_worker(tmp_path):
    w = Worker()
    assert w.next()["event"] == p.EVENT_READY
    assert w.close() == 0 and w.lines[-1].startswith(b'{"event": "bye"')  # QGIS exited: stdin closed
    idle = Worker("--idle-timeout", "1")
    assert idle.next()["event"] == p.EVENT_READY
    assert idle.proc.wait(20) == 0  # exits by itself
    assert b"idle" in idle.proc.stderr.read()
