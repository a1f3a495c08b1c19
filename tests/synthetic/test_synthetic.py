"""Tests of the synthetic city: ray casting geometry, depth, georeferencing, EXIF, determinism."""

from __future__ import annotations

import csv
import math

import numpy as np
import pyproj
import pytest
import rasterio

from loc2.core.geometry.cameras import Equirectangular, Pinhole
from loc2.core.inputs.depth import FileDepth, write_depth
from loc2.core.inputs.ortho import Orthophoto
from loc2.core.inputs.photos import camera_for_photo, read_photo
from loc2.core.synthetic.city import SyntheticCity
from loc2.core.synthetic.datasets import TRUTH_COLUMNS, generate_dataset, sample_training_pair
from loc2.core.synthetic.layout import KIND_BUILDING, KIND_ROAD, KIND_ROOF_BOX, KIND_SIDEWALK, KIND_TREE

CAMERA = (50.0, 50.0)
BOX_EAST = (80.0, 50.0)  # centre of a 2 m × 1 m box 30 m grid-east of the camera
ROOF = (230, 200, 40)


@pytest.fixture(scope="module")
def box_city() -> SyntheticCity:
    """A flat asphalt square (rotation 0: street axes = grid axes) with two known boxes."""
    city = SyntheticCity(0, size_m=100.0, cell_m=0.1, empty=True)
    city.add_box(BOX_EAST, (2.0, 1.0), 10.0, roof_rgb=ROOF)
    city.add_box((50.0, 72.0), (40.0, 4.0), 12.0)  # a wide wall whose south face is 20 m grid-north
    return city


@pytest.fixture(scope="module")
def city() -> SyntheticCity:
    return SyntheticCity(11, size_m=120.0, cell_m=0.1)


def _column_centre(offset_rad: float, width: int) -> float:
    """Continuous column coordinate (pixel centres at +0.5) of a bearing offset from the centre column."""
    return width * (offset_rad / (2 * math.pi) + 0.5)


# ------------------------------------------------------------------------------------------- frames
def test_convergence_sign_matches_projected_meridian(box_city):
    gamma, k = box_city.grid_factors(CAMERA)
    lon, lat = box_city.local_to_lonlat(np.array(CAMERA))
    to_crs = pyproj.Transformer.from_crs("EPSG:4326", box_city.crs, always_xy=True)
    x0, y0 = to_crs.transform(lon, lat)
    x1, y1 = to_crs.transform(lon, lat + 1e-3)
    grid_bearing_of_true_north = math.degrees(math.atan2(x1 - x0, y1 - y0))
    assert gamma < -0.2  # west of UTM 32's central meridian, northern hemisphere
    assert grid_bearing_of_true_north == pytest.approx(-gamma, abs=1e-4)
    assert box_city.true_to_grid_heading(0.0, CAMERA) == pytest.approx(-gamma % 360, abs=1e-9)
    assert 0.9995 < k < 0.9998
    xy = box_city.local_to_crs(np.array([[0.0, 0.0], [12.5, 40.25]]))
    assert np.allclose(xy, [[465_000.0, 5_246_000.0], [465_012.5, 5_246_040.25]], atol=1e-9)
    assert np.allclose(
        box_city.lonlat_to_local(box_city.local_to_lonlat(xy - box_city.origin_xy)), [[0, 0], [12.5, 40.25]]
    )


