"""One photo on an orthophoto: its prior → the search crops → matches on every crop → one pose → a result.

:func:`localize_item` runs the stages of one photo (``STAGES``): read the photo and its prior, its depth,
the backbone on the photo once, the matches on each search crop around the prior (:func:`search_offsets_m`),
one pose from all of them (:func:`joint_pose`), the result in the orthophoto's CRS and the match figure.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyproj
import torch

from ..errors import Loc2Error, OrthoFetchError, PhotoError
from ..geometry.cameras import Camera, Equirectangular, aerial_grid_xy
from ..geometry.lifting import flat_ground_spread_m
from ..geometry.pose import Similarity2D
from ..inputs.depth import DepthMap, FlatGroundDepth, depth_file_for
from ..inputs.ortho import AerialCrop, Orthophoto
from ..inputs.photos import camera_for_photo, load_rgb, read_photo
from ..localizer import GroundView, LocalizationResult, Localizer
from ..model.presets import Preset
from ..output.figures import figure_kwargs_from_localization, figure_text, save_match_figure
from ..output.results import PhotoResult, photo_result_from_localization
from ..solver.config import SolverConfig, solver_config
from ..types import DEPTH_FLAT, JobOptions, PhotoItem, search_radius_m

# One crop is trusted to hold the camera within this fraction of its footprint from its centre.
SEARCH_REACH_FRACTION = 0.25
MAX_SEARCH_CROPS = 49
# An orthophoto coarser than the model's crop resolution by these factors gets a warning / is refused.
RESOLUTION_WARN_FACTOR = 1.25
RESOLUTION_ERROR_FACTOR = 2.0
_LOG = logging.getLogger("loc2")

# The stages of one photo, in order, as ``localize_item`` reports them (``on_stage``).
STAGES = ("read", "depth", "backbone", "match", "solve", "figure")
_GEOD = pyproj.Geod(ellps="WGS84")


class Cancelled(Exception):  # noqa: N818 - not an error: the user asked for it
    """The job was cancelled during a photo (at the start of the stage named by the message)."""


@dataclass
class PhotoInput:
    """One photo made ready: its pixels, its camera, its prior position in the orthophoto's CRS and the
    true-north heading the search crops' up direction points to."""

    path: Path
    rgb: np.ndarray
    camera: Camera
    prior_xy_crs: tuple[float, float]
    up_heading_deg: float


@dataclass
class ReadyPhoto:
    """A photo with everything read from disk (:func:`read_stage`): its pixels and prior, its depth, its
    solver and its search crops; ``started_s`` is ``time.perf_counter()`` when its reading began."""

    item: PhotoItem
    photo: PhotoInput
    depth_map: DepthMap
    depth_name: str
    config: SolverConfig
    crops: list[AerialCrop]
    started_s: float


@dataclass
class MatchedPhoto:
    """A photo after the networks (:func:`network_stage`): its ground view, its matches on every search crop
    and the seconds spent per stage so far."""

    view: GroundView
    matches: _CropMatches
    timings_s: dict


def localize_item(
    item: PhotoItem,
    ortho: Orthophoto,
    localizer: Localizer,
    options: JobOptions,
    generator: torch.Generator | None = None,
    is_canceled: Callable[[], bool] | None = None,
    on_stage: Callable[[str, float], None] | None = None,
) -> PhotoResult:
    """Localize one photo; raises Loc2Error (with the photo and the reason) when it cannot be done.

    The three stages in turn: :func:`read_stage` (CPU, disk), :func:`network_stage` (the model's device),
    :func:`solve_stage` (the solver). ``is_canceled()`` is checked as each stage starts (and between search
    crops): a cancelled photo raises :class:`Cancelled` and gives no result. ``on_stage(stage, fraction)`` is
    told each stage as it starts (``STAGES``) with the share of the photo's work done before it.
    """

    def stage(name: str, fraction: float) -> None:
        if is_canceled is not None and is_canceled():
            raise Cancelled(name)
        if on_stage is not None:
            on_stage(name, fraction)

    ready = read_stage(item, ortho, localizer.preset, options, stage)
    matched = network_stage(localizer, [ready], 1, stage)[0]
    return solve_stage(localizer, ready, matched, options, generator, stage)


def no_stage(name: str, fraction: float) -> None:
    """The ``stage`` callback of a caller that neither reports stages nor cancels."""


