"""``loc2 localize --engine ray``: the command line's options for a job on Ray, and the run itself."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import Loc2Error
from ..scale.plan import DEFAULT_BATCH_SIZE, DEFAULT_TILE_M, PARQUET_SUFFIXES

ENGINES = ("local", "ray")


def add_ray_arguments(p: argparse.ArgumentParser) -> None:
    """``--engine`` and the options of the Ray engine."""
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: this process (default); ray: a pool of Ray actors, results as GeoParquet parts "
        "(pip install 'loc2[ray]')",
    )
    g = p.add_argument_group("Ray engine (--engine ray)")
    g.add_argument("--address", help="Ray cluster to join (auto, ray://HOST:10001); default: start one here")
    g.add_argument("--workers", type=int, help="actors, each holding the model (default: one per GPU/CPU)")
    g.add_argument(
        "--gpus-per-worker", type=float, default=0.0, metavar="N", help="GPUs per actor (0.5: two per GPU)"
    )
    g.add_argument(
        "--part-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"photos per Ray batch: one task, one retry unit, one GeoParquet part ({DEFAULT_BATCH_SIZE})",
    )
    g.add_argument(
        "--tile-size",
        type=float,
        default=DEFAULT_TILE_M,
        metavar="M",
        help=f"orthophoto tile side that groups photos into batches, metres ({DEFAULT_TILE_M:g})",
    )
    g.add_argument(
        "--parts",
        type=Path,
        metavar="DIR",
        help="folder of GeoParquet result parts (default: --out itself when it is a folder or .parquet, "
        "else <out>.parts next to it, merged into --out at the end)",
    )


def parts_and_merge_target(out: Path, parts: Path | None) -> tuple[Path, Path | None]:
    """(parts folder, file to merge into or None): ``--out`` a folder or ``.parquet`` name is the parts
    folder itself (merge later with ``loc2 merge``); any other ``--out`` is merged into at the end."""
    parts_only = out.suffix.lower() in PARQUET_SUFFIXES or out.suffix == "" or out.is_dir()
    if parts is not None:
        return parts, None if parts_only and out == parts else out
    if parts_only:
        return out, None
    return out.with_name(out.stem + ".parts"), out


def run_ray(args, request) -> int:
    """Run ``request`` on Ray as the command line asks; prints progress and failures on stderr."""
    from ..output.export import ResultWriter
    from ..scale.parts import check_parts_dir, merge_parts
    from ..scale.ray_engine import RayConfig, import_ray, progress_printer, run_localize_ray
    from ..types import MODE_APPEND, MODE_OVERWRITE

    import_ray()
    parts_dir, merge_into = parts_and_merge_target(Path(request.output.path), args.parts)
    mode = request.output.mode
    check_parts_dir(parts_dir, mode)
    if merge_into is not None and mode != MODE_APPEND:  # refuse an existing output before any work
        from ..inputs.ortho import Orthophoto

        with Orthophoto.open(request.ortho) as ortho:
            ResultWriter(merge_into, request.output.format, crs=ortho.crs.to_wkt(), mode=mode)
    config = RayConfig(
        parts_dir=parts_dir,
        address=args.address,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        batch_size=args.part_size,
        tile_m=args.tile_size,
    )
    progress, skipped = run_localize_ray(request, config, on_progress=progress_printer())
    if skipped:
        print(f"resumed: {skipped} photos were already in {parts_dir}", file=sys.stderr)
    for failure in progress.failures:
        print(f"failed: {failure}", file=sys.stderr)
    print(f"{progress.text()}; in {progress.seconds:.1f} s; parts in {parts_dir}", file=sys.stderr)
    if merge_into is not None:
        writer, n = merge_parts(
            parts_dir,
            merge_into,
            request.output.format,
            include_matches=request.options.include_matches,
            mode=MODE_OVERWRITE,
        )
        print(f"merged {n} photos into {writer.path}", file=sys.stderr)
    if progress.total > 0 and progress.failed == progress.total:
        raise Loc2Error(
            f"no photo could be localized (see the messages above); {parts_dir} holds the failures"
        )
    return 0
