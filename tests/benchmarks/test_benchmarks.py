"""The benchmark scripts run (so they cannot rot): the GPU check in its CPU mode, the solver benchmark and
the scaling benchmark in their quick modes. Their figures are judged by people; here only that they run
and that what they check holds."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_runs_on_the_cpu_and_its_poses_agree():
    """benchmarks/gpu_check.sh --device cpu --quick: throughput at batch 1 and 2, the backbone's fraction of
    its matmul limit, and three synthetic panoramas localized at one thread in batches of two and at two
    threads one by one, bit for bit."""
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=1500, env={**os.environ, "PY": sys.executable},
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    out = run.stdout
    assert "batch 1:" in out and "batch 2:" in out and "photos/s" in out
    assert "of its FLOPs at the matrix-product rate measured now" in out
    assert "poses device vs CPU on 3 photos: largest difference 0.000 m, 0.000° (agree" in out


@pytest.mark.slow
def test_solver_benchmark_quick_mode_prints_its_figures():
    from loc2.benchmarks import solver

    result = solver.main(["--quick", "--problems", "1", "--repeats", "1", "--threads", "1"])
    assert result["ratio"] > 0 and len(result["ours_errors"]) == 1
    assert max(result["ours6_errors"][0][:2]) < 1.0  # metres, degrees: the planted pose is found


def test_gpu_check_compare_tells_agreeing_from_disagreeing_poses(tmp_path):
    from loc2.benchmarks.gpu_check import compare

    head = "photo,status,x,y,heading\n"
    (tmp_path / "a.csv").write_text(head + "p/1.jpg,ok,10.0,20.0,359.5\np/2.jpg,ok,0,0,10\n")
    (tmp_path / "b.csv").write_text(head + "q/1.jpg,ok,10.1,20.0,0.3\n")
    (tmp_path / "c.csv").write_text(head + "q/1.jpg,ok,12.0,20.0,0.3\n")
    assert compare(tmp_path / "a.csv", tmp_path / "b.csv", 0.5, 1.0) == 0  # across north: 0.8°
    assert compare(tmp_path / "a.csv", tmp_path / "c.csv", 0.5, 1.0) == 1
    assert compare(tmp_path / "b.csv", tmp_path / "a.csv", 0.5, 1.0) == 1  # a CPU photo missing on the device


def test_vit_flops_and_token_counts():
    from loc2.benchmarks.limits import tokens_of, vit_flops

    assert tokens_of(714, 1428) == 51 * 102 + 1 and tokens_of(630, 630) == 45 * 45 + 1
    n, d = 5203, 1024
    assert vit_flops(n) == pytest.approx(24 * (24 * n * d * d + 4 * n * n * d), rel=0.01)
    assert json.dumps(vit_flops(10))  # a plain number


def test_vit_block_benchmark_prints_its_breakdown_and_the_gelu_keeps_its_bits(capsys):
    from loc2.benchmarks import vit_block

    out = vit_block.main(["--tokens", "65", "--repeats", "1"])
    assert out["gelu_same_bits"] is True  # the in-place GELU is the plain formula, bit for bit
    assert out["block_s"] > 0 and out["matmul_gflops"] > 0 and out["sdpa_gflops"] > 0
    assert "mlp_chunks_1024_same_bits" in out and "one ViT-L/14 block at 65 tokens" in capsys.readouterr().out


def test_backbone_profile_runs_both_memory_modes_with_the_same_features():
    """benchmarks/backbone_profile.py at a small size: one plain and one memory-reusing process, each a
    forward with its figures, and the same features from both (the memory settings change no bit)."""
    from loc2.benchmarks.backbone_profile import main

    rows = main(["--size", "112", "224", "--pairs", "1", "--profile"])
    assert [r["mode"] for r in rows] == ["plain", "keep"]
    assert not rows[0]["kept"] and rows[1]["kept"]
    assert rows[0]["checksum"] == rows[1]["checksum"]
    assert all(r["seconds"] > 0 and r["page_faults"] >= 0 for r in rows)
    assert "scaled_dot_product" in rows[1]["profile"]
