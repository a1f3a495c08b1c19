"""Priors from EXIF, CSV files and point layers (real files, real pyproj conversions)."""

from __future__ import annotations

from pathlib import Path

import geopandas
import pyproj
import pytest
from PIL import ExifTags, Image
from PIL.TiffImagePlugin import IFDRational as R
from shapely.geometry import Point

from loc2.core.errors import PriorError
from loc2.core.inputs.priors import items_from_csv, items_from_images, items_from_layer
from loc2.core.types import PhotoItem

GPS = ExifTags.GPS


def geotagged_jpeg(
    path: Path, lat: float | None, lon: float | None, heading=None, ref="T", error=None
) -> Path:
    """A small JPEG with GPS EXIF (decimal degrees written as D/M/S rationals)."""
    exif = Image.Exif()
    gps: dict = {}
    if lat is not None:

        def dms(v: float) -> tuple:
            d = int(abs(v))
            m = (abs(v) - d) * 60
            return (R(d, 1), R(round(m * 1e6), 1_000_000), R(0, 1))

        gps |= {GPS.GPSLatitudeRef: "N" if lat >= 0 else "S", GPS.GPSLatitude: dms(lat),
                GPS.GPSLongitudeRef: "E" if lon >= 0 else "W", GPS.GPSLongitude: dms(lon)}  # fmt: skip
    if heading is not None:
        gps |= {GPS.GPSImgDirection: R(round(heading * 100), 100), GPS.GPSImgDirectionRef: ref}
    if error is not None:
        gps[GPS.GPSHPositioningError] = R(round(error * 10), 10)
    if gps:
        exif[ExifTags.IFD.GPSInfo] = gps
    Image.new("RGB", (40, 30), (10, 200, 30)).save(path, format="JPEG", exif=exif.tobytes())
    return path


