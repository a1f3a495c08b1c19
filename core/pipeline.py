"""Localize geotagged photos on an orthophoto: priors → crops and depth → Localizer → PhotoResults.

The command line (``loc2 localize``), the QGIS dialog and the Processing algorithm all call
:func:`localize_batch`. A photo that fails becomes a :class:`PhotoResult` with status ``failed`` and a
message; the batch goes on. Each result is handed to ``on_result`` as soon as it is computed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pyproj
import torch

from .depth import DepthMap, FlatGroundDepth, depth_file_for
from .errors import Loc2Error, ModelNotFoundError, PhotoError
from .figures import figure_kwargs_from_localization, figure_text, save_match_figure
from .geometry import Camera, Equirectangular, aerial_grid_xy, flat_ground_spread_m
from .localizer import GroundView, LocalizationResult, Localizer
from .ortho import AerialCrop, Orthophoto
from .photos import camera_for_photo, load_rgb, read_photo
from .presets import PRESETS
from .ransac import solver_settings
from .results import PhotoResult, photo_result_from_localization
from .types import DEFAULT_SEARCH_RADIUS_M, MODEL_DEMO, MODELS, JobOptions, PhotoItem

# One crop is trusted to hold the camera within this fraction of its footprint from its centre.
SEARCH_REACH_FRACTION = 0.25
MAX_SEARCH_CROPS = 49


class Cancelled(Exception):  # noqa: N818 - not an error: the user asked for it
    """The job was cancelled during a photo (at the start of the stage named by the message)."""


# The stages of one photo, in order, as ``localize_item`` reports them (``on_stage``).
STAGES = ("read", "depth", "backbone", "match", "solve", "figure")
_GEOD = pyproj.Geod(ellps="WGS84")


def _file_stamp(path: str) -> tuple:
    p = Path(path)
    try:
        stat = p.stat()
    except OSError:
        return (str(p), None)
    return (str(p.resolve()), stat.st_mtime_ns, stat.st_size)


def model_key(options: JobOptions) -> tuple:
    """What identifies the model ``options`` ask for (files by path, size and modification time): two jobs
    with the same key can share one loaded Localizer."""
    weights = tuple(_file_stamp(w) for w in options.weights) if options.weights else None
    model = options.model if options.model in MODELS else _file_stamp(options.model)
    return (model, weights, options.device)


def load_localizer(options: JobOptions) -> Localizer:
    """The Localizer the options ask for; ModelNotFoundError says which weights are missing and where."""
    if options.model == MODEL_DEMO:
        return Localizer.demo(options.device)
    if options.model in PRESETS:
        if not options.weights:
            raise ModelNotFoundError(
                f"the {options.model} preset needs the published weights: pass the DINOv2 ViT-L/14 backbone "
                "(dinov2_vitl14_pretrain.pth) and the Loc2 matcher checkpoint (loc2 localize --weights "
                "BACKBONE MATCHER; `loc2 models list` shows where they come from)"
            )
        from .models import resolve_weights

        backbone, matcher = (resolve_weights(w) for w in options.weights)  # files or `loc2 models` names
        return Localizer.from_preset(options.model, backbone, matcher, device=options.device)
    return Localizer.from_checkpoint(options.model, device=options.device)


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


def _depth_for(
    options: JobOptions, photo_path: Path, rgb: np.ndarray, camera: Camera
) -> tuple[DepthMap, str]:
    if options.depth == "flat":
        provider = FlatGroundDepth(camera_height_m=options.camera_height_m)
        return provider.depth_for(rgb, camera), "flat"
    depth_dir = Path(options.depth)
    if not depth_dir.is_dir():
        raise Loc2Error(f"{depth_dir}: depth source must be 'flat' or a folder of depth maps")
    provider = depth_file_for(depth_dir, photo_path)
    return provider.depth_for(rgb, camera), f"file:{provider.path.name}"


def _flat_ground_spread(
    view: GroundView, camera: Equirectangular, camera_height_m: float, published_grid: bool
) -> torch.Tensor:
    """(G, 2) metres: the footprint of each of a panorama's tokens on flat ground (``flat_ground_spread_m``),
    the token size being the spacing of the grid's angles (``Equirectangular.token_angles``)."""
    theta, phi = camera.token_angles(*view.grid_rc, published_grid)
    step_rad = (float(theta[1] - theta[0]), float(phi[1] - phi[0]))
    return torch.from_numpy(flat_ground_spread_m(view.ground_xy_m, camera_height_m, step_rad)).float()


