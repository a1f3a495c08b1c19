"""Generated bad lines for ``loc2 worker`` over its real pipes: bytes that are no JSON or no UTF-8, JSON
that is no object, unknown commands, missing or wrong-typed fields, requests with generated options, and
requests sent while another job runs.

One worker takes every line; after each, a ping must be answered (the worker survived and reads on).
No job may end in an ``internal`` failure (a bug), none may end twice, and stdout carries only protocol.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from worker_client import Worker

from loc2.core.worker import protocol as p

from .conftest import EXAMPLES
from .test_fuzz_options import OPTION_NAMES, json_values, numbers

ANSWER_S = 60.0  # a ping is answered within this, even under load
TERMINAL = (p.EVENT_DONE, p.EVENT_INFO, p.EVENT_FAILED)


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    w = Worker(stderr=subprocess.DEVNULL)
    assert w.next(ANSWER_S)["event"] == p.EVENT_READY
    yield w
    w.send({"cmd": p.CMD_SHUTDOWN})
    assert w.proc.wait(120) == 0
    assert all(
        line.isascii() for line in w.lines
    )  # every stdout line was a JSON object (or the reader failed)
    ended: dict[str, int] = {}
    for event in w.seen:
        assert not (event["event"] == p.EVENT_FAILED and event.get("kind") == p.KIND_INTERNAL), event
        if event["event"] in TERMINAL:
            ended[str(event.get("job"))] = ended.get(str(event.get("job")), 0) + 1
    assert all(n == 1 for n in ended.values()), {j: n for j, n in ended.items() if n != 1}


counter = iter(range(10**9))
# Every command but shutdown (that one ends the worker, as it should; tests/worker covers it).
commands = st.one_of(
    st.sampled_from([*(c for c in p.COMMANDS if c != p.CMD_SHUTDOWN), "fly", "", "LOCALIZE"]), json_values
)
requests = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "ortho": st.sampled_from(["/nonexistent/o.tif", "", "."]),
            "photos": st.just({"images": ["/nope.jpg"]}),
        },
        optional={
            "output": st.one_of(json_values, st.just({"path": "/nonexistent/dir/r.gpkg"})),
            "options": st.dictionaries(st.sampled_from(OPTION_NAMES), numbers, max_size=3),
        },
    ),
)


@st.composite
def lines(draw) -> bytes:
    """One generated line (with its newline)."""
    kind = draw(st.sampled_from(["bytes", "json", "message", "message", "message"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200)).replace(b"\n", b" ") + b"\n"
    if kind == "json":
        return json.dumps(draw(json_values)).encode() + b"\n"
    message = {"cmd": draw(commands)}
    if draw(st.integers(0, 3)):
        message["job"] = f"j{next(counter)}"
    elif draw(st.booleans()):
        message["job"] = draw(json_values)
    extra = {
        "request": requests,
        "photo": st.one_of(json_values, st.just("/nonexistent.jpg")),
        "source": json_values,
        "target": json_values,
        "format": json_values,
        "device": st.one_of(st.sampled_from(["cpu", "tpu"]), json_values),
    }
    for key in draw(st.lists(st.sampled_from(sorted(extra)), max_size=3, unique=True)):
        message[key] = draw(extra[key])
    text = json.dumps(message, allow_nan=True)
    return text.encode() + b"\n"


@pytest.mark.slow
@settings(max_examples=4 * EXAMPLES)
@given(line=lines())
def test_every_bad_line_is_answered_and_survived(worker, line):
    worker.send(line)
    worker.pong(ANSWER_S)
