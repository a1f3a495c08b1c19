"""Synthetic benchmarks: a city's orthophoto, geotagged photos, depth maps and truth written as a folder
(:func:`generate_dataset`), training pairs rendered in memory (:func:`sample_training_pair`), and the errors
of a job's results against a folder's truth (:func:`errors_against_truth`)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from ..geometry.cameras import Equirectangular, Pinhole
from ..geometry.frames import angle_difference_deg
from ..inputs.depth import write_depth
from ..inputs.photos import focal_35mm_for_hfov, hfov_for_focal_35mm, is_panorama_aspect
from .city import GROUND_ALTITUDE_M, SyntheticCity
from .writers import write_jpeg_with_exif

TRUTH_COLUMNS = [
    "photo", "x", "y", "lon", "lat", "heading_deg", "prior_x", "prior_y", "prior_lon", "prior_lat",
    "prior_heading_deg", "camera", "hfov_deg", "crs", "depth", "camera_height_m", "width", "height",
]  # fmt: skip


@dataclass(frozen=True)
class _PhotoPrior:
    """A synthetic photo's prior: CRS position (metres), lon/lat (degrees), heading (degrees from north)."""

    xy_crs_m: np.ndarray
    lon: float
    lat: float
    heading_deg: float

    @classmethod
    def around(
        cls, city: SyntheticCity, pos: np.ndarray, offset_m: np.ndarray, heading_deg: float
    ) -> _PhotoPrior:
        """The prior ``offset_m`` (CRS axes) from the local position ``pos``."""
        xy = city.local_to_crs(pos) + offset_m
        lon, lat = city.local_to_lonlat(city.crs_to_local(xy))
        return cls(xy, lon, lat, heading_deg)


def _truth_row(
    city: SyntheticCity,
    out: Path,
    photo: Path,
    depth_path: Path,
    truth: tuple[np.ndarray, float, float, float],
    prior: _PhotoPrior,
    shape: tuple[int, ...],
) -> dict:
    """One row of truth.csv (:data:`TRUTH_COLUMNS`). ``truth``: (local position, heading in degrees from
    true north, horizontal field of view in degrees, camera height in metres)."""
    pos, heading, hfov, camera_height_m = truth
    xy = city.local_to_crs(pos)
    lon, lat = city.local_to_lonlat(pos)
    return {
        "photo": photo.relative_to(out).as_posix(), "x": f"{xy[0]:.4f}", "y": f"{xy[1]:.4f}",
        "lon": f"{lon:.9f}", "lat": f"{lat:.9f}", "heading_deg": f"{heading:.4f}",
        "prior_x": f"{prior.xy_crs_m[0]:.4f}", "prior_y": f"{prior.xy_crs_m[1]:.4f}",
        "prior_lon": f"{prior.lon:.9f}", "prior_lat": f"{prior.lat:.9f}",
        "prior_heading_deg": f"{prior.heading_deg:.4f}",
        "camera": "pinhole" if hfov < 360.0 else "panorama", "hfov_deg": f"{hfov:.4f}", "crs": city.crs_string,
        "depth": depth_path.relative_to(out).as_posix(), "camera_height_m": f"{camera_height_m:.3f}",
        "width": shape[1], "height": shape[0],
    }  # fmt: skip