# ------------------------------------------------------------------------------------------- ray casting
@pytest.mark.parametrize("heading_deg", [0.0, 37.0, 89.6616])
def test_panorama_column_sees_box_at_its_true_bearing(box_city, heading_deg):
    gamma, k = box_city.grid_factors(CAMERA)
    h, w = 64, 2048
    hits = box_city.trace_panorama(CAMERA, heading_deg, (h, w))
    row = h // 2 - 2  # just above the horizon: only the boxes can be hit
    cols = np.flatnonzero(np.isfinite(hits.radial_m[row]) & (hits.radial_m[row] < 40.0))
    seen = cols[np.abs(hits.hit_xy_m[row, cols, 1] - BOX_EAST[1]) < 1.0]
    assert seen.size > 5
    true_bearing = math.radians(90.0 + gamma)  # grid east, expressed from true north
    offset = (true_bearing - math.radians(heading_deg) + math.pi) % (2 * math.pi) - math.pi
    assert np.mean(seen + 0.5) == pytest.approx(_column_centre(offset, w), abs=0.6)
    # The edge columns agree with the bearings of the box's west corners (half-width 0.5 m at 29 m).
    half = math.atan2(0.5, 29.0)
    assert seen.min() + 0.5 == pytest.approx(_column_centre(offset - half, w), abs=1.0)
    assert seen.max() + 0.5 == pytest.approx(_column_centre(offset + half, w), abs=1.0)


