"""Writing results to GeoPackage, Shapefile, GeoJSON and CSV and reading them back."""

from __future__ import annotations

import math
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import pytest
from shapely.geometry import Point

from loc2.core.errors import ExportError
from loc2.core.output.export import ResultWriter, convert_output, write_results
from loc2.core.output.formats import infer_format, output_layers, read_layer, read_poses
from loc2.core.output.results import PhotoResult
from loc2.core.output.tables import LATER_FIELDS, LAYER_POSES, LAYER_SCHEMAS, POSE_FIELDS, layer_tables

UTM33 = pyproj.CRS.from_epsg(32633)
OGR_FORMATS = ["gpkg", "shp", "geojson"]
ALL_FORMATS = OGR_FORMATS + ["csv"]


def _result(i: int, crs: pyproj.CRS = UTM33) -> PhotoResult:
    rng = np.random.default_rng(i)
    x, y = 500_000.0 + 37.125 * i + 1 / 3, 5_300_000.0 + 11.0 * i
    ang = rng.uniform(0, 2 * math.pi, 300)
    r = rng.uniform(1, 18, 300)
    layout = np.column_stack([x + r * np.cos(ang), y + r * np.sin(ang)])
    return PhotoResult(
        photo=f"/photos/straße_{i}_é.jpg",
        status="ok",
        x=x,
        y=y,
        heading_deg=(123.456789 * i) % 360,
        prior_x=x - 2.5,
        prior_y=y + 1.25,
        prior_heading_deg=(120.0 * i) % 360 if i % 2 == 0 else None,
        scale=1.0 + 0.01 * i,
        num_inliers=500 + i,
        inlier_ratio=0.1 + 0.1 * i,
        runtime_s=1.0 / 7,
        model="demo",
        depth="flat",
        solver="precise",
        precision="float32",
        crs_wkt=crs.to_wkt(),
        candidates=[(x, y, 1.0)],
        inliers_xy_crs=layout[:12],
        inliers_uv=rng.uniform(0, 1000, (12, 2)),
        inliers_prob=rng.uniform(0, 1, 12),
        inliers_resid_m=rng.uniform(0, 2.5, 12),
        layout_xy_crs=layout,
        matches_ground_xy_crs=layout[:4],
        matches_aerial_xy_crs=layout[:4] + 0.5,
        matches_prob=np.linspace(0.8, 0.2, 4),
    )


def _failed() -> PhotoResult:
    return PhotoResult.failed(
        "/photos/bad.jpg", "the prior lies outside the orthophoto", prior_lon=15.0, prior_lat=47.85,
        crs_wkt=UTM33.to_wkt(), runtime_s=0.25, model="demo", depth="flat", solver="published",
        precision="auto",
    )  # fmt: skip


@pytest.fixture(scope="module")
def results() -> list[PhotoResult]:
    return [_result(1), _result(2), _failed(), _result(3)]


def _expected_frame(results, layer, include_matches=True) -> pd.DataFrame:
    table = layer_tables(results, include_matches=include_matches)[layer]
    frame = pd.DataFrame([attrs for _, attrs in table.rows], columns=table.field_names)
    frame["geometry"] = [g for g, _ in table.rows]
    return frame


# Float tolerances (rtol, atol) per format: GeoPackage and CSV round-trip doubles exactly; a shapefile's dbf
# keeps 15 decimals; GDAL's GeoJSON writer trims the last digit or two of 17 (e.g. ...36999999999987 → ...367).
TOLERANCES = {"gpkg": (0.0, 0.0), "csv": (0.0, 0.0), "shp": (0.0, 1e-9), "geojson": (1e-13, 0.0)}


