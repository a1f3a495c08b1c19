"""``loc2 train``: train a Loc2 model from poses only on synthetic cities (``training/``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..model.checkpoints import read_checkpoint
from ..training.trainer import TrainConfig, train


def _seed_range(text: str) -> tuple[int, ...]:
    if "-" in text:
        a, b = text.split("-", 1)
        return tuple(range(int(a), int(b) + 1))
    return tuple(int(s) for s in text.split(","))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a Loc2 model from poses only (synthetic cities)",
        description="Weakly supervised training (VCE + InfoNCE, method §7) on synthetic cities rendered on the "
        "fly. Writes the checkpoint, a JSON sidecar and a loss-curve PNG; --resume continues a run.",
    )
    p.add_argument("--out", type=Path, required=True, help="checkpoint file to write")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seeds", default="1-8", help="synthetic city seeds, e.g. 1-8 or 1,2,5")
    p.add_argument("--camera", choices=["panorama", "pinhole", "mixed"], default="panorama")
    p.add_argument(
        "--max-offset", type=float, default=15.0, help="camera offset from the crop centre, metres"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from --out and its .state file")
    p.add_argument("--init", type=Path, help="start from this checkpoint's weights")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--per-city", type=int, default=200, help="training views rendered per city")
    p.add_argument("--cache", type=Path, help="keep the rendered views in this .npz (reused when it matches)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    cfg = TrainConfig(
        out=args.out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        seeds=_seed_range(args.seeds),
        camera=args.camera,
        max_offset_m=args.max_offset,
        seed=args.seed,
        resume=args.resume,
        init=args.init,
        threads=args.threads,
        per_city=args.per_city,
        cache=args.cache,
    )
    command = "loc2 " + " ".join(sys.argv[1:]) if sys.argv else ""
    path = train(cfg, command)
    preset, _, _ = read_checkpoint(path)
    print(f"wrote {path} ({preset.name}); loss curve {path.with_suffix('.loss.png')}", file=sys.stderr)
    return 0