def test_known_pixel_hits_known_cell_and_depth_is_distance(box_city):
    gamma, k = box_city.grid_factors(CAMERA)
    h, w = 256, 2048
    heading = 90.0 + gamma  # look at the box: it is straight ahead, in the centre column
    hits = box_city.trace_panorama(CAMERA, heading, (h, w))
    col = w // 2  # pixel centre 0.5 px right of the heading: still within the 1 m wide face
    elevation = math.atan2(5.0 - 1.6, 29.0 / k)  # the face point 5 m above the ground
    row = int(round((math.pi / 2 - elevation) / math.pi * h - 0.5))
    east, north = hits.hit_xy_m[row, col]
    assert hits.wall[row, col]
    assert east == pytest.approx(79.0, abs=0.01)  # the box's west face (grid metres)
    assert abs(north - 50.0) < 0.5
    r_, c_ = box_city.local_to_cell(np.array([east + 0.05, north]))
    assert box_city.building_id[r_, c_] == 0 and box_city.kind[r_, c_] == KIND_BUILDING
    theta = math.pi * (row + 0.5) / h
    expected = (29.0 / k) / math.sin(theta)  # horizontal ground distance over cos(elevation)
    assert hits.radial_m[row, col] == pytest.approx(expected, abs=0.01)
    # Every hit: the depth is the 3-D distance to the hit point (horizontal grid metres / k).
    ok = np.isfinite(hits.radial_m)
    d_h = np.hypot(hits.hit_xy_m[..., 0] - CAMERA[0], hits.hit_xy_m[..., 1] - CAMERA[1]) / k
    d_3d = np.hypot(d_h, hits.hit_z_m - hits.camera_z_m)
    assert np.allclose(hits.radial_m[ok], d_3d[ok], atol=2e-3)
    # Flat ground below the horizon: depth = camera height / sin(depression), to millimetres.
    rows = np.arange(h // 2 + 4, h)
    depression = (rows + 0.5) / h * math.pi - math.pi / 2
    ground = hits.radial_m[rows, 0]  # looking back west: nothing but asphalt
    assert np.allclose(ground, 1.6 / np.sin(depression), atol=5e-3)
    assert np.isnan(hits.radial_m[0]).all()  # sky at the zenith


def test_pinhole_depth_is_z_depth(box_city):
    gamma, k = box_city.grid_factors(CAMERA)
    cam = Pinhole.from_fov(320, 120, 90.0)
    rgb, z = box_city.render_pinhole(CAMERA, gamma, cam)  # optical axis along grid north
    assert rgb.shape == (120, 320, 3) and z.dtype == np.float32
    wall = z[40, :]  # above the horizon: only the wall 20 m ahead
    assert np.isfinite(wall).all()
    assert np.allclose(wall, 20.0 / k, atol=0.01)
    radial = box_city.trace_pinhole(CAMERA, gamma, cam).radial_m[40]
    assert radial[0] > 1.35 * radial[160]  # radial distance grows towards the edges, z-depth does not
    # The ground below the horizon: z-depth = h · fy / (v − cy).
    v = np.arange(75, 120)  # below the foot of the wall (rows ≤ 72 still see it)
    assert np.allclose(z[v, 160], 1.6 * cam.fy / (v + 0.5 - cam.cy), atol=5e-3)


# ------------------------------------------------------------------------------------------- orthophoto
@pytest.mark.parametrize("mpp", [0.1, 0.2])
def test_orthophoto_puts_known_box_where_the_crs_says(box_city, tmp_path, mpp):
    path = box_city.write_orthophoto(tmp_path / "ortho.tif", metres_per_pixel=mpp)
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 32632
        assert ds.count == 3 and ds.dtypes[0] == "uint8"
        assert ds.profile["tiled"] and ds.compression is not None
        assert ds.transform.a == pytest.approx(mpp) and ds.transform.e == pytest.approx(-mpp)
        assert (ds.transform.c, ds.transform.f) == pytest.approx((465_000.0, 5_246_100.0))
        image = ds.read()

    def sample(east: float, north: float) -> np.ndarray:
        x, y = box_city.local_to_crs(np.array([east, north]))
        with rasterio.open(path) as ds:
            row, col = ds.index(x, y)
        return image[:, row, col].astype(int)

    # The 2 m × 1 m box spans east 79–81, north 49.5–50.5: yellow 0.3 m inside, asphalt 0.3 m outside.
    for east, north in [(79.3, 50.0), (80.7, 50.0), (80.0, 49.8), (80.0, 50.2)]:
        assert np.abs(sample(east, north) - ROOF).max() <= 12
    for east, north in [(78.7, 50.0), (81.3, 50.0), (80.0, 49.2), (80.0, 50.8)]:
        assert np.abs(sample(east, north) - ROOF).max() > 60


def test_orthophoto_matches_city_cells(city, tmp_path):
    path = city.write_orthophoto(tmp_path / "o.tif", metres_per_pixel=0.1)
    rng = np.random.default_rng(0)
    pts = rng.uniform(1.0, 119.0, size=(200, 2))
    with rasterio.open(path) as ds:
        xy = city.local_to_crs(pts)
        got = np.array([v for v in ds.sample([tuple(p) for p in xy])])
    rows, cols = city.local_to_cell(pts)
    assert np.array_equal(got, city.ortho[rows, cols])
    # Building footprints (street frame) land on building cells.
    centres = city.street_to_local(np.array([b.centre_uv for b in city.buildings]))
    inside = np.all((centres > 1) & (centres < 119), axis=1)
    r, c = city.local_to_cell(centres[inside])
    assert inside.sum() > 3
    assert np.all(np.isin(city.kind[r, c], [KIND_BUILDING, KIND_ROOF_BOX]))


def test_render_aerial_agrees_with_geotiff_crop(city, tmp_path):
    path = city.write_orthophoto(tmp_path / "ortho.tif", metres_per_pixel=0.1)
    centre = np.array([62.0, 55.0])
    with Orthophoto.open(path) as ortho:
        for up in (0.0, 30.0, 250.0):
            crop = ortho.crop(tuple(city.local_to_crs(centre)), 50.0, 500, up)
            mine = city.render_aerial(centre, 50.0, 500, up)
            assert np.abs(crop.image.astype(int) - mine).mean() < 0.5
            cam = np.array([48.0, 70.0])
            expected = crop.crs_to_aerial(city.local_to_crs(cam)[None])[0]
            assert np.allclose(city.local_to_aerial(cam, centre, up), expected, atol=1e-4)
    small = city.render_aerial(centre, 50.0, 100, 0.0)  # pyramid level for a coarse crop
    assert small.shape == (100, 100, 3)


# ------------------------------------------------------------------------------------------- determinism
def test_same_seed_same_city_different_seed_different_city(city):
    again = SyntheticCity(11, size_m=120.0, cell_m=0.1)
    other = SyntheticCity(12, size_m=120.0, cell_m=0.1)
    assert np.array_equal(city.height_m, again.height_m)
    assert np.array_equal(city.ortho, again.ortho)
    assert not np.array_equal(city.height_m, other.height_m)
    assert np.abs(city.ortho.astype(int) - other.ortho).mean() > 10
    pos = city.sample_positions(np.random.default_rng(3), 1, margin_m=20)[0]
    a = city.render_panorama(pos, 12.0, (64, 128))
    b = again.render_panorama(pos, 12.0, (64, 128))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1], equal_nan=True)
    assert 0.05 < float(np.mean(city.kind == KIND_BUILDING)) < 0.7
    assert city.height_m.max() <= 25.0 + 2.5 + 1e-3 and len(city.trees) > 3


