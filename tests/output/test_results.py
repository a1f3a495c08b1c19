"""PhotoResult, confidence classes, geodesic shifts, ground outlines and layer tables."""

from __future__ import annotations

import math

import numpy as np
import pyproj
import pytest
from shapely.geometry import LineString, Point, Polygon

from loc2.core.geometry.pose import Similarity2D
from loc2.core.localizer import LocalizationResult
from loc2.core.output.results import PhotoResult, ground_outline, photo_result_from_localization
from loc2.core.output.tables import INLIER_FIELDS, LAYER_SCHEMAS, POSE_FIELDS, layer_tables
from loc2.core.solver.confidence import (
    CONFIDENCE_HIGH_MIN_RATIO,
    CONFIDENCE_MEDIUM_MIN_RATIO,
    confidence_class,
)

UTM33 = pyproj.CRS.from_epsg(32633)
GEOD = pyproj.Geod(ellps="WGS84")


def _circle(center: tuple[float, float], radius: float, n: int = 3600, rng=None) -> np.ndarray:
    ang = np.linspace(0, 2 * math.pi, n, endpoint=False)
    if rng is not None:
        ang = rng.uniform(0, 2 * math.pi, n)
    return np.column_stack([center[0] + radius * np.cos(ang), center[1] + radius * np.sin(ang)])


def _ok_result(crs: pyproj.CRS = UTM33, **kw) -> PhotoResult:
    rng = np.random.default_rng(1)
    x, y = 500_100.0, 5_300_000.0
    layout = _circle((x, y), 10.0, 720, rng)
    base = dict(
        photo="/photos/a.jpg",
        status="ok",
        x=x,
        y=y,
        heading_deg=45.0,
        prior_x=x - 3.0,
        prior_y=y - 4.0,
        prior_heading_deg=40.0,
        scale=1.01,
        num_inliers=1200,
        inlier_ratio=0.2,
        runtime_s=2.5,
        model="demo",
        depth="flat",
        crs_wkt=crs.to_wkt(),
        candidates=[(x, y, 0.9), (x + 5, y, 0.4)],
        inliers_xy_crs=layout[:30],
        inliers_uv=rng.uniform(0, 500, (30, 2)),
        inliers_prob=rng.uniform(0, 1, 30),
        inliers_resid_m=rng.uniform(0, 2.5, 30),
        layout_xy_crs=layout,
        matches_ground_xy_crs=layout[:5],
        matches_aerial_xy_crs=layout[:5] + [3.0, 4.0],
        matches_prob=np.linspace(0.9, 0.5, 5),
    )
    base.update(kw)
    return PhotoResult(**base)


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [
        (CONFIDENCE_HIGH_MIN_RATIO, "high"),
        (0.9, "high"),
        (np.nextafter(CONFIDENCE_HIGH_MIN_RATIO, 0), "medium"),
        (CONFIDENCE_MEDIUM_MIN_RATIO, "medium"),
        (np.nextafter(CONFIDENCE_MEDIUM_MIN_RATIO, 0), "low"),
        (0.0, "low"),
        (math.nan, "none"),
        (None, "none"),
    ],
)
def test_confidence_thresholds(ratio, expected):
    assert confidence_class(ratio) == expected


def test_confidence_thresholds_follow_the_paper_curve():
    # error falls steeply between 10 % and 50 % inliers: "medium" starts above 10 %, "high" below 50 %
    assert 0.10 < CONFIDENCE_MEDIUM_MIN_RATIO < CONFIDENCE_HIGH_MIN_RATIO <= 0.50


def test_result_confidence_is_derived_only_for_located_photos():
    assert _ok_result(inlier_ratio=0.45).confidence == "high"
    assert _ok_result(inlier_ratio=0.05).confidence == "low"
    failed = PhotoResult.failed("b.jpg", "no GPS", inlier_ratio=0.9)
    assert failed.confidence == "none"


def test_shift_in_geographic_crs_is_geodesic_metres():
    crs = pyproj.CRS.from_epsg(4326)
    res = PhotoResult(
        photo="p.jpg",
        status="ok",
        x=7.4470,
        y=46.9480,
        prior_x=7.4468,
        prior_y=46.9481,
        crs_wkt=crs.to_wkt(),
    )
    _, _, expected = GEOD.inv(7.4468, 46.9481, 7.4470, 46.9480)
    assert res.shift_m == pytest.approx(expected, abs=1e-6)
    assert 10 < res.shift_m < 30  # metres, not degrees
    assert (res.lon, res.lat) == pytest.approx((7.4470, 46.9480), abs=1e-12)


