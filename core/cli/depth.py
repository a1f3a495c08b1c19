"""``loc2 depth``: depth maps in the published formats from a monocular depth model (``model/depth_models.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DatasetError, DepthError, ImageError
from ..geometry.cameras import Camera, Equirectangular, Pinhole
from ..inputs.depth import DEPTH_WRITE_FORMATS, write_depth
from ..inputs.photos import is_panorama_aspect
from ..inputs.priors import expand_image_paths


def camera_for(image: np.ndarray, kind: str = "auto", hfov_deg: float = 90.0) -> Camera:
    """``panorama`` / ``pinhole`` / ``auto`` (a 2:1 image is a panorama, as ``loc2 localize`` takes it)
    camera for an image."""
    h, w = image.shape[:2]
    if kind == "panorama" or (kind == "auto" and is_panorama_aspect(w, h)):
        return Equirectangular(w, h)
    return Pinhole.from_fov(w, h, hfov_deg)


def _images(items: list[str | Path]) -> list[Path]:
    """Files as given, and the images inside given folders (``inputs/priors.py``'s rule); ImageError for a
    path that does not exist."""
    missing = [p for p in map(Path, items) if not p.exists()]
    if missing:
        raise ImageError(f"{missing[0]}: no such image or folder")
    return expand_image_paths(items)


def add_parser(subparsers) -> None:
    """Register ``loc2 depth``."""
    p = subparsers.add_parser(
        "depth",
        help="precompute depth maps with a monocular depth model",
        description="Depth maps in the published formats (VIGOR: png_mm radial; KITTI: png_256 z-depth).",
    )
    p.add_argument(
        "--model-dir",
        required=True,
        help="Depth Anything V2 folder or registry name (or UniK3D with --unik3d)",
    )
    p.add_argument("--images", nargs="+", required=True, help="image files or folders")
    p.add_argument("--out", required=True, type=Path, help="output folder (one <stem>.png/.npy per image)")
    p.add_argument(
        "--format", choices=DEPTH_WRITE_FORMATS, help="default: png_mm for panoramas, png_256 otherwise"
    )
    p.add_argument("--camera", choices=("auto", "panorama", "pinhole"), default="auto")
    p.add_argument("--hfov", type=float, default=90.0, help="pinhole horizontal field of view, degrees")
    p.add_argument(
        "--unik3d", action="store_true", help="use UniK3D (must be installed) instead of Depth Anything"
    )
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run_depth)


def run_depth(args) -> int:
    from ..evaluation.datasets import read_rgb
    from ..model.depth_models import DepthAnythingV2, UniK3DDepth

    images = _images(args.images)
    provider = (
        UniK3DDepth(args.model_dir, args.device)
        if args.unik3d
        else DepthAnythingV2(args.model_dir, args.device)
    )
    metric = getattr(provider, "metric", True)
    if not metric and args.format != "npy":
        raise DepthError("a relative depth model gives depth only up to scale: use --format npy")
    for i, path in enumerate(images, 1):
        try:
            rgb = read_rgb(path)
        except DatasetError as exc:
            raise ImageError(str(exc)) from exc
        camera = camera_for(rgb, args.camera, args.hfov)
        fmt = args.format or ("png_mm" if isinstance(camera, Equirectangular) else "png_256")
        depth = provider.depth_for(rgb, camera)
        out = write_depth(args.out / f"{path.stem}{'.npy' if fmt == 'npy' else '.png'}", depth.depth_m, fmt)
        print(f"[{i}/{len(images)}] {path} -> {out}")
    return 0