def _assert_same(read: gpd.GeoDataFrame, expected: pd.DataFrame, layer: str, fmt: str) -> None:
    rtol, atol = TOLERANCES[fmt]
    fields = LAYER_SCHEMAS[layer][1]
    assert [c for c in read.columns if c != "geometry"] == [n for n, _ in fields]
    assert len(read) == len(expected)
    for name, kind in fields:
        got, want = read[name].to_numpy(), expected[name].to_numpy()
        if kind == "float":
            np.testing.assert_allclose(
                got.astype(float), want.astype(float), rtol=rtol, atol=atol, err_msg=name
            )
        else:
            assert list(got) == list(want), name
        if kind == "int":
            assert read[name].dtype == np.int64
    for g_read, g_want in zip(read.geometry, expected["geometry"], strict=True):
        if g_want is None:
            assert g_read is None
        else:
            assert g_read.geom_type == g_want.geom_type
            # shapefiles store rings clockwise: compare normalised geometries (same vertices, same order)
            assert g_read.normalize().equals_exact(g_want.normalize(), tolerance=max(atol, rtol * 1e7))


@pytest.mark.parametrize("fmt", OGR_FORMATS)
def test_every_layer_reads_back_identical(tmp_path, results, fmt):
    path = tmp_path / f"out.{fmt}"
    writer = ResultWriter(path, crs=UTM33, include_matches=True)
    writer.write_many(results)
    for layer in ("poses", "priors", "inliers", "outlines", "shifts", "matches"):
        read = read_layer(path, layer)
        assert read.crs == UTM33, layer
        _assert_same(read, _expected_frame(results, layer), layer, fmt)
    poses = read_poses(path)
    assert poses.loc[2, "photo"] == "/photos/bad.jpg" and poses.loc[2, "geom_src"] == "prior"
    assert poses.loc[0, "photo"] == "/photos/straße_1_é.jpg"


def test_csv_holds_poses_with_coordinates(tmp_path, results):
    path = tmp_path / "poses.csv"
    ResultWriter(path, crs=UTM33).write_many(results)
    header = path.read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header == [n for n, _ in POSE_FIELDS]
    assert {"x", "y", "lon", "lat"} <= set(header)
    read = read_poses(path)
    assert read.crs == UTM33
    _assert_same(read, _expected_frame(results, "poses"), "poses", "csv")
    assert path.with_suffix(".csvt").read_text().count(",") == len(POSE_FIELDS) - 1
    # GDAL reads the CSV as a point layer in the ortho CRS with its sidecar files
    info = pyogrio.read_info(path, X_POSSIBLE_NAMES="x", Y_POSSIBLE_NAMES="y")
    assert pyproj.CRS.from_user_input(info["crs"]) == UTM33
    assert dict(zip(info["fields"], info["ogr_types"], strict=True))["inliers"] == "OFTInteger"
    with pytest.raises(ExportError, match="only the poses"):
        read_layer(path, "inliers")


def test_schema_is_identical_across_formats(tmp_path, results):
    schemas = {}
    for fmt in ALL_FORMATS:
        path = tmp_path / f"s.{fmt}"
        ResultWriter(path, crs=UTM33).write_many(results)
        read = read_poses(path)
        schemas[fmt] = [(c, str(read[c].dtype)) for c in read.columns if c != "geometry"]
    assert schemas["gpkg"] == schemas["shp"] == schemas["geojson"] == schemas["csv"]
    assert [c for c, _ in schemas["gpkg"]] == [n for n, _ in POSE_FIELDS]


def test_shapefile_files_and_field_names(tmp_path, results):
    path = tmp_path / "res.shp"
    ResultWriter(path, crs=UTM33, include_matches=True).write_many(results)
    for layer in ("poses", "priors", "inliers", "outlines", "shifts", "matches"):
        for suffix in (".shp", ".shx", ".dbf", ".prj", ".cpg"):
            assert (tmp_path / f"res_{layer}{suffix}").exists(), (layer, suffix)
        info = pyogrio.read_info(tmp_path / f"res_{layer}.shp")
        assert list(info["fields"]) == [n for n, _ in LAYER_SCHEMAS[layer][1]]
        assert info["geometry_type"] == LAYER_SCHEMAS[layer][0]
    assert (tmp_path / "res_poses.cpg").read_text().strip().upper() in {"UTF-8", "UTF8"}
    prj = pyproj.CRS.from_wkt((tmp_path / "res_poses.prj").read_text())
    assert prj.to_epsg() == 32633
    assert all(len(n) <= 10 for _, fields in LAYER_SCHEMAS.values() for n, _ in fields)
    assert len(read_poses(tmp_path / "res_poses.shp")) == 4  # a layer's own file reads too