def test_shift_in_utm_is_ground_metres_not_grid_metres():
    res = _ok_result()
    to_ll = pyproj.Transformer.from_crs(UTM33, "EPSG:4326", always_xy=True)
    lon0, lat0 = to_ll.transform(res.prior_x, res.prior_y)
    lon1, lat1 = to_ll.transform(res.x, res.y)
    _, _, expected = GEOD.inv(lon0, lat0, lon1, lat1)
    assert res.shift_m == pytest.approx(expected, abs=1e-6)
    assert (res.prior_lon, res.prior_lat) == pytest.approx((lon0, lat0), abs=1e-12)
    # near the central meridian the UTM grid shrinks ground distances by k0 = 0.9996
    grid_m = 5.0
    assert res.shift_m == pytest.approx(grid_m / 0.9996, rel=2e-5)
    assert abs(res.shift_m - grid_m) > 1e-3


def test_prior_xy_is_filled_from_lonlat_and_headings_are_wrapped():
    res = PhotoResult(
        photo="p.jpg",
        status="ok",
        x=500_000.0,
        y=5_300_000.0,
        heading_deg=-10.0,
        prior_lon=15.0,
        prior_lat=47.85,
        prior_heading_deg=725.0,
        crs_wkt=UTM33.to_wkt(),
    )
    x, y = pyproj.Transformer.from_crs("EPSG:4326", UTM33, always_xy=True).transform(15.0, 47.85)
    assert (res.prior_x, res.prior_y) == pytest.approx((x, y), abs=1e-6)
    assert res.heading_deg == pytest.approx(350.0)
    assert res.prior_heading_deg == pytest.approx(5.0)


def test_outline_of_a_circle_has_the_circle_area():
    center = (500_000.0, 5_300_000.0)
    poly = ground_outline(_circle(center, 10.0), center, sectors=72)
    assert isinstance(poly, Polygon) and poly.is_valid
    assert len(poly.exterior.coords) - 1 == 72
    assert poly.area == pytest.approx(math.pi * 100, rel=0.01)
    assert poly.contains(Point(center))


def test_outline_takes_the_farthest_point_per_sector():
    center = np.array([10.0, 20.0])
    far = _circle(tuple(center), 10.0, 720)
    near = _circle(tuple(center), 4.0, 720)
    nan_rows = np.full((5, 2), np.nan)
    poly = ground_outline(np.vstack([near, far, nan_rows]), center, sectors=36)
    radii = np.hypot(*(np.asarray(poly.exterior.coords) - center).T)
    assert radii == pytest.approx(10.0)


def test_outline_of_a_pinhole_fan_includes_the_camera():
    rng = np.random.default_rng(3)
    cam = np.array([1000.0, 2000.0])
    heading = math.radians(30.0)  # fan axis, measured like the azimuths: atan2(dy, dx)
    ang = heading + rng.uniform(-math.pi / 4, math.pi / 4, 20_000)
    r = 20.0 * np.sqrt(rng.uniform(0, 1, 20_000))
    pts = cam + np.column_stack([r * np.cos(ang), r * np.sin(ang)])
    poly = ground_outline(pts, cam, sectors=72)
    assert poly is not None and poly.is_valid
    assert tuple(cam) in [tuple(c) for c in poly.exterior.coords]
    # the edge vertices lie up to one 5° sector inside the 90° wedge: area between the 80° and 90° wedges
    assert 0.5 * 20.0**2 * math.radians(80.0) <= poly.area <= 0.5 * 20.0**2 * math.radians(90.0)
    c = np.asarray(poly.centroid.coords[0]) - cam
    assert math.degrees(math.atan2(c[1], c[0])) == pytest.approx(30.0, abs=2.0)


def test_outline_needs_three_sectors():
    assert ground_outline(np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.01]]), (0.0, 0.0)) is None
    assert ground_outline(np.zeros((0, 2)), (0.0, 0.0)) is None


