"""``loc2 eval``: the paper's evaluation on VIGOR or KITTI (``evaluation/``) with the published protocol."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import Loc2Error
from ..evaluation.datasets import DATASET_CAMERA, DATASET_SOLVER, DATASETS, open_dataset, parse_orientation
from ..evaluation.inference import evaluate
from ..localizer import Localizer
from ..model.depth_models import DepthAnythingV2
from ..model.weights import resolve_weights
from ..types import PRECISION_AUTO, PRECISIONS
from .progress import ProgressBar


def add_parser(subparsers) -> None:
    """Register ``loc2 eval``."""
    p = subparsers.add_parser(
        "eval",
        help="reproduce the paper's VIGOR / KITTI evaluation",
        description="Evaluate a Loc2 model on VIGOR or KITTI as the paper does (positives only).",
    )
    p.add_argument("dataset", choices=DATASETS)
    p.add_argument("--root", required=True, type=Path, help="dataset root folder")
    p.add_argument("--split", choices=("same", "cross"), default="same", help="same-area or cross-area")
    p.add_argument(
        "--orientation",
        default=None,
        help="known | unknown | degrees of orientation noise (KITTI: 10 or 180). Default: VIGOR unknown, KITTI 10",
    )
    p.add_argument("--backbone-weights", help="DINOv2 weights: a file or a registry name (loc2 models list)")
    p.add_argument("--matcher-weights", help="published Loc2 matcher weights: a file or a registry name")
    p.add_argument(
        "--checkpoint", help="a checkpoint made by this software (instead of the two weight files)"
    )
    p.add_argument(
        "--ransac",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="RANSAC (the published VIGOR protocol, the default for vigor) or --no-ransac: one weighted solve "
        "on 1,024 samples drawn from P (the published KITTI protocol, the default for kitti)",
    )
    p.add_argument(
        "--fp16",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="on CUDA, cast the whole backbone to fp16 as the release does (default: on for the published "
        "models, fp16 autocast for ours); only with the precision auto",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=PRECISION_AUTO,
        help="the backbone's arithmetic: auto (as published: fp16 on CUDA, float32 on the CPU), float32, or "
        "bfloat16 (CPUs with AMX, GPUs; not the published protocol)",
    )
    p.add_argument("--limit", type=int, help="evaluate only the first N samples")
    p.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument(
        "--batch-size", type=int, default=1, help="samples per batch (GPU: batched backbone and heads)"
    )
    p.add_argument("--device", default="auto", help="auto | cuda | cpu | mps")
    p.add_argument("--seed", type=int, default=0, help="seeds the VIGOR roll and RANSAC")
    p.add_argument("--depth-dir", help="depth folder name (default: the published one)")
    p.add_argument(
        "--depth-model", type=Path, help="compute depth on the fly with this Depth Anything V2 folder"
    )
    p.add_argument("--split-file", type=Path, help="KITTI: a split file instead of test1/test2_files.txt")
    p.add_argument("--json", type=Path, help="write metrics and per-sample results here")
    p.add_argument("--markdown", type=Path, help="write the Markdown table here")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_eval)


def load_localizer_for_eval(args) -> Localizer:
    """The model of ``--checkpoint`` or of the preset with ``--backbone-weights`` and ``--matcher-weights``."""
    if args.checkpoint:
        return Localizer.from_checkpoint(
            resolve_weights(args.checkpoint),
            device=args.device,
            fp16_backbone=args.fp16,
            precision=args.precision,
        )
    if not (args.backbone_weights and args.matcher_weights):
        raise Loc2Error("give --checkpoint, or both --backbone-weights and --matcher-weights")
    return Localizer.from_preset(
        args.dataset,
        backbone_weights=resolve_weights(args.backbone_weights),
        matcher_weights=resolve_weights(args.matcher_weights),
        device=args.device,
        fp16_backbone=args.fp16,
        precision=args.precision,
    )


def run_eval(args) -> int:
    localizer = load_localizer_for_eval(args)
    preset = localizer.preset
    if preset.camera != DATASET_CAMERA[args.dataset]:
        raise Loc2Error(
            f"the model expects {preset.camera} images but {args.dataset} has {DATASET_CAMERA[args.dataset]}"
        )
    depth_provider = None
    depth_dir = args.depth_dir
    if args.depth_model is not None:
        depth_provider = DepthAnythingV2(args.depth_model, device=args.device)
    kwargs: dict = {
        "ground_size_hw": tuple(preset.ground_size_hw),
        "aerial_size_px": preset.aerial_size_px,
        "resize_filter": preset.resize_filter,
        "limit": args.limit,
    }
    if depth_dir is not None or args.depth_model is not None:
        kwargs["depth_dir"] = depth_dir
    if args.dataset == "vigor":
        kwargs["seed"] = args.seed
    elif args.split_file is not None:
        kwargs["split_file"] = args.split_file
    orientation = parse_orientation(args.orientation, args.dataset)
    dataset = open_dataset(args.dataset, args.root, args.split, orientation, **kwargs)
    config = DATASET_SOLVER[args.dataset]
    if args.ransac is not None:
        config = config.replace(ransac=args.ransac)
    bar = ProgressBar(len(dataset), f"eval {args.dataset}", enabled=not args.quiet)
    report = evaluate(
        localizer,
        dataset,
        dataset_name=args.dataset,
        config=config,
        batch_size=args.batch_size,
        workers=args.workers,
        seed=args.seed,
        depth_provider=depth_provider,
        on_batch=bar.update,
    )
    bar.close()
    report.config.update(
        {
            "root": str(args.root),
            "device": str(localizer.device),
            "fp16_backbone": localizer.fp16_backbone,
            "precision": localizer.precision,
            "resize_filter": preset.resize_filter,
            "checkpoint": args.checkpoint,
            "backbone_weights": args.backbone_weights,
            "matcher_weights": args.matcher_weights,
            "limit": args.limit,
        }
    )
    if args.json:
        report.write_json(args.json)
    if args.markdown:
        report.write_markdown(args.markdown)
    print(report.to_markdown())
    return 0