def test_items_from_images_files_and_folders(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    geotagged_jpeg(folder / "a.jpg", -33.8688, 151.2093, heading=45.5, error=4.0)
    geotagged_jpeg(folder / "b.JPG", 48.8584, 2.2945, heading=300.0, ref="M")
    geotagged_jpeg(folder / "c.jpg", None, None)
    (folder / "broken.jpg").write_text("not an image")
    (folder / "readme.txt").write_text("ignored: not an image suffix")
    sub = folder / "sub"
    sub.mkdir()
    geotagged_jpeg(sub / "d.jpg", 1.0, 2.0)
    empty = tmp_path / "empty"
    empty.mkdir()

    items, errors = items_from_images([folder, empty])
    by_name = {i.path.name: i for i in items}
    assert sorted(by_name) == ["a.jpg", "b.JPG", "c.jpg"]
    assert by_name["a.jpg"].lat == pytest.approx(-33.8688, abs=1e-7)
    assert by_name["a.jpg"].lon == pytest.approx(151.2093, abs=1e-7)
    assert by_name["a.jpg"].heading_deg == pytest.approx(45.5) and by_name["a.jpg"].heading_ref == "T"
    assert by_name["a.jpg"].uncertainty_m == pytest.approx(4.0)
    assert by_name["b.JPG"].heading_ref == "M" and by_name["b.JPG"].heading_deg == pytest.approx(300.0)
    assert by_name["c.jpg"].lon is None and not by_name["c.jpg"].has_position  # kept: caller gives a prior
    failed = {Path(p).name: msg for p, msg in errors}
    assert set(failed) == {"broken.jpg", "empty"}
    assert "broken.jpg" in failed["broken.jpg"] and "no images" in failed["empty"]

    items, errors = items_from_images([folder], recursive=True)
    assert "d.jpg" in {i.path.name for i in items}
    items, errors = items_from_images([folder / "a.jpg", tmp_path / "nope.jpg"])
    assert len(items) == 1 and len(errors) == 1 and "no such file" in errors[0][1]


def test_items_from_csv_wgs84_and_projected(tmp_path):
    to_lv95 = pyproj.Transformer.from_crs(4326, 2056, always_xy=True)
    e, n = to_lv95.transform(7.4386, 46.9511)
    csv_path = tmp_path / "priors.csv"
    csv_path.write_text(
        "\ufeffPhoto,Lon,Lat,Heading,CRS\n"
        "img/a.jpg,8.5417,47.3769,370,\n"
        f"/abs/b.jpg,{e:.3f},{n:.3f},,EPSG:2056\n"
        "\n"
        "c.jpg,,,\n",
        encoding="utf-8",
    )
    items = items_from_csv(csv_path)
    assert [i.path for i in items] == [tmp_path / "img/a.jpg", Path("/abs/b.jpg"), tmp_path / "c.jpg"]
    assert (items[0].lon, items[0].lat, items[0].heading_deg) == pytest.approx((8.5417, 47.3769, 10.0))
    assert (items[1].lon, items[1].lat) == pytest.approx((7.4386, 46.9511), abs=1e-7)
    assert items[1].heading_deg is None
    assert items[2] == PhotoItem(tmp_path / "c.jpg", None, None)

    semi = tmp_path / "semi.csv"
    semi.write_text("photo;x;y;crs;uncertainty\nq.jpg;500000;5300000;32632;7,5\n")
    (item,) = items_from_csv(semi)
    lon, lat = pyproj.Transformer.from_crs(32632, 4326, always_xy=True).transform(500000, 5300000)
    assert (item.lon, item.lat) == pytest.approx((lon, lat), abs=1e-9)
    assert item.uncertainty_m == pytest.approx(7.5)


def test_items_from_csv_errors_name_lines(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "photo,lon,lat,heading,crs\n"
        "a.jpg,8.5,47.3,,\n"
        "b.jpg,abc,47.3,,\n"
        "c.jpg,8.5,,,\n"
        "d.jpg,2600000,1200000,,\n"
        "e.jpg,1,2,,EPSG:999999\n"
        ",8.5,47.3,,\n"
    )
    with pytest.raises(PriorError) as info:
        items_from_csv(bad)
    msg = str(info.value)
    assert "bad.csv" in msg and "5 bad row(s)" in msg
    for line, text in [(3, "'abc' is not a number"), (4, "both lon and lat"), (5, "out of range"),
                       (6, "unknown CRS"), (7, "photo cell is empty")]:  # fmt: skip
        assert f"line {line}: " in msg and text in msg
    assert "line 2" not in msg

    header = tmp_path / "header.csv"
    header.write_text("name,longitude\na.jpg,1\n")
    with pytest.raises(PriorError, match="header.csv.*lacks column.*photo.*lat"):
        items_from_csv(header)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(PriorError, match="empty.csv.*empty"):
        items_from_csv(empty)
    with pytest.raises(PriorError, match="missing.csv"):
        items_from_csv(tmp_path / "missing.csv")


def test_items_from_layer_like_qgis_import_photos(tmp_path):
    frame = geopandas.GeoDataFrame(
        {
            "photo": [str(tmp_path / "a.jpg"), "rel/b.jpg", "c.jpg"],
            "direction": [123.0, None, -10.0],
            "altitude": [400.0, 410.0, None],
            "timestamp": ["2023-05-01T12:00:00", None, None],
        },
        geometry=[Point(8.5417, 47.3769), Point(-122.4194, 37.7749), None],
        crs="EPSG:4326",
    )
    gpkg = tmp_path / "photos.gpkg"
    frame.to_file(gpkg, driver="GPKG", engine="pyogrio")
    items = items_from_layer(gpkg)
    assert [i.path for i in items] == [tmp_path / "a.jpg", tmp_path / "rel/b.jpg", tmp_path / "c.jpg"]
    assert (items[0].lon, items[0].lat, items[0].heading_deg) == pytest.approx((8.5417, 47.3769, 123.0))
    assert items[1].heading_deg is None and items[1].lon == pytest.approx(-122.4194)
    assert items[2].lon is None and items[2].heading_deg == pytest.approx(350.0)

    # A shapefile in Swiss LV95 with other field names.
    lv95 = frame.iloc[:1].to_crs(2056).rename(columns={"photo": "file", "direction": "yaw"})
    shp = tmp_path / "lv95.shp"
    lv95.to_file(shp, engine="pyogrio")
    (item,) = items_from_layer(shp, photo_field="file", heading_field="yaw")
    assert (item.lon, item.lat) == pytest.approx((8.5417, 47.3769), abs=1e-7)  # ~1 mm datum round trip
    assert item.heading_deg == pytest.approx(123.0)
    # GeoJSON, heading field absent.
    gj = tmp_path / "p.geojson"
    frame.iloc[:2][["photo", "geometry"]].to_file(gj, driver="GeoJSON", engine="pyogrio")
    assert [i.heading_deg for i in items_from_layer(gj)] == [None, None]

    with pytest.raises(PriorError, match="photos.gpkg.*no field 'image'.*photo"):
        items_from_layer(gpkg, photo_field="image")
    lines = geopandas.GeoDataFrame(
        {"photo": ["x.jpg"]}, geometry=geopandas.GeoSeries.from_wkt(["LINESTRING (0 0, 1 1)"]), crs=4326
    )
    lines.to_file(tmp_path / "lines.gpkg", driver="GPKG", engine="pyogrio")
    with pytest.raises(PriorError, match="feature 1: geometry is a LineString"):
        items_from_layer(tmp_path / "lines.gpkg")
    (tmp_path / "junk.gpkg").write_text("junk")
    with pytest.raises(PriorError, match="junk.gpkg.*cannot be read"):
        items_from_layer(tmp_path / "junk.gpkg")