def photo_generator(options: JobOptions, device: torch.device) -> torch.Generator:
    """Each photo's RANSAC generator: seeded with the options' seed, on the model's device (the sampler draws
    its random numbers where P lies; a CPU generator cannot draw on CUDA)."""
    return torch.Generator(device=device).manual_seed(options.seed)


def read_stage(
    item: PhotoItem,
    ortho: Orthophoto,
    preset: Preset,
    options: JobOptions,
    stage: Callable[[str, float], None] = no_stage,
) -> ReadyPhoto:
    """Read a photo, its prior, its depth map and its search crops (no network runs here); PhotoError when
    the photo cannot be read or its prior lies outside the orthophoto."""
    t0 = time.perf_counter()
    stage("read", 0.0)
    photo = read_item(item, ortho, preset, options.hfov_deg)
    stage("depth", 0.05)
    depth_map, depth_name = _depth_for(options, photo.path, photo.rgb, photo.camera)
    config = photo_solver_config(options, depth_map, depth_name, photo.camera)
    radius = search_radius_m(options.search_radius_m, item.uncertainty_m)
    crops = read_search_crops(ortho, photo, radius, preset)
    return ReadyPhoto(item, photo, depth_map, depth_name, config, crops, t0)


def network_stage(
    localizer: Localizer,
    photos: Sequence[ReadyPhoto],
    aerial_batch: int = 1,
    stage: Callable[[str, float], None] = no_stage,
) -> list[MatchedPhoto]:
    """The backbone on the photos' ground images (one forward pass per input size) and on their search crops
    (``aerial_batch`` crops per pass), both batched only where the device batches photos
    (``Localizer.batches_photos``), and the matcher on every (photo, crop) pair. ``stage`` is told
    ``backbone`` once and ``match`` before each pass over crops (a cancel is heard there)."""
    stage("backbone", 0.1)
    inputs = [
        localizer.ground_input(p.photo.rgb, p.depth_map, p.photo.camera, dense=p.config.dense_grids)
        for p in photos
    ]
    views = localizer.ground_views(inputs)  # once for every crop
    grid_points = localizer.preset.aerial_grid**2
    out = [
        MatchedPhoto(
            v, _CropMatches(len(p.crops), grid_points, len(v.valid), localizer.device), dict(v.timings_s)
        )
        for p, v in zip(photos, views, strict=True)
    ]
    pairs = [(i, crop) for i, p in enumerate(photos) if views[i].desc_ground is not None for crop in p.crops]
    footprint = localizer.preset.aerial_footprint_m
    aerial_batch = aerial_batch if localizer.batches_photos else 1
    for start in range(0, len(pairs), aerial_batch):
        chunk = pairs[start : start + aerial_batch]
        first = chunk[0][0]
        stage("match", 0.4 + 0.4 * out[first].matches.count / len(photos[first].crops))
        t0 = time.perf_counter()
        feats = localizer.aerial_features([crop.image for _, crop in chunk], footprint)
        share = (time.perf_counter() - t0) / len(chunk)
        for (i, crop), feat in zip(chunk, feats.split(1), strict=True):
            timings = out[i].timings_s
            timings["backbone_aerial"] = timings.get("backbone_aerial", 0.0) + share
            out[i].matches.add(
                localizer.match_view(views[i], crop.image, footprint, crop.valid, timings, feat)
            )
    return out


