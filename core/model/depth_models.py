"""Monocular depth models as depth providers (``loc2 depth`` precomputes maps with them).

* :class:`DepthAnythingV2`: a local Hugging Face model folder through ``transformers``
  (``AutoModelForDepthEstimation`` + ``AutoImageProcessor``). Metric variants give metres (z-depth); relative
  variants give *disparity* (inverse depth, known only up to scale and shift), converted here to depth up to
  scale (see :func:`disparity_to_relative_depth`) and declared ``metric=False`` so the scale-aware
  alignment recovers the scale (method §6).
* Panoramas: six 90° cube faces are rendered from the equirectangular image (``cv2.remap``), the model runs
  on each face, the faces' z-depth becomes radial distance (z / cos of the angle off the face axis) and is
  stitched back onto the equirectangular grid (:class:`CubeMap`).
* :class:`UniK3DDepth`: UniK3D (the model behind the published VIGOR depth) where the ``unik3d`` package is
  installed; panoramas go in whole with a spherical camera.

3-D frame of the cube map: the ground BEV frame plus height — x backwards (the camera looks along −x),
y to the camera's right, z up; a panorama pixel at polar angle θ (from the zenith) and azimuth φ looks along
(sin θ cos φ, −sin θ sin φ, cos θ), as :func:`loc2.core.geometry.lifting.lift_tokens` lifts it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DepthError, ImageError, ModelNotFoundError
from ..geometry.cameras import Camera, Equirectangular, Pinhole
from ..inputs.depth import DepthMap

# name → (axis, image right, image down): right × down = axis for every face.
CUBE_FACES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "front": ((-1, 0, 0), (0, 1, 0), (0, 0, -1)),
    "right": ((0, 1, 0), (1, 0, 0), (0, 0, -1)),
    "back": ((1, 0, 0), (0, -1, 0), (0, 0, -1)),
    "left": ((0, -1, 0), (-1, 0, 0), (0, 0, -1)),
    "up": ((0, 0, 1), (0, 1, 0), (-1, 0, 0)),
    "down": ((0, 0, -1), (0, 1, 0), (1, 0, 0)),
}


def panorama_directions(height: int, width: int) -> np.ndarray:
    """Unit ray (H, W, 3) of every equirectangular pixel centre (θ = π(v+½)/H, φ = 2π(u+½)/W)."""
    theta = math.pi * (np.arange(height) + 0.5) / height
    phi = 2 * math.pi * (np.arange(width) + 0.5) / width
    st = np.sin(theta)[:, None]
    return np.stack(
        [st * np.cos(phi)[None], -st * np.sin(phi)[None], np.repeat(np.cos(theta)[:, None], width, 1)],
        axis=-1,
    )


@dataclass(frozen=True)
class CubeMap:
    """Six square pinhole faces of ``face_px`` pixels and ``fov_deg`` field of view around a panorama's centre."""

    face_px: int
    fov_deg: float = 90.0

    @property
    def focal_px(self) -> float:
        return (self.face_px / 2) / math.tan(math.radians(self.fov_deg) / 2)

    def axes(self) -> np.ndarray:
        """(6, 3, 3): per face the axis, image-right and image-down unit vectors."""
        return np.array([CUBE_FACES[k] for k in CUBE_FACES], dtype=np.float64)

    def face_rays(self) -> np.ndarray:
        """Unit rays (6, n, n, 3) of every face pixel centre."""
        n, f = self.face_px, self.focal_px
        a = (np.arange(n) + 0.5 - n / 2) / f
        aa, bb = np.meshgrid(a, a, indexing="xy")  # aa along columns (right), bb along rows (down)
        axes = self.axes()
        rays = (
            axes[:, None, None, 0]
            + aa[None, ..., None] * axes[:, None, None, 1]
            + bb[None, ..., None] * axes[:, None, None, 2]
        )
        return rays / np.linalg.norm(rays, axis=-1, keepdims=True)

    def render(self, panorama: np.ndarray) -> np.ndarray:
        """The six faces (6, n, n, C) sampled bilinearly from an equirectangular image (H, W, C)."""
        h, w = panorama.shape[:2]
        rays = self.face_rays()
        theta = np.arccos(np.clip(rays[..., 2], -1, 1))
        phi = np.mod(np.arctan2(-rays[..., 1], rays[..., 0]), 2 * math.pi)
        col = (phi * w / (2 * math.pi) - 0.5 + 1).astype(np.float32)  # +1: one wrapped column padded left
        row = np.clip(theta * h / math.pi - 0.5, 0, h - 1).astype(np.float32)
        padded = np.concatenate([panorama[:, -1:], panorama, panorama[:, :1]], axis=1)
        faces = [
            cv2.remap(padded, col[k], row[k], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for k in range(len(CUBE_FACES))
        ]
        return np.stack(faces).reshape(len(CUBE_FACES), self.face_px, self.face_px, *panorama.shape[2:])

    def stitch(self, face_z: np.ndarray, height: int, width: int) -> np.ndarray:
        """Radial distance (H, W) float32 from the faces' z-depth (6, n, n): each pixel from the face whose axis
        is closest to its ray, sampled bilinearly, divided by the cosine between ray and axis."""
        rays = panorama_directions(height, width)
        axes = self.axes()
        cos = np.einsum("hwc,kc->hwk", rays, axes[:, 0])
        best = np.argmax(cos, axis=-1)
        out = np.full((height, width), np.nan, dtype=np.float32)
        n, f = self.face_px, self.focal_px
        for k in range(len(CUBE_FACES)):
            mask = best == k
            if not mask.any():
                continue
            r = rays[mask]
            c = r @ axes[k, 0]
            u = (r @ axes[k, 1]) / c * f + n / 2 - 0.5
            v = (r @ axes[k, 2]) / c * f + n / 2 - 0.5
            z = cv2.remap(
                face_z[k].astype(np.float32),
                u.astype(np.float32)[None],
                v.astype(np.float32)[None],
                cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )[0]
            out[mask] = z / c
        return out


def disparity_to_relative_depth(disparity: np.ndarray, far: float = 20.0, reference: float | None = None):
    """Depth up to scale from an affine-invariant disparity (Depth Anything V2 relative output).

    Disparity is divided by ``reference`` (default: its 95th percentile over positive values), so one unit of
    depth is roughly the distance of the nearest 5 % of the scene; depth = 1 / normalised disparity. Pixels
    farther than ``far`` units (sky, horizon; disparity near zero) are NaN. The unknown shift of the
    disparity is ignored. Returns (depth float32, reference).
    """
    d = np.asarray(disparity, dtype=np.float32)
    positive = d[np.isfinite(d) & (d > 0)]
    if reference is None:
        reference = float(np.percentile(positive, 95)) if positive.size else 1.0
    dn = d / max(reference, 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(np.isfinite(dn) & (dn > 1.0 / far), 1.0 / dn, np.nan).astype(np.float32)
    return depth, reference


class ModelDepth:
    """A DepthProvider around a per-image predictor: pinhole photos directly, panoramas through cube faces.

    Args:
        predict: (N, h, w, 3) uint8 RGB → (N, h, w) float: metres of z-depth (``metric``) or disparity.
        metric: the predictor gives metres; otherwise disparity, converted to depth up to scale.
        face_px: side of the cube faces for panoramas (default: a quarter of the panorama's width, ≤ 518).
        relative_far: for disparity, depths beyond this many relative units are invalid.
    """

    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        metric: bool,
        name: str = "model",
        face_px: int | None = None,
        face_fov_deg: float = 90.0,
        relative_far: float = 20.0,
    ):
        self.predict = predict
        self.metric = metric
        self.name = name
        self.face_px = face_px
        self.face_fov_deg = face_fov_deg
        self.relative_far = relative_far

    def cube(self, width: int) -> CubeMap:
        return CubeMap(self.face_px or max(14, min(518, width // 4)), self.face_fov_deg)

    def _z_depth(self, raw: np.ndarray) -> np.ndarray:
        if self.metric:
            z = np.asarray(raw, dtype=np.float32).copy()
            z[~np.isfinite(z) | (z <= 0)] = np.nan
            return z
        return disparity_to_relative_depth(raw, self.relative_far)[0]

    def depth_for(self, image_rgb: np.ndarray, camera: Camera) -> DepthMap:
        """Depth of ``image_rgb`` (H, W, 3) uint8: radial for panoramas, z-depth for pinhole photos."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
            raise ImageError(
                f"depth model: expected an (H, W, 3) uint8 RGB image, got {image_rgb.shape} {image_rgb.dtype}"
            )
        h, w = image_rgb.shape[:2]
        far = None if self.metric else self.relative_far
        if isinstance(camera, Equirectangular):
            cube = self.cube(w)
            faces = cube.render(image_rgb)
            z = self._z_depth(self._run(faces))  # one disparity reference for all faces
            return DepthMap(cube.stitch(z, h, w), kind="radial", metric=self.metric, max_depth=far)
        if isinstance(camera, Pinhole):
            z = self._z_depth(self._run(image_rgb[None])[0])
            return DepthMap(z, kind="z", metric=self.metric, max_depth=far)
        raise DepthError(f"depth model: unknown camera model {type(camera).__name__}")

    def _run(self, images: np.ndarray) -> np.ndarray:
        out = np.asarray(self.predict(images), dtype=np.float32)
        if out.shape != images.shape[:3]:
            raise DepthError(
                f"{self.name}: predicted depth has shape {out.shape}, expected {images.shape[:3]}"
            )
        return out


def _import_transformers():
    try:
        import transformers
    except ImportError as exc:
        raise DepthError(
            "Depth Anything V2 needs the 'transformers' package: pip install transformers "
            "(or pip install 'loc2[depth]')"
        ) from exc
    return transformers


class DepthAnythingV2(ModelDepth):
    """Depth Anything V2 (metric or relative) from a local Hugging Face model folder, run offline.

    Args:
        model_dir: folder with ``config.json``, the weights and ``preprocessor_config.json`` (e.g. from
            ``loc2 models download depth-anything-v2-metric-outdoor-large``), or such a registry name.
        device: ``auto``, ``cuda``, ``cpu`` or ``mps``.
    """

    def __init__(self, model_dir: str | Path, device: str = "auto", **kwargs):
        import torch

        from .runtime import resolve_device
        from .weights import resolve_weights

        try:
            path = resolve_weights(model_dir)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(f"Depth Anything V2 model folder: {exc}") from exc
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path}: not a Hugging Face model folder (no config.json)")
        tf = _import_transformers()
        try:
            model = tf.AutoModelForDepthEstimation.from_pretrained(str(path), local_files_only=True)
            processor = tf.AutoImageProcessor.from_pretrained(str(path), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"{path}: cannot load a depth model from this folder ({exc})") from exc
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.path = path
        self._torch = torch
        metric = getattr(model.config, "depth_estimation_type", "relative") == "metric"
        super().__init__(self._predict, metric=metric, name=f"depth-anything-v2 ({path.name})", **kwargs)

    def _predict(self, images: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) uint8 → (N, h, w): metres (metric) or disparity (relative), resized to the input."""
        torch = self._torch
        n, h, w = images.shape[:3]
        inputs = self.processor(images=list(images), return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.device)
        with torch.inference_mode():
            pred = self.model(pixel_values=pixels).predicted_depth
        pred = torch.nn.functional.interpolate(
            pred[:, None].float(), size=(h, w), mode="bilinear", align_corners=False
        )
        return pred[:, 0].cpu().numpy()


class UniK3DDepth:
    """UniK3D metric depth (requires the ``unik3d`` package): radial distance for panoramas (spherical
    camera over the whole image), z-depth for pinhole photos (the camera's intrinsics)."""

    name = "unik3d"

    def __init__(self, model: str | Path, device: str = "auto", resolution_level: int = 9):
        try:
            from unik3d.models import UniK3D
        except ImportError as exc:
            raise DepthError(
                "UniK3D is not installed: install it from https://github.com/lpiccinelli-eth/UniK3D "
                "(pip install -e . in its checkout), then pass a local model folder"
            ) from exc
        from .runtime import resolve_device

        self.device = resolve_device(device)
        self.model = UniK3D.from_pretrained(str(model)).to(self.device).eval()
        self.model.resolution_level = resolution_level
        self.model.interpolation_mode = "bilinear"

    def depth_for(self, image_rgb: np.ndarray, camera: Camera) -> DepthMap:
        import torch
        from unik3d.utils.camera import Pinhole as UPinhole
        from unik3d.utils.camera import Spherical

        h, w = image_rgb.shape[:2]
        rgb = torch.from_numpy(np.ascontiguousarray(image_rgb)).permute(2, 0, 1).to(self.device)
        # A fresh camera per call: UniK3D rescales a camera's parameters in place.
        if isinstance(camera, Equirectangular):
            cam = Spherical(params=torch.tensor([1.0, 1.0, 1.0, 1.0, float(w), float(h), 3.14159, 1.5708]))
            key, kind = "distance", "radial"
        else:
            c = camera.scaled(w, h)
            k = torch.tensor([[c.fx, 0.0, c.cx], [0.0, c.fy, c.cy], [0.0, 0.0, 1.0]])
            cam = UPinhole(K=k[None])
            key, kind = "depth", "z"
        with torch.inference_mode():
            out = self.model.infer(rgb=rgb, camera=cam.to(self.device), normalize=True)
        depth = out[key][0, 0].float()
        if depth.shape != (h, w):
            depth = torch.nn.functional.interpolate(depth[None, None], size=(h, w), mode="nearest")[0, 0]
        d = depth.cpu().numpy().astype(np.float32)
        d[~np.isfinite(d) | (d <= 0)] = np.nan
        return DepthMap(d, kind=kind, metric=True)
