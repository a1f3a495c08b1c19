"""Weights are checked before loading: a pinned size before any hashing, then the SHA-256 against the pin and
the ``<file>.sha256`` record written at download or first use (trust on first use). Real files in a temporary
cache, written and read back with torch; no network."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from loc2.core import cli
from loc2.core.errors import CheckpointError
from loc2.core.model import integrity, weights
from loc2.core.model.integrity import IntegrityError, read_record, record_path
from loc2.core.model.weights import ModelSpec, load_model_weights, resolve_weights, trust

STATE = {"layer.weight": torch.arange(1000, dtype=torch.float32)}


@pytest.fixture
def hashes(monkeypatch):
    """Count the files actually read for hashing."""
    seen = []
    real = integrity._hash_file

    def counting(path):
        seen.append(path)
        return real(path)

    monkeypatch.setattr(integrity, "_hash_file", counting)
    return seen


def _place(path, state=STATE):
    torch.save(state, path)
    return path


def test_a_hand_placed_file_is_recorded_at_first_use_and_a_change_is_refused(tmp_path, hashes):
    path = _place(weights.model_path("loc2-kitti-10", tmp_path))
    assert trust("loc2-kitti-10", tmp_path) == "unverified"
    assert torch.equal(load_model_weights("loc2-kitti-10", tmp_path)["layer.weight"], STATE["layer.weight"])
    record = read_record(path)
    assert record.size == path.stat().st_size and record.verified == "first use, not verified"
    assert trust("loc2-kitti-10", tmp_path) == "recorded"
    _place(path, {"layer.weight": STATE["layer.weight"] + 1})  # same size, other numbers
    with pytest.raises(IntegrityError) as info:
        load_model_weights("loc2-kitti-10", tmp_path)
    text = str(info.value)
    assert str(path) in text and record.sha256 in text and "changed since" in text
    assert "delete loc2_kitti_10.pth.sha256" in text  # what to do when the change is on purpose


def test_a_file_is_hashed_once_per_process_until_it_changes(tmp_path, hashes):
    path = _place(weights.model_path("loc2-kitti-180", tmp_path))
    for _ in range(3):
        assert resolve_weights("loc2-kitti-180", tmp_path) == path
    assert len(hashes) == 1
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched: read again, still the same bytes
    resolve_weights("loc2-kitti-180", tmp_path)
    assert len(hashes) == 2


def test_a_wrong_size_is_refused_before_hashing(tmp_path, hashes):
    path = _place(weights.model_path("dinov2-vitl14", tmp_path))  # not the pinned 1,217,586,395 bytes
    with pytest.raises(IntegrityError, match=r"expected 1217586395 \(its pinned size\)") as info:
        resolve_weights("dinov2-vitl14", tmp_path)
    assert "loc2 models download dinov2-vitl14 --force" in str(info.value) and str(path) in str(info.value)
    assert hashes == [] and not record_path(path).exists()


def test_a_record_of_another_size_is_refused_before_hashing(tmp_path, hashes):
    path = _place(weights.model_path("loc2-vigor-same-known", tmp_path))
    resolve_weights("loc2-vigor-same-known", tmp_path)
    _place(path, {"layer.weight": torch.zeros(2000)})
    with pytest.raises(IntegrityError, match="bytes, but .* when it was recorded"):
        resolve_weights("loc2-vigor-same-known", tmp_path)
    assert len(hashes) == 1


def test_a_pinned_digest_is_checked(tmp_path, monkeypatch):
    path = _place(tmp_path / "p.pth")
    good = integrity.sha256_file(path)
    for pin, ok in ((good, True), ("ab" * 32, False)):
        monkeypatch.setitem(weights.REGISTRY, "test-p", ModelSpec("test-p", "p.pth", "matcher", sha256=pin))
        record_path(path).unlink(missing_ok=True)
        if ok:  # a stale record (another file's digest and size) yields to the matching pin
            integrity.write_record(path, integrity.Record("ef" * 32, 3))
            assert resolve_weights("test-p", tmp_path) == path and trust("test-p", tmp_path) == "pinned"
            assert read_record(path) == integrity.Record(good, path.stat().st_size, verified="pinned sha256")
        else:
            with pytest.raises(IntegrityError, match=f"sha256 {good}, expected {'ab' * 32} \\(its pinned"):
                resolve_weights("test-p", tmp_path)


def test_a_file_given_by_path_is_checked_against_the_record_beside_it(tmp_path):
    path = _place(tmp_path / "mine.pth")
    assert resolve_weights(path) == path and not record_path(path).exists()  # no record: none written
    integrity.write_record(path, integrity.Record("cd" * 32, path.stat().st_size))
    with pytest.raises(IntegrityError, match="mine.pth: sha256 .* but cdcd"):
        load_model_weights(path)
    record_path(path).write_text("sha256 nothex\nsize 12\n")
    with pytest.raises(IntegrityError, match="mine.pth.sha256: the sha256 line is not 64 hex digits"):
        resolve_weights(path)


def test_cli_lists_trust_and_prints_pins(tmp_path, capsys):
    cache = str(tmp_path)
    path = _place(weights.model_path("loc2-kitti-10", tmp_path))
    assert cli.main(["models", "--cache", cache, "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(line for line in lines if line.startswith("loc2-kitti-10 "))
    assert row.split()[2:4] == ["present", "unverified"]
    assert any("1,217,586,395 bytes, size pinned" in line for line in lines)
    assert cli.main(["models", "--cache", cache, "digest", "loc2-kitti-10"]) == 0
    out = capsys.readouterr().out.splitlines()
    digest = integrity.sha256_file(path)
    assert out[-2:] == [f'sha256="{digest}",', f"size={path.stat().st_size:_},"]
    assert "first use, not verified" in out[1]
    assert cli.main(["models", "--cache", cache, "list"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("loc2-kitti-10 "))
    assert row.split()[3] == "recorded"
    assert cli.main(["models", "--cache", cache, "digest", "loc2-kitti-180"]) == 1
    assert "loc2-kitti-180 is missing" in capsys.readouterr().err


def test_unsafe_weights_are_refused_without_suggesting_unsafe_loading(tmp_path):
    evil = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(2), "obj": threading.Lock}, evil)
    with pytest.raises(CheckpointError) as info:
        load_model_weights(evil)
    assert "evil.pth" in str(info.value) and "weights_only" not in str(info.value).replace("\n", " ")
