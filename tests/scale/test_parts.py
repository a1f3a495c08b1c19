"""GeoParquet result parts (``core/scale/parts.py``) and the batches of a large job (``plan.py``): no Ray."""

from __future__ import annotations

import dataclasses
import math
import sys

import geopandas
import numpy as np
import pandas
import pytest

from loc2.core.inputs.priors import PriorError, items_from_images
from loc2.core.output.formats import read_layer, read_poses
from loc2.core.output.results import PhotoResult
from loc2.core.scale.parts import (
    PartsError,
    check_parts_dir,
    done_photos,
    iter_results,
    list_parts,
    merge_parts,
    remove_stale_temporaries,
    result_from_json,
    result_to_json,
    write_part,
)
from loc2.core.scale.plan import items_from_parquet, plan_batches
from loc2.core.types import MODE_APPEND, MODE_OVERWRITE, MODE_REFUSE

CRS = "EPSG:32632"


def _result(i: int, ok: bool = True) -> PhotoResult:
    if not ok:
        return PhotoResult.failed(
            f"/p/{i}.jpg", f"/p/{i}.jpg: cannot read", prior_lon=9.0, prior_lat=47.3, crs_wkt=CRS
        )
    rng = np.random.default_rng(i)
    return PhotoResult(
        photo=f"/p/{i}.jpg",
        status="ok",
        x=465000.0 + rng.random(),
        y=5247000.0 - rng.random(),
        heading_deg=123.456789012345,
        prior_x=465001.0,
        prior_y=5246999.0,
        prior_heading_deg=120.0,
        scale=1.0 + 1e-12,
        num_inliers=7,
        inlier_ratio=0.3,
        crs_wkt=CRS,
        candidates=[(465000.0, 5247000.0, 7.0)],
        inliers_xy_crs=465000 + rng.random((7, 2)),
        inliers_uv=rng.random((7, 2)) * 100,
        inliers_prob=rng.random(7),
        inliers_resid_m=rng.random(7),
        layout_xy_crs=np.array([465000.0, 5247000.0]) + (rng.random((30, 2)) - 0.5) * 40,
        matches_ground_xy_crs=465000 + rng.random((3, 2)),
        matches_aerial_xy_crs=465000 + rng.random((3, 2)),
        matches_prob=rng.random(3),
    )


def assert_same_results(a: PhotoResult, b: PhotoResult, skip: tuple[str, ...] = ()) -> None:
    """Every field equal, bit for bit (NaN equal to NaN), arrays included."""
    for f in dataclasses.fields(a):
        if f.name in skip:
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray):
            assert x.shape == y.shape and x.tobytes() == y.tobytes(), (a.photo, f.name)
        elif isinstance(x, float) and math.isnan(x):
            assert isinstance(y, float) and math.isnan(y), (a.photo, f.name)
        else:
            assert x == y, (a.photo, f.name, x, y)


def test_a_result_survives_json_bit_for_bit():
    for result in (_result(1), _result(2, ok=False)):
        assert_same_results(result, result_from_json(result_to_json(result)))


def test_parts_are_geoparquet_renamed_into_place_and_merge_into_the_usual_layers(tmp_path):
    parts = tmp_path / "parts"
    write_part(parts, "t0_0-a", [_result(1), _result(2)], CRS)
    write_part(parts, "t0_1-b", [_result(3), _result(4, ok=False)], CRS)
    (parts / "part-t0_2-c.123.tmp").write_bytes(b"half a part")  # what a killed writer leaves
    assert [p.name for p in list_parts(parts)] == ["part-t0_0-a.parquet", "part-t0_1-b.parquet"]
    frame = geopandas.read_parquet(parts / "part-t0_0-a.parquet")
    assert frame.crs.to_epsg() == 32632 and list(frame["photo"]) == ["/p/1.jpg", "/p/2.jpg"]
    assert frame.geometry.iloc[0].x == _result(1).x
    assert done_photos(parts) == {f"/p/{i}.jpg" for i in (1, 2, 3, 4)}
    assert remove_stale_temporaries(parts) == 1 and not list(parts.glob("*.tmp"))

    writer, n = merge_parts(parts, tmp_path / "merged.gpkg")
    assert n == 4
    poses = read_poses(writer.path)
    assert list(poses["photo"]) == [f"/p/{i}.jpg" for i in (1, 2, 3, 4)]
    assert list(poses["status"]) == ["ok", "ok", "ok", "failed"]
    assert len(read_layer(writer.path, "inliers")) == 21 and len(read_layer(writer.path, "outlines")) == 3
    with pytest.raises(Exception, match="already holds results"):
        merge_parts(parts, tmp_path / "merged.gpkg")
    shp, _ = merge_parts(parts, tmp_path / "merged.shp")
    assert len(read_poses(shp.path)) == 4


def test_a_photo_in_two_parts_is_merged_once(tmp_path):
    write_part(tmp_path, "a", [_result(1), _result(2)], CRS)
    write_part(tmp_path, "b", [_result(2), _result(3)], CRS)
    assert [r.photo for r in iter_results(tmp_path)] == ["/p/1.jpg", "/p/2.jpg", "/p/3.jpg"]


def test_a_parts_folder_is_refused_resumed_or_cleared(tmp_path):
    write_part(tmp_path / "parts", "a", [_result(1)], CRS)
    with pytest.raises(PartsError, match="already holds 1 result parts: --resume"):
        check_parts_dir(tmp_path / "parts", MODE_REFUSE)
    check_parts_dir(tmp_path / "parts", MODE_APPEND)
    assert done_photos(tmp_path / "parts") == {"/p/1.jpg"}
    check_parts_dir(tmp_path / "parts", MODE_OVERWRITE)
    assert done_photos(tmp_path / "parts") == set()
    (tmp_path / "file").write_text("x")
    with pytest.raises(PartsError, match="is a file"):
        check_parts_dir(tmp_path / "file", MODE_REFUSE)


