"""``runtime.keep_freed_memory``: the engine's processes reuse the memory they free, so a forward's large
activations stop arriving as fresh pages the kernel must fault in (Linux, glibc)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from loc2.core.model import runtime

pytestmark = pytest.mark.skipif(runtime._glibc() is None, reason="glibc's malloc only (Linux)")

PROBE = """
import json, resource, sys
import torch
from loc2.core.model import runtime
kept = runtime.keep_freed_memory() if sys.argv[1] == "keep" else False
x = torch.rand(5203, 4096)  # an 85 MB activation: a ViT-L MLP's hidden layer at VIGOR's token count
faults = []
for _ in range(14):  # as a forward's blocks do, one after the other
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    y = (x * 0.5).erf() * x  # three fresh 85 MB results, two freed at once
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    del y
runtime.release_freed_memory()
print(json.dumps({"kept": kept, "faults": faults}))
"""


def _probe(mode: str) -> dict:
    run = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_freed_activations_are_reused_without_page_faults():
    plain, kept = _probe("plain"), _probe("keep")
    pages = 3 * 5203 * 4096 * 4 // 4096  # three 85 MB results per round
    assert not plain["kept"] and min(plain["faults"]) > pages // 2  # every round faults its pages in anew
    # the heap settles within a few rounds (measured: 1 to 4), then reuses what was freed: the last eight
    # rounds together fault in less than one round's pages (plain: eight rounds' worth)
    assert kept["kept"] and sum(kept["faults"][-8:]) < pages, kept["faults"]
