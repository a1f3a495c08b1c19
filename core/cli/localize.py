"""``loc2 localize``: localize geotagged photos on an orthophoto and write GIS layers as it goes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import Loc2Error
from ..output.results import PhotoResult, candidate_summary
from ..pipeline.job import Progress, run_localize
from ..solver.config import DEFAULT_SOLVER, SOLVER_HELP, SOLVERS
from ..types import (
    DEFAULT_GPU_BATCH,
    DEVICES,
    FORMATS,
    MODE_APPEND,
    MODE_OVERWRITE,
    MODE_REFUSE,
    MODEL_DEMO,
    MODELS,
    PRECISION_AUTO,
    PRECISIONS,
    JobOptions,
    LocalizeRequest,
    OutputSpec,
    PhotoSource,
)
from .progress import ProgressBar
from .ray_localize import add_ray_arguments, run_ray


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "localize",
        help="localize geotagged street-level photos on an orthophoto",
        description="Estimate each photo's true position and heading on the orthophoto and write them as "
        "GIS layers (poses, priors, inliers, outlines, shifts), one photo at a time.",
    )
    p.add_argument(
        "--ortho",
        required=True,
        help="orthophoto with a CRS: a raster file (GeoTIFF, VRT, ...), any GDAL dataset name, a COG URL "
        "(http(s)://...tif), a WMTS capabilities URL or WMTS:..., a WMS URL (SERVICE=WMS) or WMS:..., or an "
        "XYZ tile template (https://.../{z}/{x}/{y}.png); only the tiles around each photo are fetched",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", nargs="+", type=Path, help="photo files or folders (priors from EXIF GPS)")
    src.add_argument(
        "--priors",
        type=Path,
        help="CSV (photo,lon,lat[,heading][,crs]) or point layer file with a 'photo' field",
    )
    p.add_argument(
        "--model",
        default=MODEL_DEMO,
        help=f"{', '.join(MODELS)} or a Loc2 checkpoint file (default: {MODEL_DEMO})",
    )
    p.add_argument(
        "--weights",
        nargs=2,
        metavar=("BACKBONE", "MATCHER"),
        help="published weights for vigor/kitti: files or `loc2 models` names",
    )
    p.add_argument(
        "--depth", default="flat", help="'flat' (no weights) or a folder of depth maps named like the photos"
    )
    p.add_argument(
        "--search-radius",
        type=float,
        metavar="M",
        help="prior uncertainty in metres (default: EXIF, else 10)",
    )
    p.add_argument(
        "--out", type=Path, default=Path("results.gpkg"), help="output file (default: results.gpkg)"
    )
    p.add_argument("--format", choices=FORMATS, help="output format (default: from --out)")
    p.add_argument("--figures", type=Path, metavar="DIR", help="write one match figure PNG per photo here")
    p.add_argument("--device", default="auto", choices=DEVICES)
    p.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help=f"photos per backbone pass, read and solved on threads beside it (default: {DEFAULT_GPU_BATCH} on "
        "a GPU, 1 on the CPU; the CPU's poses do not depend on it)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=PRECISION_AUTO,
        help="the backbone's arithmetic: auto (float32 on the CPU, float16 on a GPU), float32, or bfloat16 "
        "(about 3x faster on CPUs with AMX; the poses then depend on the machine and the thread count)",
    )
    p.add_argument(
        "--hfov", type=float, metavar="DEG", help="horizontal field of view for photos without focal length"
    )
    p.add_argument(
        "--camera-height", type=float, default=1.6, metavar="M", help="for flat-ground depth (default 1.6)"
    )
    p.add_argument("--matches", action="store_true", help="also write the match lines layer")
    p.add_argument("--no-ransac", action="store_true", help="one weighted solve instead of RANSAC")
    p.add_argument(
        "--solver",
        choices=SOLVERS,
        default=DEFAULT_SOLVER,
        help=SOLVER_HELP,
    )
    p.add_argument("--seed", type=int, default=0, help="RANSAC seed")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume", action="store_true", help="keep the output's results and skip photos already in it"
    )
    mode.add_argument("--overwrite", action="store_true", help="replace an output that already holds results")
    add_ray_arguments(p)
    p.set_defaults(func=run)


def _print_result(res: PhotoResult) -> None:
    name = Path(res.photo).name
    if res.ok:
        print(
            f"{name}: x={res.x:.2f} y={res.y:.2f} heading={res.heading_deg:.1f}° shift={res.shift_m:.2f} m "
            f"inliers={res.num_inliers} ({100 * res.inlier_ratio:.0f} %, {res.confidence})"
            + (
                f"; search crops (x y inliers): {candidate_summary(res.candidates)}"
                if len(res.candidates) > 1
                else ""
            )
        )
    else:
        print(f"{name}: {res.status}: {res.message}")


def request_from_args(args) -> LocalizeRequest:
    """The job the command line asks for (OptionsError names a bad value)."""
    if args.images:
        photos = PhotoSource(images=[str(p) for p in args.images])
    else:
        photos = PhotoSource(priors_file=str(args.priors))
    options = JobOptions(
        model=str(args.model),
        weights=tuple(str(w) for w in args.weights) if args.weights else None,
        depth=str(args.depth),
        search_radius_m=args.search_radius,
        device=args.device,
        figures_dir=args.figures,
        hfov_deg=args.hfov,
        camera_height_m=args.camera_height,
        use_ransac=not args.no_ransac,
        solver=args.solver,
        seed=args.seed,
        include_matches=args.matches,
        batch_size=args.batch_size,
        precision=args.precision,
    )
    mode = MODE_APPEND if args.resume else MODE_OVERWRITE if args.overwrite else MODE_REFUSE
    output = OutputSpec(str(args.out), args.format, mode)
    return LocalizeRequest(ortho=str(args.ortho), photos=photos, output=output, options=options)


def run(args) -> int:
    request = request_from_args(args)
    if getattr(args, "engine", "local") == "ray":
        return run_ray(args, request)
    bar: ProgressBar | None = None

    def on_progress(progress: Progress) -> None:
        nonlocal bar
        if bar is None and progress.stage == "model":
            bar = ProgressBar(progress.total, log_every_s=0.0)  # a line per photo in a log

    def on_result(res: PhotoResult) -> None:
        _print_result(res)
        if bar is not None:
            bar.update(1, Path(res.photo).name)

    summary = run_localize(request, on_result=on_result, on_progress=on_progress)
    if summary.skipped:
        print(f"resumed: {summary.skipped} photos were already in {summary.output}", file=sys.stderr)
    print(summary.text(), file=sys.stderr)
    if summary.localized == 0 and summary.total > 0:
        raise Loc2Error(
            f"no photo could be localized (see the messages above); {summary.output} holds the failures"
        )
    return 0