# ------------------------------------------------------------------------------------------- files
def test_depth_png_round_trip(tmp_path):
    depth = np.array([[1.0, 2.5004, np.nan], [0.0, 70.0, 35.123]], np.float32)
    read = FileDepth(write_depth(tmp_path / "p.png", depth, "png_mm", beyond_range="invalid")).read(
        Equirectangular(2, 1)
    )
    assert np.allclose(read[0, :2], [1.0, 2.5], atol=5e-4) and read[1, 2] == pytest.approx(35.123, abs=5e-4)
    assert np.isnan(read[0, 2]) and np.isnan(read[1, 0]) and np.isnan(read[1, 1])  # sky, 0, beyond 65.5 m
    read = FileDepth(write_depth(tmp_path / "z.png", depth, "png_256", beyond_range="invalid")).read(
        Pinhole.from_fov(2, 2, 90)
    )
    assert np.allclose(read[0, :2], [1.0, 2.5], atol=1 / 512) and read[1, 1] == pytest.approx(
        70.0, abs=1 / 512
    )


def test_generate_dataset_exif_truth_and_depth(city, tmp_path):
    out = generate_dataset(
        tmp_path / "ds", 11, n_panoramas=2, n_pinhole=1, pano_size_hw=(64, 128), ortho_mpp=0.2,
        pinhole_size_hw=(96, 160), city=city,
    )  # fmt: skip
    with open(out / "truth.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
    assert reader.fieldnames == TRUTH_COLUMNS and len(rows) == 3
    with rasterio.open(out / "ortho.tif") as ds:
        assert ds.crs.to_epsg() == 32632 and ds.res == pytest.approx((0.2, 0.2))
    to_wgs = pyproj.Transformer.from_crs(rows[0]["crs"], "EPSG:4326", always_xy=True)
    shifts = []
    for row in rows:
        photo = read_photo(out / row["photo"])
        assert photo.lat == pytest.approx(float(row["prior_lat"]), abs=1e-7)
        assert photo.lon == pytest.approx(float(row["prior_lon"]), abs=1e-7)
        assert photo.heading_deg == pytest.approx(float(row["prior_heading_deg"]), abs=6e-3)
        assert photo.heading_ref == "T" and photo.timestamp is not None
        lon, lat = to_wgs.transform(float(row["x"]), float(row["y"]))
        assert (lon, lat) == pytest.approx((float(row["lon"]), float(row["lat"])), abs=1e-8)
        shifts.append(
            math.hypot(float(row["prior_x"]) - float(row["x"]), float(row["prior_y"]) - float(row["y"]))
        )
        camera = camera_for_photo(photo)
        if row["camera"] == "pinhole":
            assert isinstance(camera, Pinhole) and photo.focal_35mm is not None
            assert camera.hfov_deg == pytest.approx(float(row["hfov_deg"]), abs=0.01)
        else:
            assert isinstance(camera, Equirectangular) and (photo.width, photo.height) == (128, 64)
        # The camera stands on a street or sidewalk, ≥ 2 m from any building.
        xy = city.crs_to_local(np.array([float(row["x"]), float(row["y"])]))
        r, c = city.local_to_cell(xy)
        assert city.kind[r, c] in (KIND_ROAD, KIND_SIDEWALK, KIND_TREE)  # (possibly under a canopy)
        assert city.free_space(2.0)[r, c]
        # The depth PNG decodes to the depth rendered from the true pose.
        heading = float(row["heading_deg"])
        if row["camera"] == "pinhole":
            _, depth = city.render_pinhole(xy, heading, camera)
            tol = 1 / 512 + 2e-3  # PNG quantisation + bisection precision of walls (~1 mm)
        else:
            _, depth = city.render_panorama(xy, heading, (64, 128))
            tol = 5e-4 + 2e-3
        read = FileDepth(out / row["depth"]).read(camera)
        both = np.isfinite(depth) & np.isfinite(read)
        # (truth.csv rounds positions to 0.1 mm, which may flip a ray grazing an edge: allow a few pixels)
        assert np.mean(np.isfinite(read) == (np.isfinite(depth) & (depth < 65.5))) > 0.99
        assert np.mean(np.abs(read[both] - depth[both]) <= tol) > 0.99
    assert 0 < max(shifts) < 30


# ------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("camera", ["panorama", "pinhole"])
def test_sample_training_pair_frames(city, camera):
    rng = np.random.default_rng(5)
    s = sample_training_pair(
        city, rng, camera=camera, ground_size_hw=(64, 128), aerial_size_px=300, footprint_m=30.0,
        max_offset_m=6.0, up_heading_deg=None if camera == "pinhole" else 0.0,
    )  # fmt: skip
    assert s["ground_rgb"].shape == (64, 128, 3) and s["depth_m"].shape == (64, 128)
    assert s["aerial_rgb"].shape == (300, 300, 3)
    assert s["depth_kind"] == ("radial" if camera == "panorama" else "z")
    xy = np.asarray(s["xy_aerial_m"])
    assert np.hypot(*xy) <= 6.0 + 1e-6
    assert s["heading_aerial_deg"] == pytest.approx((s["heading_deg"] - s["up_heading_deg"]) % 360.0)
    # The crop pixel at the camera's aerial position shows the ground under the camera.
    col, row = (xy[1] + 15.0) / 0.1, (xy[0] + 15.0) / 0.1
    patch = s["aerial_rgb"][int(row) - 1 : int(row) + 2, int(col) - 1 : int(col) + 2].reshape(-1, 3).mean(0)
    r, c = city.local_to_cell(s["position_xy_m"])
    expected = city.ortho[r - 1 : r + 2, c - 1 : c + 2].reshape(-1, 3).mean(0)
    assert np.abs(patch - expected).max() < 25
    # Going the other way, the aerial position maps back to the camera position.
    back = city.aerial_to_local(xy, s["aerial_center_xy_m"], s["up_heading_deg"])
    assert np.allclose(back, s["position_xy_m"], atol=1e-6)


def test_tree_hits_lie_on_their_canopy_and_depth_is_distance(city):
    gamma, k = city.grid_factors()
    hit_any = False
    for pos in city.sample_positions(np.random.default_rng(9), 4, margin_m=20):
        hits = city.trace_panorama(pos, 0.0, (96, 192))
        ok = np.isfinite(hits.radial_m)
        d_h = np.hypot(hits.hit_xy_m[..., 0] - pos[0], hits.hit_xy_m[..., 1] - pos[1]) / k
        assert np.allclose(hits.radial_m[ok], np.hypot(d_h, hits.hit_z_m - hits.camera_z_m)[ok], atol=2e-3)
        rows, cols = np.nonzero(hits.tree_id >= 0)
        for r, c in zip(rows, cols, strict=True):
            tree = city.trees[hits.tree_id[r, c]]
            centre = city.street_to_local(np.array([tree.u, tree.v]))
            rho = np.hypot(*(hits.hit_xy_m[r, c] - centre)) / tree.radius_m
            zeta = (hits.hit_z_m[r, c] - tree.canopy_centre_m) / tree.canopy_half_m
            assert rho**2 + zeta**2 == pytest.approx(1.0, abs=1e-3)
            hit_any = True
    assert hit_any