def test_layer_tables_rows_and_schema():
    ok = _ok_result()
    failed = PhotoResult.failed(
        "/photos/b.jpg", "no valid depth", status="no_valid_depth", prior_lon=15.0, prior_lat=47.85,
        prior_heading_deg=90.0, crs_wkt=UTM33.to_wkt(),
    )  # fmt: skip
    tables = layer_tables([ok, failed], include_matches=True)
    assert list(tables) == ["poses", "priors", "inliers", "outlines", "shifts", "matches"]
    for name, table in tables.items():
        assert table.geometry_type == LAYER_SCHEMAS[name][0]
        assert all(len(n) <= 10 for n in table.field_names)
        for _, attrs in table.rows:
            assert list(attrs) == table.field_names
    assert [n for n, _ in POSE_FIELDS][:3] == ["photo", "status", "message"]

    priors = tables["priors"].rows  # every photo with a prior, at the prior, with the prior's attributes
    assert [attrs["photo"] for _, attrs in priors] == ["/photos/a.jpg", "/photos/b.jpg"]
    assert priors[1][1]["prior_head"] == 90.0 and priors[1][1]["status"] == "no_valid_depth"
    assert priors[1][0].equals(Point(failed.prior_x, failed.prior_y)) and "inliers" not in priors[1][1]
    poses = tables["poses"].rows
    assert len(poses) == 2
    geom, attrs = poses[0]
    assert geom.equals(Point(ok.x, ok.y)) and attrs["geom_src"] == "corrected"
    assert attrs["heading"] == 45.0 and attrs["prior_head"] == 40.0 and attrs["n_cand"] == 2
    assert len(attrs["cand_score"].split(";")) == 2
    assert attrs["inliers"] == 1200 and attrs["confidence"] == "medium"

    assert len(tables["inliers"].rows) == 30
    g, a = tables["inliers"].rows[3]
    assert g.equals(Point(*ok.inliers_xy_crs[3]))
    assert (a["u"], a["v"], a["prob"]) == (ok.inliers_uv[3, 0], ok.inliers_uv[3, 1], ok.inliers_prob[3])
    assert [n for n, _ in INLIER_FIELDS] == list(a)

    (outline, o_attrs), = tables["outlines"].rows  # fmt: skip
    assert outline.area == pytest.approx(math.pi * 100, rel=0.02)
    # geodesic area: UTM grid areas are k0² = 0.9992 times the ground areas near the central meridian
    assert o_attrs["area_m2"] == pytest.approx(outline.area / 0.9996**2, rel=1e-3)
    assert o_attrs["n_points"] == 720

    (line, s_attrs), = tables["shifts"].rows  # fmt: skip
    assert isinstance(line, LineString)
    assert list(line.coords) == [(ok.prior_x, ok.prior_y), (ok.x, ok.y)]
    assert s_attrs["shift_m"] == ok.shift_m and s_attrs["head_diff"] == pytest.approx(5.0)

    assert len(tables["matches"].rows) == 5
    m_geom, m_attrs = tables["matches"].rows[0]
    assert m_attrs["rank"] == 1 and m_attrs["prob"] == pytest.approx(0.9)
    assert m_attrs["resid_m"] == pytest.approx(5.0 / 0.9996, rel=1e-4)
    assert m_geom.length == pytest.approx(5.0)


def test_failed_result_keeps_its_prior_in_poses():
    failed = PhotoResult.failed(
        "/photos/b.jpg", "prior outside the orthophoto", prior_lon=15.0, prior_lat=47.85, prior_heading_deg=90.0,
        crs_wkt=UTM33.to_wkt(), runtime_s=0.1, model="demo",
    )  # fmt: skip
    nothing = PhotoResult.failed("/photos/c.jpg", "unreadable image")
    tables = layer_tables([failed, nothing])
    (g1, a1), (g2, a2) = tables["poses"].rows
    assert g1.equals(Point(failed.prior_x, failed.prior_y)) and a1["geom_src"] == "prior"
    assert a1["status"] == "failed" and a1["message"] == "prior outside the orthophoto"
    assert a1["prior_lon"] == 15.0 and a1["prior_head"] == 90.0 and math.isnan(a1["x"])
    assert math.isnan(a1["shift_m"]) and a1["confidence"] == "none"
    assert g2 is None and a2["geom_src"] == "none" and a2["message"] == "unreadable image"
    for name in ("inliers", "outlines", "shifts"):
        assert tables[name].rows == []


class _NorthUpCrop:
    """A north-up crop of a projected CRS without grid convergence (what the helpers need of AerialCrop)."""

    def __init__(self, center, footprint_m=72.0, size_px=630, crs=UTM33):
        self.center_xy_crs = center
        self.footprint_m = footprint_m
        self.size_px = size_px
        self.crs = crs

    def aerial_to_crs(self, xy):
        xy = np.atleast_2d(xy)
        return np.column_stack([self.center_xy_crs[0] + xy[:, 1], self.center_xy_crs[1] - xy[:, 0]])

    def crs_to_aerial(self, xy):
        xy = np.atleast_2d(xy)
        return np.column_stack([self.center_xy_crs[1] - xy[:, 1], xy[:, 0] - self.center_xy_crs[0]])

    def heading_to_true_north(self, h):
        return h % 360.0

    def true_north_to_heading(self, h):
        return h % 360.0