def joint_pose(
    localizer: Localizer,
    view: GroundView,
    crops: list[AerialCrop],
    probs: list[torch.Tensor],
    generator: torch.Generator | None = None,
    use_ransac: bool = True,
    timings: dict | None = None,
    solver_kwargs: dict | None = None,
) -> tuple[LocalizationResult, AerialCrop, list[int]]:
    """One pose from the matches on every search crop, and the crop it is expressed in.

    The aerial points of all crops are put in the first crop's aerial frame (through the CRS) and one
    RANSAC runs over all the matching probabilities stacked: correct matches from overlapping crops agree,
    matches to look-alike places elsewhere do not (choosing the crop with most inliers instead picked
    look-alikes: README, "Measured figures"). The result is moved to the frame of the crop whose centre is
    nearest the pose. Returns (result, that crop, inliers contributed by each crop). ``timings``: seconds
    per stage so far (default: the view's). ``solver_kwargs``: see :meth:`Localizer.solve`.
    """
    frame = crops[0]
    footprint = frame.footprint_m
    timings = dict(view.timings_s if timings is None else timings)
    solve_args = (view.ground_xy_m, view.valid, footprint, view.grid_rc, view.input_hw, view.image_hw)
    if view.desc_ground is None or not probs:
        return localizer.solve(None, *solve_args, timings=timings), frame, [0] * len(crops)
    grid = aerial_grid_xy(footprint, localizer.preset.aerial_grid)
    aerial_xy = np.concatenate([grid] + [frame.crs_to_aerial(c.aerial_to_crs(grid)) for c in crops[1:]])
    loc = localizer.solve(
        probs[0] if len(probs) == 1 else torch.cat(probs),
        *solve_args,
        generator,
        use_ransac,
        timings,
        aerial_xy_m=aerial_xy if len(crops) > 1 else None,  # one crop: its own grid, the paper's ratio
        solver_kwargs=solver_kwargs,
        shifts=view.shifts,
    )
    if not loc.ok:
        return loc, frame, [0] * len(crops)
    support = np.bincount(loc.inliers_aerial_index // len(grid), minlength=len(crops)).tolist()
    position_crs = frame.aerial_to_crs(loc.position_xy_m.reshape(1, 2))[0]
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
        position_xy_m=move(loc.position_xy_m)[0],
        inliers_aerial_xy_m=move(loc.inliers_aerial_xy_m),
        layout_aerial_xy_m=move(loc.layout_aerial_xy_m),
    )


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

    ``is_canceled()`` is checked as each stage starts (and between search crops): a cancelled photo raises
    :class:`Cancelled` and gives no result. ``on_stage(stage, fraction)`` is told each stage as it starts
    (``STAGES``) with the share of the photo's work done before it.
    """
    t0 = time.perf_counter()

    def stage(name: str, fraction: float) -> None:
        if is_canceled is not None and is_canceled():
            raise Cancelled(name)
        if on_stage is not None:
            on_stage(name, fraction)

    stage("read", 0.0)
    path = Path(item.path)
    if not item.has_position:
        raise PhotoError(f"{path}: no GPS position in its EXIF and no prior given")
    photo = read_photo(path)
    rgb = load_rgb(path)
    camera = camera_for_photo(photo, options.hfov_deg)
    preset = localizer.preset
    prior_xy = ortho.lonlat_to_crs(item.lon, item.lat)
    up_heading = 0.0
    if preset.aerial_heading_aligned:
        if item.heading_deg is None:
            raise PhotoError(f"{path}: the {preset.name} model needs a heading prior (EXIF GPSImgDirection)")
        up_heading = (item.heading_deg - 90.0) % 360.0  # the prior heading points to the crop's right
    stage("depth", 0.05)
    depth_map, depth_name = _depth_for(options, path, rgb, camera)

    radius = options.search_radius_m or item.uncertainty_m or DEFAULT_SEARCH_RADIUS_M
    footprint = preset.aerial_footprint_m
    # once for every crop; the precise solver also runs a panorama's half-token-shifted grids
    stage("backbone", 0.1)
    view = localizer.prepare_ground(rgb, depth_map, camera, dense=options.solver != "published")
    timings = dict(view.timings_s)  # the crops' stages add up here
    crops: list[AerialCrop] = []
    outside: list[str] = []
    offsets = search_offsets_m(radius, footprint)
    # one P for all crops (the job's largest array: crops × 4 grids), each crop's matches written into it
    matches = _CropMatches(len(offsets), preset.aerial_grid**2, len(view.valid), localizer.device)
    for i, (d_east, d_north) in enumerate(offsets):
        stage("match", 0.4 + 0.4 * i / len(offsets))
        centre = _offset_in_crs(ortho, prior_xy, d_east, d_north)
        try:
            crop = ortho.crop(centre, footprint, preset.aerial_size_px, up_heading_deg=up_heading)
        except Loc2Error as exc:
            outside.append(str(exc))
            continue
        crops.append(crop)
        if view.desc_ground is not None:
            matches.add(localizer.match_view(view, crop.image, footprint, crop.valid, timings))
    if not crops:
        raise PhotoError(f"{path}: the prior lies outside the orthophoto ({outside[0]})")

    # flat-ground depth is in metres wherever the ground is seen (a known camera height): gate it too
    stage("solve", 0.8)
    flat = depth_name == "flat"
    solver_kwargs = solver_settings(
        options.solver, depth_map.metric or flat, panorama=camera.kind == "panorama", flat_ground=flat
    )
    if solver_kwargs.get("likelihood_unit_scale"):  # a panorama on flat ground: each token's footprint
        spread_m = _flat_ground_spread(view, camera, options.camera_height_m, preset.published_grid)
        solver_kwargs = {**solver_kwargs, "spread_m": spread_m}
    loc, crop, support = joint_pose(
        localizer, view, crops, matches.probs(), generator, options.use_ransac, timings, solver_kwargs
    )
    scores = [(*c.center_xy_crs, float(n)) for c, n in zip(crops, support, strict=True)]
    result = photo_result_from_localization(
        str(path),
        loc,
        crop,
        prior_lon=item.lon,
        prior_lat=item.lat,
        prior_heading_deg=item.heading_deg,
        model=options.model_name,
        depth=depth_name,
        runtime_s=time.perf_counter() - t0,
        candidates=scores,
        confidence_min_ratios=preset.confidence_min_ratios_for(camera.kind),
    )
    if options.figures_dir is not None:
        stage("figure", 0.95)
        kwargs = figure_kwargs_from_localization(loc, crop, prior_xy, item.heading_deg)
        save_match_figure(
            Path(options.figures_dir) / f"{path.stem}.png",
            rgb,
            crop.image,
            text=figure_text(result),
            **kwargs,
        )
    return result


class _CropMatches:
    """The matching probabilities of a photo's search crops, stacked into one preallocated P
    (crops·A, G), so that P is never held twice (the crops' pieces beside their concatenation)."""

    def __init__(self, max_crops: int, aerial_points: int, tokens: int, device: torch.device):
        self._P = torch.empty((max_crops * aerial_points, tokens), device=device)
        self._rows = 0

    def add(self, P: torch.Tensor) -> None:
        """Append one crop's P (A, G)."""
        self._P[self._rows : self._rows + len(P)] = P
        self._rows += len(P)

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


def localize_batch(
    items: Iterable[PhotoItem],
    ortho_path: str | Path,
    options: JobOptions,
    *,
    on_result: Callable[[PhotoResult], None] | None = None,
    progress: Callable[[int, int, PhotoResult], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
    localizer: Localizer | None = None,
    on_stage: Callable[[int, str, float], None] | None = None,
) -> list[PhotoResult]:
    """Localize every item; a photo that fails yields a ``failed`` result and the batch goes on.

    ``on_result(result)`` is called as soon as each photo is done (write it there, so nothing is lost);
    ``progress(done, total, result)`` after each; ``on_stage(index, stage, fraction)`` as each photo's
    stages start (:func:`localize_item`); ``is_canceled()`` is checked before each photo and between its
    stages. Raises Loc2Error only when nothing can be done (unusable orthophoto, missing weights).
    """
    items = list(items)
    localizer = localizer or load_localizer(options)
    results: list[PhotoResult] = []
    with Orthophoto.open(ortho_path) as ortho:
        crs_wkt = ortho.crs.to_wkt()
        for i, item in enumerate(items):
            if is_canceled is not None and is_canceled():
                break
            generator = torch.Generator().manual_seed(options.seed)
            t0 = time.perf_counter()
            try:
                stage = None if on_stage is None else partial(on_stage, i)
                result = localize_item(item, ortho, localizer, options, generator, is_canceled, stage)
            except Cancelled:
                break
            except Exception as exc:  # noqa: BLE001 - a photo's failure must never stop the batch
                message = (
                    str(exc)
                    if isinstance(exc, Loc2Error)
                    else f"{Path(item.path)}: {type(exc).__name__}: {exc}"
                )
                result = PhotoResult.failed(
                    str(item.path),
                    message,
                    prior_lon=item.lon,
                    prior_lat=item.lat,
                    prior_heading_deg=item.heading_deg,
                    crs_wkt=crs_wkt,
                    model=options.model_name,
                    runtime_s=time.perf_counter() - t0,
                )
            results.append(result)
            if on_result is not None:
                on_result(result)
            if progress is not None:
                progress(i + 1, len(items), result)
    return results