def solve_stage(
    localizer: Localizer,
    ready: ReadyPhoto,
    matched: MatchedPhoto,
    options: JobOptions,
    generator: torch.Generator | None = None,
    stage: Callable[[str, float], None] = no_stage,
) -> PhotoResult:
    """One pose from the photo's matches on all its crops (:func:`joint_pose`), as a PhotoResult in the
    orthophoto's CRS, and its match figure when the options ask for figures."""
    stage("solve", 0.8)
    photo, item, view, crops = ready.photo, ready.item, matched.view, ready.crops
    spread_m = None
    if ready.config.likelihood_unit_scale:  # a panorama on flat ground: each token's footprint
        spread_m = _flat_ground_spread(view, photo.camera, options.camera_height_m, localizer.preset)
    loc, crop, support = joint_pose(
        localizer, view, crops, matched.matches.probs(), ready.config, generator, matched.timings_s, spread_m
    )
    result = photo_result_from_localization(
        str(photo.path),
        loc,
        crop,
        prior_lon=item.lon,
        prior_lat=item.lat,
        prior_heading_deg=item.heading_deg,
        depth=ready.depth_name,
        **options.result_labels(precision=localizer.precision),
        runtime_s=time.perf_counter() - ready.started_s,
        candidates=[(*c.center_xy_crs, float(n)) for c, n in zip(crops, support, strict=True)],
        confidence_min_ratios=localizer.preset.confidence_min_ratios_for(photo.camera.kind),
    )
    if options.figures_dir is not None:
        stage("figure", 0.95)
        kwargs = figure_kwargs_from_localization(loc, crop, photo.prior_xy_crs, item.heading_deg)
        figure = Path(options.figures_dir) / f"{photo.path.stem}.png"
        save_match_figure(figure, photo.rgb, crop.image, text=figure_text(result), **kwargs)
    return result


def failed_result(
    item: PhotoItem, exc: BaseException, crs_wkt: str, options: JobOptions, runtime_s: float
) -> PhotoResult:
    """The ``failed`` result of a photo that raised ``exc``: a Loc2Error's own message (it names the photo),
    else the photo, the exception's type and its text."""
    message = str(exc) if isinstance(exc, Loc2Error) else f"{Path(item.path)}: {type(exc).__name__}: {exc}"
    return PhotoResult.failed(
        str(item.path),
        message,
        prior_lon=item.lon,
        prior_lat=item.lat,
        prior_heading_deg=item.heading_deg,
        crs_wkt=crs_wkt,
        runtime_s=runtime_s,
        **options.result_labels(),
    )


def read_item(item: PhotoItem, ortho: Orthophoto, preset: Preset, hfov_deg: float | None) -> PhotoInput:
    """The photo's pixels and camera, its prior in the orthophoto's CRS and the crops' up heading (true
    north, or with the prior heading pointing right for models trained so); PhotoError when it has no
    prior position, or no heading prior where the model needs one."""
    path = Path(item.path)
    if not item.has_position:
        raise PhotoError(f"{path}: no GPS position in its EXIF and no prior given")
    photo = read_photo(path)
    rgb = load_rgb(path)
    camera = camera_for_photo(photo, hfov_deg)
    prior_xy_crs = ortho.lonlat_to_crs(item.lon, item.lat)
    check_resolution(ortho, prior_xy_crs, preset, path)
    up_heading = 0.0
    if preset.aerial_heading_aligned:
        if item.heading_deg is None:
            raise PhotoError(f"{path}: the {preset.name} model needs a heading prior (EXIF GPSImgDirection)")
        up_heading = (item.heading_deg - 90.0) % 360.0  # the prior heading points to the crop's right
    return PhotoInput(path, rgb, camera, prior_xy_crs, up_heading)


def check_resolution(
    ortho: Orthophoto, prior_xy_crs: tuple[float, float], preset: Preset, photo: Path
) -> None:
    """Compare the orthophoto's ground resolution at the prior (m/px, its coarser axis) with the model's crop
    resolution (footprint / crop pixels): PhotoError when it is more than ``RESOLUTION_ERROR_FACTOR`` times
    coarser, a logged warning when more than ``RESOLUTION_WARN_FACTOR`` times. A prior off the raster's
    CRS domain is left to the crops, which name it."""
    needed_m = preset.aerial_footprint_m / preset.aerial_size_px
    try:
        found_m = max(ortho.ground_resolution_m(prior_xy_crs))
    except Loc2Error:
        return
    if not math.isfinite(found_m) or found_m <= needed_m * RESOLUTION_WARN_FACTOR:
        return
    message = (
        f"the orthophoto {ortho.name} has {found_m:.2f} m per pixel at the prior; the {preset.name} model "
        f"needs {needed_m:.2f} m per pixel ({preset.aerial_footprint_m:g} m over {preset.aerial_size_px} "
        "pixels) or finer"
    )
    if found_m > needed_m * RESOLUTION_ERROR_FACTOR:
        raise PhotoError(f"{photo}: {message}; use a finer orthophoto (or a finer zoom level of the service)")
    _LOG.warning("%s: %s; the pose may be less precise", photo, message)


