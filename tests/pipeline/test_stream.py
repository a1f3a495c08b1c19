"""Photos in batches on three threads (``pipeline/stream.py``) against one photo after the other."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from pipeline_scene import lonlat

from loc2.core.pipeline import search, stream
from loc2.core.pipeline.batch import localize_batch
from loc2.core.types import JobOptions, OptionsError, PhotoItem


def _items(scene, repeat: int = 1) -> list[PhotoItem]:
    """Good and bad photos mixed, the good ones at several priors (so each has its own pose)."""
    photos = scene / "photos"
    items = []
    for k in range(repeat):
        items += [
            PhotoItem(photos / "a.jpg", *lonlat(40 + k, 40)),
            PhotoItem(photos / "b_nogps.jpg", None, None),
            PhotoItem(photos / "d.jpg", *lonlat(30, 50 - k)),
            PhotoItem(photos / "c_corrupt.jpg", *lonlat(40, 40)),
            PhotoItem(photos / "a.jpg", *lonlat(45, 35 + k)),
            PhotoItem(photos / "e_outside.jpg", *lonlat(5000, 0)),
        ]
    return items


def _options(scene, **kw) -> JobOptions:
    return JobOptions(model=str(scene / "tiny.pt"), device="cpu", search_radius_m=20.0, **kw)


def _key(result) -> tuple:
    """What a result says, without its timings."""
    return (
        result.photo,
        result.status,
        result.message,
        result.x,
        result.y,
        result.heading_deg,
        result.num_inliers,
    )


def test_batches_give_the_one_by_one_results_bit_for_bit_in_order(scene):
    items = _items(scene)
    one = localize_batch(items, scene / "ortho.tif", _options(scene))
    emitted = []
    batched = localize_batch(
        items, scene / "ortho.tif", _options(scene, batch_size=4), on_result=emitted.append
    )
    assert [r.photo for r in batched] == [str(i.path) for i in items] and emitted == batched
    assert [r.status for r in one] == ["ok", "failed", "ok", "failed", "ok", "failed"]
    assert [_key(r) for r in batched] == [_key(r) for r in one]  # floats compared exactly
    ok = [r for r in batched if r.ok]
    assert len({(r.x, r.y) for r in ok}) == len(ok)  # three different poses, not one repeated
    for a, b in zip(one, batched, strict=True):
        assert np.array_equal(np.asarray(a.inliers_xy_crs), np.asarray(b.inliers_xy_crs))


def test_each_batch_goes_to_the_networks_together_and_the_solver_beside_them(scene, monkeypatch):
    sizes, threads = [], set()
    real_net, real_solve = stream.network_stage, stream.solve_stage

    def network(localizer, photos, *a, **k):
        sizes.append(len(photos))
        return real_net(localizer, photos, *a, **k)

    def solve(*a, **k):
        threads.add(threading.current_thread().name)
        return real_solve(*a, **k)

    monkeypatch.setattr(stream, "network_stage", network)
    monkeypatch.setattr(stream, "solve_stage", solve)
    results = localize_batch(_items(scene, 2), scene / "ortho.tif", _options(scene, batch_size=5))
    # 12 photos in batches of 5, 5, 2; the bad ones are failed by the reader and never reach the networks
    assert sizes == [3, 2, 1] and sum(r.ok for r in results) == 6
    assert len(threads) == 1 and threads.pop().startswith("loc2-solve")


def test_a_photo_that_fails_in_the_networks_fails_alone(scene, monkeypatch):
    real = search.network_stage

    calls = []

    def network(localizer, photos, *a, **k):
        calls.append(len(photos))
        if any(p.photo.path.name == "d.jpg" for p in photos):
            raise RuntimeError("CUDA out of memory (simulated)")
        return real(localizer, photos, *a, **k)

    monkeypatch.setattr(stream, "network_stage", network)
    results = localize_batch(_items(scene), scene / "ortho.tif", _options(scene, batch_size=6))
    assert [r.status for r in results] == ["ok", "failed", "failed", "failed", "ok", "failed"]
    assert "d.jpg" in results[2].message and "out of memory" in results[2].message
    assert calls == [3, 1, 1, 1]  # the batch, then each of its photos alone


def test_cancel_keeps_every_computed_result_and_starts_no_new_photo(scene):
    emitted = []
    asked = []

    def is_canceled() -> bool:
        asked.append(len(emitted))
        return len(asked) > 1  # the first batch runs, then the job is cancelled

    items = _items(scene, 2)
    results = localize_batch(
        items,
        scene / "ortho.tif",
        _options(scene, batch_size=3),
        on_result=emitted.append,
        is_canceled=is_canceled,
    )
    assert results == emitted and [r.photo for r in results] == [str(i.path) for i in items[:3]]
    assert [r.status for r in results] == ["ok", "failed", "ok"]


def test_a_failing_writer_stops_the_stream_after_what_was_written(scene):
    written = []

    def write(result):
        if len(written) == 2:
            raise OSError("No space left on device")
        written.append(result)

    with pytest.raises(OSError, match="No space"):
        localize_batch(_items(scene, 2), scene / "ortho.tif", _options(scene, batch_size=4), on_result=write)
    assert [w.status for w in written] == ["ok", "failed"]


@pytest.mark.parametrize("bad", [0, -3, 2.5, 10_000, "x"])
def test_a_bad_batch_size_is_refused_with_its_name(bad):
    with pytest.raises(OptionsError, match="batch size"):
        JobOptions(batch_size=bad)


def test_where_the_device_batches_photos_each_gets_its_own_features_and_matches(scene, monkeypatch):
    """The GPU's batched path, run on the CPU: the photos' ground images in one backbone pass, their crops
    four at a time, and each photo's P as computed alone (to rounding: batched, the bits may differ)."""
    from loc2.core.inputs.ortho import Orthophoto
    from loc2.core.localizer import Localizer
    from loc2.core.pipeline.batch import load_localizer

    options = _options(scene)
    localizer = load_localizer(options)
    items = [it for it in _items(scene) if it.path.name in ("a.jpg", "d.jpg")]
    with Orthophoto.open(scene / "ortho.tif") as ortho:
        ready = [search.read_stage(it, ortho, localizer.preset, options) for it in items]
    alone = [search.network_stage(localizer, [r])[0] for r in ready]
    passes = []
    real = Localizer.features
    monkeypatch.setattr(Localizer, "batches_photos", property(lambda self: True))
    monkeypatch.setattr(
        Localizer, "features", lambda self, image: passes.append(len(image)) or real(self, image)
    )
    together = search.network_stage(localizer, ready, 4)
    crops = [len(r.crops) for r in ready]
    assert sum(crops) > 4  # a 20 m search: several crops each
    aerial_passes = [min(4, sum(crops) - k) for k in range(0, sum(crops), 4)]
    assert passes == [len(ready), *aerial_passes]  # one ground pass (one grid each), then the crops
    for a, b in zip(alone, together, strict=True):
        assert a.matches.count == b.matches.count and np.array_equal(a.view.valid, b.view.valid)
        [pa], [pb] = a.matches.probs(), b.matches.probs()
        assert pa.shape == pb.shape and torch.allclose(pa, pb, rtol=1e-4, atol=1e-7)