def generate_dataset(
    out_dir: str | Path,
    seed: int,
    n_panoramas: int = 8,
    n_pinhole: int = 4,
    prior_sigma_m: float = 5.0,
    heading_sigma_deg: float = 10.0,
    pano_size_hw: tuple[int, int] = (512, 1024),
    ortho_mpp: float = 0.1,
    *,
    pinhole_size_hw: tuple[int, int] = (384, 1152),
    pinhole_hfov_deg: float = 90.0,
    size_m: float = 300.0,
    cell_m: float = 0.1,
    camera_height_m: float = 1.6,
    max_range_m: float = 80.0,
    ortho_compress: str = "deflate",
    city: SyntheticCity | None = None,
) -> Path:
    """Write a complete synthetic benchmark to ``out_dir`` and return ``out_dir``.

    Contents: ``ortho.tif`` (RGB GeoTIFF, ``ortho_mpp`` metres/pixel), ``photos/pano_NNN.jpg`` and
    ``photos/pinhole_NNN.jpg`` (EXIF GPS = prior), ``depth/<stem>.png`` (panorama: uint16 mm radial; pinhole:
    uint16 value/256 m z-depth; 0 invalid) and ``truth.csv`` (:data:`TRUTH_COLUMNS`; x, y in the CRS, headings
    in degrees from true north, ``photo``/``depth`` relative to ``out_dir``). Camera positions lie on streets
    or sidewalks ≥ 2 m from buildings and ≥ 20 m inside the city; headings are uniform. Priors = truth +
    N(0, ``prior_sigma_m``²) on each CRS axis and N(0, ``heading_sigma_deg``²) on the heading. The pinhole
    field of view is snapped to the nearest one whose 35 mm-equivalent focal length is a whole millimetre
    (EXIF stores an integer), so the EXIF-derived field of view equals ``hfov_deg`` in truth.csv.
    """
    out = Path(out_dir)
    ph, pw = pinhole_size_hw
    if n_pinhole and is_panorama_aspect(pw, ph):
        raise ValueError(f"pinhole_size_hw {pinhole_size_hw} is 2:1, which readers take for a 360° panorama")
    city = city if city is not None else SyntheticCity(seed, size_m=size_m, cell_m=cell_m)
    (out / "photos").mkdir(parents=True, exist_ok=True)
    (out / "depth").mkdir(parents=True, exist_ok=True)
    city.write_orthophoto(out / "ortho.tif", ortho_mpp, compress=ortho_compress)
    rng = np.random.default_rng([int(seed), 0xDA7A])
    total = n_panoramas + n_pinhole
    positions = city.sample_positions(rng, total, margin_m=20.0, clearance_m=2.0)
    headings = rng.uniform(0.0, 360.0, size=total)
    prior_offsets = rng.normal(0.0, prior_sigma_m, size=(total, 2))
    heading_noise = rng.normal(0.0, heading_sigma_deg, size=total)
    f35 = max(1, int(round(focal_35mm_for_hfov(pw, ph, pinhole_hfov_deg))))
    pin_hfov = hfov_for_focal_35mm(pw, ph, f35)
    start = datetime(2024, 6, 21, 10, 0, 0)
    rows = []
    for i in range(total):
        pano = i < n_panoramas
        stem = f"pano_{i:03d}" if pano else f"pinhole_{i - n_panoramas:03d}"
        pos, heading = positions[i], float(headings[i])
        if pano:
            rgb, depth = city.render_panorama(pos, heading, pano_size_hw, camera_height_m, max_range_m)
            hfov, focal = 360.0, None
        else:
            cam = Pinhole.from_fov(pw, ph, pin_hfov)
            rgb, depth = city.render_pinhole(pos, heading, cam, camera_height_m, max_range_m)
            hfov, focal = pin_hfov, f35
        prior = _PhotoPrior.around(city, pos, prior_offsets[i], (heading + heading_noise[i]) % 360.0)
        altitude = GROUND_ALTITUDE_M + float(city.ground_height(pos)) + camera_height_m
        photo = write_jpeg_with_exif(out / "photos" / f"{stem}.jpg", rgb, prior.lon, prior.lat, altitude,
                                     prior.heading_deg, start + timedelta(seconds=10 * i), focal,
                                     model=f"SyntheticCity seed {city.seed}")  # fmt: skip
        fmt = "png_mm" if pano else "png_256"  # the published formats (VIGOR, KITTI): radial mm, z-depth
        depth_path = write_depth(out / "depth" / f"{stem}.png", depth, fmt, beyond_range="invalid")
        truth = (pos, heading, hfov, camera_height_m)
        rows.append(_truth_row(city, out, photo, depth_path, truth, prior, rgb.shape))
    with open(out / "truth.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=TRUTH_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return out


# ----------------------------------------------------------------------------------------------- training
def sample_training_pair(
    city: SyntheticCity,
    rng: np.random.Generator,
    camera: str = "panorama",
    ground_size_hw: tuple[int, int] = (128, 256),
    aerial_size_px: int = 128,
    footprint_m: float = 72.0,
    max_offset_m: float | None = None,
    hfov_deg: float = 90.0,
    up_heading_deg: float | None = 0.0,
    camera_height_m: float = 1.6,
    max_range_m: float = 60.0,
) -> dict:
    """One ground/aerial training pair rendered in memory (no disk).

    The camera stands at a random free street/sidewalk position with a uniform random true heading; the
    aerial crop (``footprint_m`` true ground metres, ``aerial_size_px`` pixels, up = true-north heading
    ``up_heading_deg``; ``None`` draws it uniformly; KITTI-style crops pass prior heading − 90) is centred at
    a point up to ``max_offset_m`` (default footprint/4) from the camera, uniform over that disk.

    Returns a dict: ``ground_rgb`` (H, W, 3) uint8; ``depth_m`` (H, W) float32, NaN invalid; ``depth_kind``
    ('radial' | 'z'); ``camera`` (Equirectangular | Pinhole); ``aerial_rgb`` (S, S, 3) uint8; ``footprint_m``;
    ``xy_aerial_m`` (2,) the true camera position in the aerial frame (x down, y right, metres from the crop
    centre); ``heading_aerial_deg`` the true heading clockwise from the crop's up; ``heading_deg`` (true north);
    ``up_heading_deg``; ``position_xy_m`` and ``aerial_center_xy_m`` (local frame); ``position_crs``.
    """
    if camera not in ("panorama", "pinhole"):
        raise ValueError(f"camera must be 'panorama' or 'pinhole', got {camera!r}")
    max_offset = footprint_m / 4 if max_offset_m is None else float(max_offset_m)
    margin = footprint_m * math.sqrt(2.0) / 2 + max_offset + 1.0
    position = city.sample_positions(rng, 1, margin_m=margin)[0]
    heading = float(rng.uniform(0.0, 360.0))
    up = float(rng.uniform(0.0, 360.0)) if up_heading_deg is None else float(up_heading_deg) % 360.0
    rho, phi = max_offset * math.sqrt(rng.random()), rng.uniform(0.0, 2 * math.pi)
    centre = position + city.ground_en_to_local(
        np.array([rho * math.sin(phi), rho * math.cos(phi)]), position
    )
    h, w = ground_size_hw
    if camera == "panorama":
        cam: Equirectangular | Pinhole = Equirectangular(width=w, height=h)
        rgb, depth = city.render_panorama(position, heading, (h, w), camera_height_m, max_range_m)
        kind = "radial"
    else:
        cam = Pinhole.from_fov(w, h, hfov_deg)
        rgb, depth = city.render_pinhole(position, heading, cam, camera_height_m, max_range_m)
        kind = "z"
    return {
        "ground_rgb": rgb,
        "depth_m": depth,
        "depth_kind": kind,
        "camera": cam,
        "aerial_rgb": city.render_aerial(centre, footprint_m, aerial_size_px, up),
        "footprint_m": float(footprint_m),
        "xy_aerial_m": city.local_to_aerial(position, centre, up),
        "heading_aerial_deg": (heading - up) % 360.0,
        "heading_deg": heading,
        "up_heading_deg": up,
        "position_xy_m": position,
        "aerial_center_xy_m": centre,
        "position_crs": city.local_to_crs(position),
    }


def read_truth(path: Path) -> dict[str, dict]:
    """truth.csv rows keyed by photo file name."""
    with open(path, newline="") as fh:
        return {Path(row["photo"]).name: row for row in csv.DictReader(fh)}


def errors_against_truth(results_path: Path, truth_path: Path) -> list[dict]:
    """Per photo: position error (geodesic metres), its east and north parts (metres, truth → estimate) and
    the heading error (degrees) of the localized poses; also the prior's distance from the truth."""
    import pyproj

    from ..output.formats import read_poses

    geod = pyproj.Geod(ellps="WGS84")
    truth = read_truth(truth_path)
    rows = []
    for _, pose in read_poses(results_path).iterrows():
        name = Path(pose["photo"]).name
        t = truth[name]
        row = {"photo": name, "camera": t["camera"], "status": pose["status"], "inliers": pose["inliers"]}
        if pose["status"] == "ok":
            azimuth, _, dist = geod.inv(float(t["lon"]), float(t["lat"]), pose["lon"], pose["lat"])
            _, _, prior = geod.inv(
                float(t["lon"]), float(t["lat"]), float(t["prior_lon"]), float(t["prior_lat"])
            )
            row.update(
                position_error_m=dist,
                error_east_m=dist * math.sin(math.radians(azimuth)),
                error_north_m=dist * math.cos(math.radians(azimuth)),
                heading_error_deg=float(angle_difference_deg(pose["heading"], float(t["heading_deg"]))),
                prior_error_m=prior,
                inlier_ratio=pose["inl_ratio"],
                confidence=pose["confidence"],
            )
        rows.append(row)
    return rows