def photo_solver_config(
    options: JobOptions, depth_map: DepthMap, depth_name: str, camera: Camera
) -> SolverConfig:
    """The options' solver, kept to what applies to this photo (:meth:`SolverConfig.for_photo`); flat-ground
    depth counts as metric: it is in metres wherever the ground is seen (a known camera height)."""
    flat = depth_name == DEPTH_FLAT
    config = solver_config(options.solver).for_photo(
        depth_map.metric or flat, camera.kind == "panorama", flat
    )
    return config if options.use_ransac else config.replace(ransac=False)


def read_search_crops(
    ortho: Orthophoto, photo: PhotoInput, radius_m: float, preset: Preset
) -> list[AerialCrop]:
    """The search crops around the prior (:func:`search_offsets_m`), read from the orthophoto; those wholly
    outside it are skipped. PhotoError when every crop lies outside it, or when a web service fails."""
    crops: list[AerialCrop] = []
    outside: list[str] = []
    for d_east, d_north in search_offsets_m(radius_m, preset.aerial_footprint_m):
        centre = _offset_in_crs(ortho, photo.prior_xy_crs, d_east, d_north)
        try:
            crops.append(
                ortho.crop(
                    centre,
                    preset.aerial_footprint_m,
                    preset.aerial_size_px,
                    up_heading_deg=photo.up_heading_deg,
                )
            )
        except OrthoFetchError as exc:  # the service failed: this photo fails, with the service's status
            raise PhotoError(f"{photo.path}: {exc}") from exc
        except Loc2Error as exc:
            outside.append(str(exc))
    if not crops:
        raise PhotoError(f"{photo.path}: the prior lies outside the orthophoto ({outside[0]})")
    return crops


def search_offsets_m(radius_m: float, footprint_m: float) -> np.ndarray:
    """Crop centre offsets (east, north) in metres that cover a prior uncertainty of ``radius_m``.

    One crop holds the camera reliably within ``SEARCH_REACH_FRACTION`` of its footprint from its centre;
    larger radii get a square grid of overlapping crops at that spacing, limited to the disc.
    """
    reach = SEARCH_REACH_FRACTION * footprint_m
    if radius_m <= reach:
        return np.zeros((1, 2))
    step = reach * math.sqrt(2)  # squares of this side are covered by discs of radius `reach`
    n = int(math.ceil(radius_m / step))
    ticks = np.arange(-n, n + 1) * step
    grid = np.stack(np.meshgrid(ticks, ticks, indexing="xy"), axis=-1).reshape(-1, 2)
    grid = grid[np.hypot(grid[:, 0], grid[:, 1]) <= radius_m + reach]
    grid = grid[np.argsort(np.hypot(grid[:, 0], grid[:, 1]), kind="stable")]
    return grid[:MAX_SEARCH_CROPS]