@pytest.mark.parametrize("fmt", ["gpkg", "shp"])
def test_empty_layers_have_schema_and_geometry_type(tmp_path, fmt):
    path = tmp_path / f"empty.{fmt}"
    writer = ResultWriter(path, crs=UTM33, include_matches=True)
    for name, target in writer.targets.items():
        info = pyogrio.read_info(target.path, layer=target.layer)
        assert info["features"] == 0
        assert list(info["fields"]) == [n for n, _ in LAYER_SCHEMAS[name][1]]
        assert info["geometry_type"] == LAYER_SCHEMAS[name][0]
        assert pyproj.CRS.from_user_input(info["crs"]) == UTM33
    assert writer.done_photos() == set()


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_append_writes_incrementally(tmp_path, fmt):
    path = tmp_path / f"inc.{fmt}"
    first = ResultWriter(path, crs=UTM33)
    first.write(_result(1))
    assert list(read_poses(path)["photo"]) == [_result(1).photo]  # on disk right after the photo
    first.write(_failed())
    again = ResultWriter(path, crs=UTM33, mode="append")
    assert again.done_photos() == {_result(1).photo, "/photos/bad.jpg"}
    assert again.done_photos(ok_only=True) == {_result(1).photo}
    again.write(_result(2))
    poses = read_poses(path)
    assert list(poses["photo"]) == [_result(1).photo, "/photos/bad.jpg", _result(2).photo]
    if fmt != "csv":
        assert len(read_layer(path, "inliers")) == 24
        assert len(read_layer(path, "shifts")) == 2
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_append_after_only_failures_and_to_a_new_output(tmp_path, fmt):
    path = tmp_path / f"fail.{fmt}"
    fresh = ResultWriter(path, crs=UTM33, mode="append")  # nothing there yet: created
    assert fresh.done_photos() == set()
    fresh.write(_failed())  # detail layers stay empty
    again = ResultWriter(path, crs=UTM33, mode="append")
    again.write(_result(1))
    assert list(read_poses(path)["photo"]) == ["/photos/bad.jpg", _result(1).photo]
    if fmt != "csv":
        assert len(read_layer(path, "inliers")) == 12


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_refuse_mode_never_overwrites(tmp_path, fmt):
    path = tmp_path / f"keep.{fmt}"
    ResultWriter(path, crs=UTM33).write(_result(1))
    with pytest.raises(ExportError, match="already holds results") as err:
        ResultWriter(path, crs=UTM33)
    assert "keep" in str(err.value) and "1 photo" in str(err.value)
    assert len(read_poses(path)) == 1


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_overwrite_mode_replaces(tmp_path, fmt):
    path = tmp_path / f"over.{fmt}"
    ResultWriter(path, crs=UTM33, include_matches=True).write_many([_result(1), _result(2)])
    writer = ResultWriter(path, crs=UTM33, mode="overwrite")
    assert writer.done_photos() == set()
    writer.write(_result(3))
    assert list(read_poses(path)["photo"]) == [_result(3).photo]
    if fmt in ("shp", "geojson"):  # the stale matches layer of the earlier run is gone too
        assert not any(p.name.startswith("over_matches") for p in tmp_path.iterdir())


def test_geopackage_keeps_other_layers(tmp_path):
    path = tmp_path / "project.gpkg"
    other = gpd.GeoDataFrame({"name": ["roads"]}, geometry=[Point(1, 2)], crs=UTM33)
    pyogrio.write_dataframe(other, path, layer="roads")
    ResultWriter(path, crs=UTM33).write(_result(1))  # no loc2 layers yet: nothing refused
    ResultWriter(path, crs=UTM33, mode="overwrite").write(_result(2))
    layers = [str(n) for n, _ in pyogrio.list_layers(path)]
    assert "roads" in layers and "poses" in layers
    assert list(read_poses(path)["photo"]) == [_result(2).photo]
    assert list(pyogrio.read_dataframe(path, layer="roads")["name"]) == ["roads"]


