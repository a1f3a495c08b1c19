"""Orthophoto crops in several CRSs, checked against geodesics and pyproj (real GeoTIFFs, real PROJ maths)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyproj
import pytest
import rasterio
import rasterio.shutil
from affine import Affine
from rasterio.enums import ColorInterp
from rasterio.transform import from_origin

from loc2.core.errors import OrthoError
from loc2.core.geometry.cameras import aerial_xy_to_pixel
from loc2.core.geometry.frames import (
    grid_convergence_deg,
    grid_scale_factors,
    grid_to_true_bearing,
    true_to_grid_bearing,
)
from loc2.core.inputs.ortho import Orthophoto

GEOD = pyproj.Geod(ellps="WGS84")

# (EPSG, lon, lat) — places inside each CRS's area of use; 32632 at lon 14.9 is ~5.9° east of the central
# meridian (meridian convergence ≈ 4.4°), 32756 is in the southern hemisphere, 2263 is in US survey feet.
CASES = [
    (32632, 14.9, 48.2),
    (32756, 151.2, -33.87),
    (3857, 10.75, 59.91),
    (4326, 8.54, 47.37),
    (2056, 7.44, 46.95),
    (25832, 6.96, 50.94),
    (2263, -73.99, 40.73),
]


def raster_grid(
    crs: pyproj.CRS, lon0: float, lat0: float, half_m: float, size: int
) -> tuple[Affine, float, float]:
    """A north-up geotransform of ``size``² pixels covering at least ±half_m ground metres around lon0, lat0."""
    to_crs = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    xs, ys = [], []
    for az in range(0, 360, 15):
        lon, lat, _ = GEOD.fwd(lon0, lat0, az, half_m * math.sqrt(2))
        x, y = to_crs.transform(lon, lat)
        xs.append(x)
        ys.append(y)
    x0, y0 = to_crs.transform(lon0, lat0)
    half_x = max(abs(v - x0) for v in xs)
    half_y = max(abs(v - y0) for v in ys)
    return from_origin(x0 - half_x, y0 + half_y, 2 * half_x / size, 2 * half_y / size), x0, y0


def marker_image(
    crs: pyproj.CRS, transform: Affine, size: int, markers: list[tuple[float, float]], sigma_m: float = 0.7
) -> np.ndarray:
    """(size, size) float image of Gaussian blobs (geodesic distance) centred at the (lon, lat) markers."""
    image = np.zeros((size, size))
    to_crs = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    to_lonlat = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)
    for mlon, mlat in markers:
        # Only the pixels within ~6 sigma of the marker (a box found through a point 6 sigma away).
        mc, mr = ~transform * to_crs.transform(mlon, mlat)
        ec, er = ~transform * to_crs.transform(*GEOD.fwd(mlon, mlat, 45.0, 6 * sigma_m * math.sqrt(2))[:2])
        reach = int(math.ceil(max(abs(ec - mc), abs(er - mr)))) + 2
        c0, c1 = max(0, int(mc) - reach), min(size, int(mc) + reach + 1)
        r0, r1 = max(0, int(mr) - reach), min(size, int(mr) + reach + 1)
        cols, rows = np.meshgrid(np.arange(c0, c1) + 0.5, np.arange(r0, r1) + 0.5)
        lon, lat = to_lonlat.transform(*(transform * (cols.ravel(), rows.ravel())))
        _, _, dist = GEOD.inv(lon, lat, np.full_like(lon, mlon), np.full_like(lat, mlat))
        image[r0:r1, c0:c1] += np.exp(-0.5 * (np.asarray(dist) / sigma_m) ** 2).reshape(cols.shape)
    return image


def write_tif(path: Path, data: np.ndarray, crs, transform: Affine, **profile) -> Path:
    """Write (bands, h, w) ``data`` as a GeoTIFF."""
    count, h, w = data.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=w, height=h, count=count, dtype=data.dtype, crs=crs,
        transform=transform, **profile,
    ) as ds:  # fmt: skip
        ds.write(data)
    return path


def expected_pixel(lon0, lat0, lon, lat, up_heading_deg, footprint_m, size_px) -> np.ndarray:
    """Crop (col, row) of (lon, lat) from the geodesic distance and azimuth from the crop centre."""
    az, _, dist = GEOD.inv(lon0, lat0, lon, lat)
    beta = math.radians(az - up_heading_deg)
    xy = np.array([-dist * math.cos(beta), dist * math.sin(beta)])
    return aerial_xy_to_pixel(xy, footprint_m, size_px)


def blob_centre(channel: np.ndarray, near_colrow: np.ndarray, radius: int = 8) -> np.ndarray:
    """Intensity-weighted centre (col, row; pixel centres at +0.5) of the blob near ``near_colrow``."""
    c, r = (int(v) for v in near_colrow)
    patch = channel[r - radius : r + radius + 1, c - radius : c + radius + 1].astype(np.float64)
    patch = np.clip(patch - 0.3 * patch.max(), 0, None)
    rr, cc = np.mgrid[r - radius : r + radius + 1, c - radius : c + radius + 1]
    return np.array([(cc * patch).sum() / patch.sum() + 0.5, (rr * patch).sum() / patch.sum() + 0.5])


@pytest.mark.parametrize(("epsg", "lon0", "lat0"), CASES)
@pytest.mark.parametrize("up_heading_deg", [0.0, 37.0])
def test_markers_land_on_geodesic_positions(tmp_path, epsg, lon0, lat0, up_heading_deg):
    crs = pyproj.CRS.from_epsg(epsg)
    size, footprint, crop_px = 320, 48.0, 160
    transform, x0, y0 = raster_grid(crs, lon0, lat0, 36.0, size)
    markers = [GEOD.fwd(lon0, lat0, az, d)[:2] for az, d in [(0, 15), (90, 12), (200, 18), (315, 9)]]
    blob = marker_image(crs, transform, size, markers)
    data = np.clip(blob * 250, 0, 255).astype(np.uint8)[None].repeat(3, 0)
    path = write_tif(tmp_path / f"m{epsg}.tif", data, crs.to_wkt(), transform)
    with Orthophoto.open(path) as ortho:
        crop = ortho.crop((x0, y0), footprint, crop_px, up_heading_deg=up_heading_deg)
    assert crop.image.shape == (crop_px, crop_px, 3) and crop.image.dtype == np.uint8
    assert crop.valid.all()
    for lon, lat in markers:
        want = expected_pixel(lon0, lat0, lon, lat, up_heading_deg, footprint, crop_px)
        got = blob_centre(crop.image[..., 0], want)
        assert np.abs(got - want).max() < 0.1, (epsg, got, want)


@pytest.mark.parametrize(("epsg", "lon0", "lat0"), CASES)
def test_aerial_crs_round_trip_against_pyproj(tmp_path, epsg, lon0, lat0):
    crs = pyproj.CRS.from_epsg(epsg)
    transform, x0, y0 = raster_grid(crs, lon0, lat0, 40.0, 64)
    path = write_tif(tmp_path / "r.tif", np.zeros((1, 64, 64), np.uint8), crs.to_wkt(), transform)
    up = 123.0
    to_crs = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    with Orthophoto.open(path) as ortho:
        crop = ortho.crop((x0, y0), 60.0, 64, up_heading_deg=up)
    targets = [(az, d) for az in (0, 45, 123, 200, 300) for d in (5.0, 20.0, 29.0)]
    xy_aerial = []
    want_crs = []
    for az, d in targets:
        beta = math.radians(az - up)
        xy_aerial.append([-d * math.cos(beta), d * math.sin(beta)])
        lon, lat, _ = GEOD.fwd(lon0, lat0, az, d)
        want_crs.append(to_crs.transform(lon, lat))
    got_crs = crop.aerial_to_crs(np.array(xy_aerial))
    unit_m = crs.axis_info[0].unit_conversion_factor if crs.is_projected else None
    if crs.is_projected:
        err_m = np.abs(got_crs - np.array(want_crs)).max() * unit_m
    else:  # degrees → metres
        _, _, err = GEOD.inv(got_crs[:, 0], got_crs[:, 1], np.array(want_crs)[:, 0], np.array(want_crs)[:, 1])
        err_m = np.abs(err).max()
    assert err_m < 1e-3
    back = crop.crs_to_aerial(got_crs)
    assert np.abs(back - np.array(xy_aerial)).max() < 1e-6
    np.testing.assert_allclose(crop.aerial_to_crs(np.zeros((1, 2)))[0], (x0, y0), rtol=0, atol=1e-6)
    colrow = aerial_xy_to_pixel(np.array(xy_aerial), 60.0, 64)
    assert np.abs(crop.pixel_to_crs(colrow) - got_crs).max() < 1e-6
    assert np.abs(crop.crs_to_pixel(got_crs) - colrow).max() < 1e-6
    lonlat = crop.aerial_to_lonlat(np.array(xy_aerial))
    # WGS84 ↔ another datum goes through a 2-D Helmert shift in PROJ, exact only to ~1 mm each way.
    assert np.abs(crop.lonlat_to_aerial(lonlat) - np.array(xy_aerial)).max() < 5e-3


def test_north_up_means_true_north_far_from_central_meridian(tmp_path):
    """UTM 32N at 14.9°E: grid north is ~4.4° off true north; a marker due TRUE north must be straight up."""
    epsg, lon0, lat0 = 32632, 14.9, 48.2
    crs = pyproj.CRS.from_epsg(epsg)
    gamma = grid_convergence_deg(crs, lon0, lat0)
    assert 4.0 < gamma < 5.0
    size = 320
    transform, x0, y0 = raster_grid(crs, lon0, lat0, 36.0, size)
    north = GEOD.fwd(lon0, lat0, 0.0, 20.0)[:2]
    data = (np.clip(marker_image(crs, transform, size, [north]) * 250, 0, 255)).astype(np.uint8)[None]
    path = write_tif(tmp_path / "n.tif", data, crs.to_wkt(), transform)
    with Orthophoto.open(path) as ortho:
        crop = ortho.crop((x0, y0), 48.0, 160)
        col, row = blob_centre(crop.image[..., 0], np.array([80, 80 - 20 / 48 * 160]))
    assert abs(col - 80.0) < 0.25  # grid north would put it 20 m·sin 4.4° ≈ 5 px to the left
    assert abs(row - (80 - 20 * 160 / 48)) < 0.25
    # The true-north direction's grid bearing is −γ, as the helpers say.
    to_crs = pyproj.Transformer.from_crs(4326, crs, always_xy=True)
    xn, yn = to_crs.transform(*north)
    grid_bearing = math.degrees(math.atan2(xn - x0, yn - y0)) % 360
    assert abs(grid_bearing - true_to_grid_bearing(0.0, crs, lon0, lat0)) < 1e-3
    back = grid_to_true_bearing(grid_bearing, crs, lon0, lat0)
    assert min(back, 360.0 - back) < 1e-3


def test_scale_factor_and_feet_units(tmp_path):
    """A UTM crop spans true ground metres: k ≈ 1.0004 at 14.9°E; EPSG:2263 is in US survey feet."""
    for epsg, lon0, lat0 in [(32632, 14.9, 48.2), (2263, -73.99, 40.73)]:
        crs = pyproj.CRS.from_epsg(epsg)
        transform, x0, y0 = raster_grid(crs, lon0, lat0, 40.0, 64)
        path = write_tif(tmp_path / f"s{epsg}.tif", np.zeros((1, 64, 64), np.uint8), crs.to_wkt(), transform)
        with Orthophoto.open(path) as ortho:
            crop = ortho.crop((x0, y0), 50.0, 50)
            res_col_m, res_row_m = ortho.ground_resolution_m((x0, y0))
        ends = crop.aerial_to_crs(np.array([[0.0, -20.0], [0.0, 20.0]]))  # 40 m west → east
        k_merid, k_par = grid_scale_factors(crs, lon0, lat0)
        unit_m = crs.axis_info[0].unit_conversion_factor
        length_crs_m = float(np.hypot(*(ends[1] - ends[0]))) * unit_m
        assert abs(length_crs_m - 40.0 * k_par) < 1e-4
        pixel_crs_m = transform.a * unit_m
        assert abs(res_col_m - pixel_crs_m / k_par) < 1e-6 and abs(res_row_m - pixel_crs_m / k_merid) < 1e-6
    assert abs(grid_scale_factors(32632, 14.9, 48.2)[0] - 1.0) > 3e-4


def test_heading_conversions(tmp_path):
    crs = pyproj.CRS.from_epsg(32632)
    transform, x0, y0 = raster_grid(crs, 9.0, 48.0, 30.0, 32)
    path = write_tif(tmp_path / "h.tif", np.zeros((1, 32, 32), np.uint8), crs.to_wkt(), transform)
    with Orthophoto.open(path) as ortho:
        crop = ortho.crop((x0, y0), 40.0, 32, up_heading_deg=-100.0)
    assert crop.up_heading_deg == pytest.approx(260.0)
    assert crop.heading_to_true_north(90.0) == pytest.approx(350.0)
    assert crop.heading_to_true_north(130.0) == pytest.approx(30.0)
    assert crop.true_north_to_heading(350.0) == pytest.approx(90.0)
    assert crop.true_north_to_heading(crop.heading_to_true_north(211.5)) == pytest.approx(211.5)


def test_decimated_windowed_read_of_fine_raster(tmp_path):
    """A 2 cm raster cropped at 40 cm/px is read through a small, decimated window; markers stay put."""
    crs = pyproj.CRS.from_epsg(32632)
    lon0, lat0 = 9.5, 47.5
    size = 1600
    transform, x0, y0 = raster_grid(crs, lon0, lat0, 16.0, size)
    marker = GEOD.fwd(lon0, lat0, 60.0, 5.0)[:2]
    data = (np.clip(marker_image(crs, transform, size, [marker], sigma_m=0.8) * 250, 0, 255)).astype(np.uint8)
    path = write_tif(tmp_path / "fine.tif", data[None], crs.to_wkt(), transform, tiled=True)
    with Orthophoto.open(path) as ortho:
        crop = ortho.crop((x0, y0), 20.0, 50)
    c0, r0, w, h = crop.read_info["window"]
    out_h, out_w = crop.read_info["out_shape"]
    assert w < size and h < size  # a window, not the whole raster
    assert out_w < w / 10 and out_h < h / 10  # decimated (≈ 20 raster px per crop px)
    want = expected_pixel(lon0, lat0, *marker, 0.0, 20.0, 50)
    got = blob_centre(crop.image[..., 0], want, radius=5)
    assert np.abs(got - want).max() < 0.3


def _small_utm(tmp_path, name, data, **profile):
    crs = pyproj.CRS.from_epsg(32632)
    size = data.shape[-1]
    transform = from_origin(500000.0, 5300000.0, 0.5, 0.5)
    path = write_tif(tmp_path / name, data, crs.to_wkt(), transform, **profile)
    return path, transform, size


def test_rgba_alpha_masks_pixels(tmp_path):
    data = np.full((4, 100, 100), 200, np.uint8)
    data[3, :, :50] = 0  # west half transparent
    path, transform, _ = _small_utm(tmp_path, "rgba.tif", data, photometric="RGB")
    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    with Orthophoto.open(path) as ortho:
        crop = ortho.crop(transform * (50, 50), 40.0, 80)
    assert not crop.valid[:, :38].any() and crop.valid[:, 42:].all()
    assert (crop.image[:, :38] == 0).all() and (crop.image[:, 42:] == 200).all()


def test_nodata_and_single_band_grey(tmp_path):
    data = np.full((1, 100, 100), 90, np.uint8)
    data[0, 60:, :] = 0  # south part nodata
    path, transform, _ = _small_utm(tmp_path, "grey.tif", data, nodata=0)
    with Orthophoto.open(path) as ortho:
        crop = ortho.crop(transform * (50, 50), 40.0, 80)
    assert crop.image.shape == (80, 80, 3)
    # raster row 60 (0.5 m px) is crop row 50 (crop: rows 10–90 of the raster at 0.5 m/px)
    assert crop.valid[:49].all() and not crop.valid[51:].any()
    assert (crop.image[:49] == 90).all() and (crop.image[51:] == 0).all()


def test_uint16_percentile_stretch(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.integers(1000, 5000, size=(3, 120, 120)).astype(np.uint16)
    data[1] //= 2
    path, transform, _ = _small_utm(tmp_path, "u16.tif", data)
    with Orthophoto.open(path) as ortho:
        lo, hi = ortho.stretch_limits()
        crop = ortho.crop(transform * (60, 60), 50.0, 100)
    for b in range(3):
        p2, p98 = np.percentile(data[b], [2, 98])
        assert abs(lo[b] - p2) < 30 and abs(hi[b] - p98) < 30
    assert crop.image.dtype == np.uint8
    assert crop.image.min() == 0 and crop.image.max() == 255
    assert 90 < crop.image.mean() < 165


def test_float_nan_is_invalid_and_palette_is_coloured(tmp_path):
    data = np.linspace(0, 1, 100 * 100, dtype=np.float32).reshape(1, 100, 100)
    data[0, :, 70:] = np.nan
    path, transform, _ = _small_utm(tmp_path, "f.tif", data)
    with Orthophoto.open(path) as ortho:
        crop = ortho.crop(transform * (50, 50), 40.0, 80)
    assert crop.valid[:, :59].all() and not crop.valid[:, 61:].any()  # raster column 70 = crop column 60

    pal = np.zeros((1, 64, 64), np.uint8)
    pal[0, :, 32:] = 1
    path, transform, _ = _small_utm(tmp_path, "pal.tif", pal, photometric="palette")
    with rasterio.open(path, "r+") as ds:
        ds.write_colormap(1, {0: (255, 0, 0, 255), 1: (0, 0, 255, 255)})
    with Orthophoto.open(path) as ortho:
        crop = ortho.crop(transform * (32, 32), 20.0, 40)
    assert (crop.image[:, :15] == (255, 0, 0)).all() and (crop.image[:, 25:] == (0, 0, 255)).all()


def test_partly_outside_is_invalid_there_and_entirely_outside_raises(tmp_path):
    data = np.full((3, 100, 100), 120, np.uint8)
    path, transform, _ = _small_utm(tmp_path, "edge.tif", data)
    with Orthophoto.open(path) as ortho:
        crop = ortho.crop(transform * (0, 50), 20.0, 40)  # centred on the west edge
        assert not crop.valid[:, :19].any() and crop.valid[:, 21:].all()
        assert (crop.image[:, :19] == 0).all() and (crop.image[:, 21:] == 120).all()
        with pytest.raises(OrthoError, match="entirely outside"):
            ortho.crop(transform * (-100, 50), 20.0, 40)
    with pytest.raises(OrthoError, match="edge.tif.*closed"):
        ortho.crop(transform * (50, 50), 20.0, 40)


def test_open_errors_name_the_file(tmp_path):
    crs = pyproj.CRS.from_epsg(32632).to_wkt()
    rotated = Affine(0.5, 0.1, 500000.0, 0.1, -0.5, 5300000.0)
    path = write_tif(tmp_path / "rot.tif", np.zeros((1, 16, 16), np.uint8), crs, rotated)
    with pytest.raises(OrthoError, match="rotation terms are not supported.*gdalwarp"):
        Orthophoto.open(path)
    path = write_tif(
        tmp_path / "nocrs.tif", np.zeros((1, 16, 16), np.uint8), None, from_origin(100, 100, 1, 1)
    )
    with pytest.raises(OrthoError, match="nocrs.tif.*no coordinate reference system"):
        Orthophoto.open(path)
    text = tmp_path / "notes.tif"
    text.write_text("not a raster")
    with pytest.raises(OrthoError, match="notes.tif"):
        Orthophoto.open(text)
    with pytest.raises(OrthoError, match="missing.tif"):
        Orthophoto.open(tmp_path / "missing.tif")


@pytest.mark.parametrize("driver", ["VRT", "COG", "JP2OpenJPEG"])
def test_other_gdal_formats_give_the_same_crop(tmp_path, driver):
    with rasterio.Env() as env:
        if driver not in env.drivers():
            pytest.skip(f"GDAL has no {driver} driver here")
    rng = np.random.default_rng(1)
    data = rng.integers(0, 255, size=(3, 96, 96)).astype(np.uint8)
    src, transform, _ = _small_utm(tmp_path, "src.tif", data)
    ext = {"VRT": "vrt", "COG": "tif", "JP2OpenJPEG": "jp2"}[driver]
    dst = tmp_path / f"copy.{ext}"
    options = {"QUALITY": "100", "REVERSIBLE": "YES"} if driver == "JP2OpenJPEG" else {}
    rasterio.shutil.copy(src, dst, driver=driver, **options)
    with Orthophoto.open(src) as a, Orthophoto.open(dst) as b:
        ca = a.crop(transform * (48, 48), 30.0, 50, up_heading_deg=20.0)
        cb = b.crop(transform * (48, 48), 30.0, 50, up_heading_deg=20.0)
        assert b.crs == a.crs
    assert (ca.valid == cb.valid).all()
    assert np.abs(ca.image.astype(int) - cb.image.astype(int)).max() <= 1


def test_lonlat_conversions(tmp_path):
    crs = pyproj.CRS.from_epsg(2056)
    transform, x0, y0 = raster_grid(crs, 7.44, 46.95, 20.0, 16)
    path = write_tif(tmp_path / "ch.tif", np.zeros((1, 16, 16), np.uint8), crs.to_wkt(), transform)
    with Orthophoto.open(path) as ortho:
        lon, lat = ortho.crs_to_lonlat(x0, y0)
        assert (lon, lat) == pytest.approx((7.44, 46.95), abs=1e-7)  # ~1 cm: 2-D datum shift
        assert ortho.lonlat_to_crs(lon, lat) == pytest.approx((x0, y0), abs=5e-3)
        assert ortho.contains(x0, y0) and not ortho.contains(x0 + 1000, y0)
        assert ortho.crs.to_epsg() == 2056


def test_stretch_from_sampled_windows_on_large_rasters(tmp_path, monkeypatch):
    """Without overviews, a 'large' raster's stretch comes from a grid of small windows, and is cached."""
    import loc2.core.inputs.ortho as ortho_module

    monkeypatch.setattr(ortho_module, "STATS_FULL_READ_MAX_PIXELS", 100)
    rows = np.arange(256, dtype=np.uint16)[:, None]
    data = (1000 + 10 * rows + np.zeros((1, 256, 256), np.uint16)).astype(np.uint16)  # 1000 … 3550 by row
    path, transform, _ = _small_utm(tmp_path, "big16.tif", data)
    with Orthophoto.open(path) as ortho:
        lo, hi = ortho.stretch_limits()
        assert ortho.stretch_limits() is ortho.stretch_limits()
        crop = ortho.crop(transform * (128, 128), 100.0, 50)
    assert 1000 <= lo[0] < 1150 and 3400 < hi[0] <= 3550
    assert crop.image[0, :, 0].mean() < 60 and crop.image[-1, :, 0].mean() > 195  # dark north, bright south