def test_bad_parts_are_named(tmp_path):
    (tmp_path / "part-x.parquet").write_bytes(b"not parquet")
    with pytest.raises(PartsError, match="part-x.parquet: not a Loc2 result part"):
        done_photos(tmp_path)
    with pytest.raises(PartsError, match="empty: no result parts to merge"):
        merge_parts(tmp_path / "empty", tmp_path / "m.gpkg")


def test_batches_hold_one_tile_each_in_a_fixed_order(scale_scene):
    from scale_scene import TILE_M

    items, _ = items_from_images([str(scale_scene / "photos")])
    batches = plan_batches(items, CRS, batch_size=8, tile_m=TILE_M)
    assert [len(b.items) for b in batches] == [8, 8, 4, 8, 8, 4]
    assert len({b.tile for b in batches}) == 2
    for b in batches:
        assert b.name.startswith(f"t{b.tile[0]}_{b.tile[1]}-")
    assert sorted(str(it.path) for b in batches for it in b.items) == sorted(str(it.path) for it in items)
    again = plan_batches(list(reversed(items)), CRS, batch_size=8, tile_m=TILE_M)
    assert [b.name for b in again] == [b.name for b in batches]


def test_a_parquet_photo_index_gives_the_photos_priors(scale_scene, tmp_path):
    items, _ = items_from_images([str(scale_scene / "photos")])
    table = pandas.DataFrame(
        {
            "photo": [f"photos/{it.path.name}" for it in items],
            "lon": [it.lon for it in items],
            "lat": [it.lat for it in items],
            "heading": [it.heading_deg for it in items],
        }
    )
    table.to_parquet(scale_scene / "index.parquet")
    plain = items_from_parquet(scale_scene / "index.parquet")
    assert [(str(i.path), i.lon, i.lat, i.heading_deg) for i in plain] == [
        (str(i.path), i.lon, i.lat, i.heading_deg) for i in items
    ]
    geo = geopandas.GeoDataFrame(
        table.drop(columns=["lon", "lat"]),
        geometry=geopandas.points_from_xy(table["lon"], table["lat"]),
        crs=4326,
    ).to_crs(CRS)
    geo.to_parquet(scale_scene / "index_utm.parquet")
    utm = items_from_parquet(scale_scene / "index_utm.parquet")
    assert np.allclose([i.lon for i in utm], [i.lon for i in items], atol=1e-9)
    table.drop(columns=["lat"]).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(PriorError, match=r"bad.parquet: .*missing lat"):
        items_from_parquet(tmp_path / "bad.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"junk")
    with pytest.raises(PriorError, match="junk.parquet: cannot be read as a Parquet photo index"):
        items_from_parquet(tmp_path / "junk.parquet")


def test_a_job_plans_from_a_parquet_index_and_skips_the_photos_done(scale_scene, tmp_path):
    from scale_scene import N_PHOTOS, TILE_M

    from loc2.core.scale.ray_engine import RayConfig, plan_job
    from loc2.core.types import JobOptions, LocalizeRequest, OutputSpec, PhotoSource

    items, _ = items_from_images([str(scale_scene / "photos")])
    frame = pandas.DataFrame({"photo": [str(i.path) for i in items] + [str(tmp_path / "gone.jpg")]})
    frame["lon"] = [i.lon for i in items] + [items[0].lon]
    frame["lat"] = [i.lat for i in items] + [items[0].lat]
    frame.to_parquet(tmp_path / "index.parquet")
    request = LocalizeRequest(
        ortho=str(scale_scene / "ortho.tif"),
        photos=PhotoSource(priors_file=str(tmp_path / "index.parquet")),
        output=OutputSpec(str(tmp_path / "parts"), None, MODE_APPEND),
        options=JobOptions(device="cpu"),
    )
    config = RayConfig(parts_dir=tmp_path / "parts", batch_size=16, tile_m=TILE_M)
    done = {str(items[0].path), str(items[1].path)}
    batches, unreadable, skipped, crs_wkt = plan_job(request, config, done)
    planned = [str(it.path) for b in batches for it in b.items]
    assert skipped == 2 and unreadable == [] and "32632" in crs_wkt
    assert len(planned) == N_PHOTOS + 1 - 2 and not done & set(planned)
    assert [len(b.items) for b in batches] == [16, 4, 16, 3]  # the missing photo fails in its batch


def test_a_ray_failure_names_the_engines_own_reason():
    from loc2.core.errors import Loc2Error
    from loc2.core.scale.ray_engine import _reason

    class Wrapped(Exception):  # as Ray's RayTaskError holds the worker's exception
        def __init__(self, cause):
            super().__init__("ray::MapWorker.submit() (pid=1)\nTraceback ...")
            self.cause = cause

    assert _reason(Wrapped(Loc2Error("tiny.pt: no such checkpoint"))) == "tiny.pt: no such checkpoint"
    assert _reason(Wrapped(ValueError("x"))) == "Wrapped: ray::MapWorker.submit() (pid=1)"


def test_without_ray_the_engine_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    from loc2.core.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray → ImportError
    argv = ["localize", "--ortho", str(tmp_path / "ortho.tif"), "--images", str(tmp_path / "photos")]
    assert main([*argv, "--engine", "ray", "--out", str(tmp_path / "r.gpkg")]) == 1
    assert "pip install 'loc2[ray]'" in capsys.readouterr().err
    assert not (tmp_path / "r.parts").exists()