def test_unwritable_paths_raise_export_error_naming_them(tmp_path):
    missing = tmp_path / "no_such_folder" / "out.gpkg"
    with pytest.raises(ExportError, match="no_such_folder"):
        ResultWriter(missing, crs=UTM33)
    a_file = tmp_path / "plain.txt"
    a_file.write_text("x")
    with pytest.raises(ExportError, match="plain.txt"):
        ResultWriter(a_file / "out.shp", crs=UTM33)
    a_dir = tmp_path / "folder.gpkg"
    a_dir.mkdir()
    with pytest.raises(ExportError, match="folder.gpkg"):
        ResultWriter(a_dir, crs=UTM33)


@pytest.mark.skipif(
    not os.access("/proc/1", os.F_OK) or os.access("/proc/1", os.W_OK), reason="needs Linux /proc"
)
def test_a_folder_nobody_may_write_is_refused_even_for_root():
    """/proc/1 refuses new files to every user, root included (chmod-based tests pass silently as root)."""
    with pytest.raises(ExportError, match=r"/proc/1/out.gpkg: the folder /proc/1 is not writable"):
        ResultWriter(Path("/proc/1/out.gpkg"), crs=UTM33)


def test_append_refuses_other_crs_or_schema(tmp_path):
    path = tmp_path / "a.gpkg"
    ResultWriter(path, crs=UTM33).write(_result(1))
    with pytest.raises(ExportError, match="CRS"):
        ResultWriter(path, crs="EPSG:32632", mode="append")
    foreign = tmp_path / "foreign.gpkg"
    gdf = gpd.GeoDataFrame({"photo": ["x"], "z": [1.0]}, geometry=[Point(0, 0)], crs=UTM33)
    pyogrio.write_dataframe(gdf, foreign, layer="poses")
    with pytest.raises(ExportError, match="lacks the fields"):
        ResultWriter(foreign, crs=UTM33, mode="append")


def _pose_fields_on_disk(path: Path) -> set[str]:
    target = output_layers(path)[LAYER_POSES]
    if infer_format(path) == "csv":
        return set(pd.read_csv(target.path, nrows=0).columns)
    return {str(f) for f in pyogrio.read_info(target.path, layer=target.layer)["fields"]}


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_an_output_from_before_the_solver_and_precision_fields_is_resumed_in_its_own_schema(
    tmp_path, fmt, monkeypatch
):
    """0.14's outputs lack ``solver`` and ``precision``: a resumed run appends without them (no error, no
    photo lost), drops a crashed photo's detail rows, and the output converts to another format."""
    path = tmp_path / f"old.{fmt}"
    old_fields = [f for f in POSE_FIELDS if f[0] not in LATER_FIELDS]
    with monkeypatch.context() as old_version:
        old_version.setitem(LAYER_SCHEMAS, LAYER_POSES, ("Point", old_fields))
        old = ResultWriter(path, crs=UTM33)
        old.write(_result(1))
        crashed = layer_tables([_result(2)])
        del crashed[LAYER_POSES]  # killed after its detail rows, before its poses row
        old.write_tables(crashed)
    again = ResultWriter(path, crs=UTM33, mode="append")
    assert again.done_photos() == {_result(1).photo}
    again.write(_result(3))
    again.write(_failed())
    poses = read_poses(path)
    assert list(poses["photo"]) == [_result(1).photo, _result(3).photo, "/photos/bad.jpg"]
    assert not LATER_FIELDS & _pose_fields_on_disk(path)
    if fmt != "csv":
        assert set(read_layer(path, "inliers")["photo"]) == {_result(1).photo, _result(3).photo}
        converted = tmp_path / "converted" / "poses.shp"
        converted.parent.mkdir()
        convert_output(path, converted)
        back = read_poses(converted)
        assert list(back["solver"]) == ["", "", ""] and list(back["photo"]) == list(poses["photo"])


