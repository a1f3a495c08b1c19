"""``loc2 merge``: the GeoParquet result parts of a Ray job into one GeoPackage/Shapefile/... output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..types import FORMATS, MODE_OVERWRITE, MODE_REFUSE


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "merge",
        help="merge the result parts of a Ray job (loc2 localize --engine ray) into one output",
        description="Read every part-*.parquet of a parts folder (each photo once) and write the usual "
        "result layers (poses, priors, inliers, outlines, shifts) into one output file.",
    )
    p.add_argument("parts", type=Path, help="folder of GeoParquet result parts")
    p.add_argument("--out", type=Path, required=True, help="output file (.gpkg, .shp, .geojson, .csv)")
    p.add_argument("--format", choices=FORMATS, help="output format (default: from --out)")
    p.add_argument("--matches", action="store_true", help="also write the match lines layer")
    p.add_argument("--overwrite", action="store_true", help="replace an output that already holds results")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..scale.parts import merge_parts

    writer, n = merge_parts(
        args.parts,
        args.out,
        args.format,
        include_matches=args.matches,
        mode=MODE_OVERWRITE if args.overwrite else MODE_REFUSE,
    )
    print(f"merged {n} photos from {args.parts} into {writer.path}", file=sys.stderr)
    return 0