def joint_pose(
    localizer: Localizer,
    view: GroundView,
    crops: list[AerialCrop],
    probs: list[torch.Tensor],
    config: SolverConfig,
    generator: torch.Generator | None = None,
    timings: dict | None = None,
    spread_m: torch.Tensor | None = None,
) -> tuple[LocalizationResult, AerialCrop, list[int]]:
    """One pose from the matches on every search crop, and the crop it is expressed in.

    The aerial points of all crops are put in the first crop's aerial frame (through the CRS) and one
    RANSAC runs over all the matching probabilities stacked: correct matches from overlapping crops agree,
    matches to look-alike places elsewhere do not (choosing the crop with most inliers instead picked
    look-alikes: docs/experiments.md). The result is moved to the frame of the crop whose centre is nearest
    the pose. Returns (result, that crop, inliers contributed by each crop). ``timings``: seconds per stage
    so far (default: the view's). ``spread_m``: see :meth:`Localizer.solve`.
    """
    frame = crops[0]
    footprint = frame.footprint_m
    timings = dict(view.timings_s if timings is None else timings)
    if view.desc_ground is None or not probs:
        return localizer.solve(view, None, footprint, config, timings=timings), frame, [0] * len(crops)
    grid = aerial_grid_xy(footprint, localizer.preset.aerial_grid)
    xy_aerial_m = np.concatenate([grid] + [frame.crs_to_aerial(c.aerial_to_crs(grid)) for c in crops[1:]])
    loc = localizer.solve(
        view,
        probs[0] if len(probs) == 1 else torch.cat(probs),
        footprint,
        config,
        xy_aerial_m=xy_aerial_m if len(crops) > 1 else None,  # one crop: its own grid, the paper's ratio
        generator=generator,
        spread_m=spread_m,
        timings=timings,
    )
    if not loc.ok:
        return loc, frame, [0] * len(crops)
    support = np.bincount(loc.inliers_aerial_index // len(grid), minlength=len(crops)).tolist()
    position_crs = frame.aerial_to_crs(loc.pose.t.reshape(1, 2))[0]
    nearest = min(crops, key=lambda c: math.dist(c.center_xy_crs, position_crs))
    return _reframe(loc, frame, nearest), nearest, support


def _reframe(loc: LocalizationResult, src: AerialCrop, dst: AerialCrop) -> LocalizationResult:
    """The same pose with its aerial-frame points moved from crop ``src``'s frame to crop ``dst``'s (both
    cut with the same up direction, so the rotation stays)."""
    if dst is src:
        return loc

    def move(xy: np.ndarray) -> np.ndarray:
        return dst.crs_to_aerial(src.aerial_to_crs(xy.reshape(-1, 2))) if len(xy) else xy

    return replace(
        loc,
        pose=Similarity2D(loc.pose.R, move(loc.pose.t)[0], loc.pose.s),
        inliers_xy_aerial_m=move(loc.inliers_xy_aerial_m),
        layout_xy_aerial_m=move(loc.layout_xy_aerial_m),
    )


def _depth_for(
    options: JobOptions, photo_path: Path, rgb: np.ndarray, camera: Camera
) -> tuple[DepthMap, str]:
    """The photo's depth map and the depth source's name (``flat``, or ``file:<name>``)."""
    if options.depth == DEPTH_FLAT:
        provider = FlatGroundDepth(camera_height_m=options.camera_height_m)
        return provider.depth_for(rgb, camera), DEPTH_FLAT
    depth_dir = Path(options.depth)
    if not depth_dir.is_dir():
        raise Loc2Error(f"{depth_dir}: depth source must be 'flat' or a folder of depth maps")
    provider = depth_file_for(depth_dir, photo_path)
    return provider.depth_for(rgb, camera), f"file:{provider.path.name}"


def _flat_ground_spread(
    view: GroundView, camera: Equirectangular, camera_height_m: float, preset: Preset
) -> torch.Tensor:
    """(G, 2) metres: the footprint of each of a panorama's tokens on flat ground (``flat_ground_spread_m``),
    the token size being the spacing of the grid's angles (``Equirectangular.token_angles``)."""
    theta, phi = camera.token_angles(*view.grid_rc, preset.published_grid)
    step_rad = (float(theta[1] - theta[0]), float(phi[1] - phi[0]))
    return torch.from_numpy(flat_ground_spread_m(view.xy_ground_m, camera_height_m, step_rad)).float()


class _CropMatches:
    """The matching probabilities of a photo's search crops, stacked into one preallocated P
    (crops·A, G), so that P is never held twice (the crops' pieces beside their concatenation)."""

    def __init__(self, max_crops: int, aerial_points: int, tokens: int, device: torch.device):
        self._P = torch.empty((max_crops * aerial_points, tokens), device=device)
        self._rows = 0
        self.count = 0  # crops added

    def add(self, P: torch.Tensor) -> None:
        """Append one crop's P (A, G)."""
        self._P[self._rows : self._rows + len(P)] = P
        self._rows += len(P)
        self.count += 1

    def probs(self) -> list[torch.Tensor]:
        """[P of the crops added] (a view), or [] when none was."""
        return [self._P[: self._rows]] if self._rows else []


def _offset_in_crs(ortho: Orthophoto, xy: tuple[float, float], d_east_m: float, d_north_m: float):
    """The point ``d_east_m``, ``d_north_m`` ground metres (true east/north) from ``xy``, in the ortho CRS."""
    if d_east_m == 0 and d_north_m == 0:
        return xy
    lon, lat = ortho.crs_to_lonlat(*xy)
    azimuth = math.degrees(math.atan2(d_east_m, d_north_m))
    lon2, lat2, _ = _GEOD.fwd(lon, lat, azimuth, math.hypot(d_east_m, d_north_m))
    return ortho.lonlat_to_crs(lon2, lat2)