def test_poses_record_the_solver_and_the_precision(tmp_path, results):
    path = tmp_path / "p.gpkg"
    write_results(path, results, crs=UTM33)
    poses = read_poses(path)
    assert list(zip(poses["solver"], poses["precision"], strict=True)) == [
        ("precise", "float32"),
        ("precise", "float32"),
        ("published", "auto"),
        ("precise", "float32"),
    ]


def test_geojson_needs_an_epsg_crs(tmp_path):
    custom = pyproj.CRS.from_proj4(
        "+proj=tmerc +lat_0=0 +lon_0=7.3 +k=1 +x_0=600000 +y_0=200000 +ellps=bessel"
    )
    with pytest.raises(ExportError, match="EPSG"):
        ResultWriter(tmp_path / "x.geojson", crs=custom)
    ResultWriter(tmp_path / "x.gpkg", crs=custom).write(_result(1, crs=custom))
    assert read_poses(tmp_path / "x.gpkg").crs == custom


def test_geographic_crs_round_trip(tmp_path):
    wgs84 = pyproj.CRS.from_epsg(4326)
    res = PhotoResult(photo="g.jpg", status="ok", x=7.447, y=46.948, prior_x=7.4468, prior_y=46.9481,
                      heading_deg=10.0, inlier_ratio=0.5, crs_wkt=wgs84.to_wkt())  # fmt: skip
    for fmt in ALL_FORMATS:
        path = tmp_path / f"g.{fmt}"
        write_results(path, [res])  # the CRS comes from the results
        poses = read_poses(path)
        assert poses.crs == wgs84, fmt
        assert poses.loc[0, "shift_m"] == pytest.approx(res.shift_m, abs=1e-9)
        assert poses.geometry[0].equals(Point(7.447, 46.948))


def test_formats_and_layer_paths(tmp_path):
    assert infer_format("a.GPKG") == "gpkg"
    assert infer_format("a.json") == "geojson"
    assert infer_format("a", "Shapefile") == "shp"
    assert infer_format("a") == "gpkg"
    with pytest.raises(ExportError, match="suffix"):
        infer_format("a.xlsx")
    with pytest.raises(ExportError, match="unknown output format"):
        infer_format("a.gpkg", "kml")
    targets = output_layers(tmp_path / "r.geojson")
    assert targets["poses"].path == tmp_path / "r_poses.geojson"
    assert output_layers(tmp_path / "r.gpkg")["shifts"].uri == f"{tmp_path / 'r.gpkg'}|layername=shifts"
    with pytest.raises(ExportError, match="mode"):
        ResultWriter(tmp_path / "m.gpkg", crs=UTM33, mode="replace")


@pytest.fixture(scope="module")
def qgis_app():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # no display on build machines
    pytest.importorskip("qgis.core", reason="QGIS Python bindings are not installed")
    from qgis.testing import start_app

    return start_app()


@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_outputs_open_in_qgis(tmp_path, results, qgis_app, fmt):
    from qgis.core import QgsVectorLayer, QgsWkbTypes

    writer = ResultWriter(tmp_path / f"q.{fmt}", crs=UTM33)
    writer.write_many(results)
    expected_rows = {"poses": 4, "priors": 4, "inliers": 36, "outlines": 3, "shifts": 3}
    for name, uri in writer.sources().items():
        layer = QgsVectorLayer(uri, name, "ogr")
        assert layer.isValid(), uri
        assert layer.featureCount() == expected_rows[name], uri
        assert layer.crs().authid() == "EPSG:32633", uri
        fields = [f.name() for f in layer.fields() if f.name() != "fid"]
        assert fields == [n for n, _ in LAYER_SCHEMAS[name][1]], uri
        geometry = QgsWkbTypes.geometryDisplayString(QgsWkbTypes.geometryType(layer.wkbType()))
        assert (
            geometry == {"Point": "Point", "LineString": "Line", "Polygon": "Polygon"}[LAYER_SCHEMAS[name][0]]
        ), uri