def _localization(heading_deg=30.0, t=(2.0, 3.0), s=1.0, n=40):
    rng = np.random.default_rng(5)
    R = Similarity2D.from_heading(heading_deg).R
    ground = rng.uniform(-15, 15, (n, 2))
    aerial = s * ground @ R.T + np.asarray(t)
    return LocalizationResult(
        status="ok",
        pose=Similarity2D(R, np.asarray(t), s),
        num_inliers=n,
        inlier_ratio=0.3,
        inliers_ground_px=rng.uniform(0, 600, (n, 2)),
        inliers_xy_ground_m=ground,
        inliers_xy_aerial_m=aerial,
        inliers_prob=rng.uniform(0, 1, n),
        inliers_residual_m=np.zeros(n),
        layout_xy_aerial_m=np.vstack([aerial, [[np.nan, np.nan]]]),
    )


def test_photo_result_from_localization():
    crop = _NorthUpCrop((500_000.0, 5_300_000.0))
    loc = _localization()
    res = photo_result_from_localization(
        "p.jpg", loc, crop, prior_lon=15.0, prior_lat=47.85, prior_heading_deg=20.0, model="demo",
        depth="flat", runtime_s=1.5, candidates=[(500_000.0, 5_300_000.0, 1.0)], top_matches=10,
    )  # fmt: skip
    assert res.ok and res.status == "ok"
    # t = (2, 3): 2 m south and 3 m east of the crop centre
    assert (res.x, res.y) == pytest.approx((500_003.0, 5_299_998.0))
    assert res.heading_deg == pytest.approx(30.0)
    assert res.num_inliers == 40 and res.inlier_ratio == 0.3 and res.confidence == "medium"
    assert len(res.layout_xy_crs) == 40  # the NaN point is dropped
    assert res.inliers_xy_crs == pytest.approx(crop.aerial_to_crs(loc.inliers_xy_aerial_m))
    order = np.argsort(-loc.inliers_prob)[:10]
    assert res.matches_prob == pytest.approx(loc.inliers_prob[order])
    # exact correspondences: the ground point moved by the pose lands on its aerial point
    assert res.matches_ground_xy_crs == pytest.approx(res.matches_aerial_xy_crs, abs=1e-9)
    assert np.isfinite(res.shift_m) and res.prior_heading_deg == 20.0


def test_photo_result_confidence_uses_the_models_thresholds():
    crop = _NorthUpCrop((500_000.0, 5_300_000.0))
    loc = _localization()  # inlier ratio 0.3: medium by the paper's thresholds
    classes = [
        photo_result_from_localization("p.jpg", loc, crop, confidence_min_ratios=r).confidence
        for r in ((0.05, 0.3), (0.05, 0.31), (0.31, 0.5), (math.inf, math.inf))
    ]
    assert classes == ["high", "medium", "low", "low"]
    failed = LocalizationResult(status="no_pose", message="x")
    assert (
        photo_result_from_localization("p.jpg", failed, crop, confidence_min_ratios=(0, 0)).confidence
        == "none"
    )


def test_photo_result_from_failed_localization_keeps_prior():
    crop = _NorthUpCrop((500_000.0, 5_300_000.0))
    loc = LocalizationResult(status="no_pose", message="rank-deficient")
    res = photo_result_from_localization("p.jpg", loc, crop, prior_lon=15.0, prior_lat=47.85)
    assert res.status == "no_pose" and res.message == "rank-deficient" and not res.ok
    assert math.isnan(res.x) and np.isfinite(res.prior_x) and res.confidence == "none"
    geom, attrs = layer_tables([res])["poses"].rows[0]
    assert attrs["geom_src"] == "prior" and geom.equals(Point(res.prior_x, res.prior_y))


def test_results_and_exports_load_without_torch():
    import subprocess
    import sys

    code = (
        "import sys, loc2.core.output.results, loc2.core.output.export, loc2.core.output.figures; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_preset_confidence_thresholds_per_camera():
    from loc2.core.model.presets import VIGOR, Preset

    assert VIGOR.confidence_min_ratios_for("panorama") == (0.15, 0.40)  # the paper's
    own = VIGOR.replace(confidence_min_ratios={"panorama": [0.03, 0.05]})
    assert own.confidence_min_ratios_for("panorama") == (0.03, 0.05)
    assert own.confidence_min_ratios_for("pinhole") == (math.inf, math.inf)  # not calibrated: never above low
    assert Preset.from_dict(own.to_dict()).confidence_min_ratios_for("panorama") == (0.03, 0.05)
