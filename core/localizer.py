"""The match–lift–align pipeline on one ground image and one aerial image (no geography here).

:class:`Localizer` holds a model (backbone, matcher, preset). :meth:`Localizer.prepare_ground` makes a
ground image ready once (depth, features, descriptors, lifted tokens: a :class:`GroundView`; for several
photos in one backbone pass, :meth:`Localizer.ground_input` then :meth:`Localizer.ground_views`);
:meth:`Localizer.match_view` matches it with an aerial image (the matching probabilities P);
:meth:`Localizer.solve` turns P into a pose (``solver/``) and a :class:`LocalizationResult`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ImageError
from .geometry.cameras import (
    TOKEN_SHIFTS,
    Camera,
    Equirectangular,
    Pinhole,
    aerial_grid_valid,
    aerial_grid_xy,
)
from .geometry.lifting import lift_tokens
from .inputs.depth import DepthMap, DepthProvider, check_depth_size
from .inputs.images import as_rgb_uint8, image_tensor
from .localization import GroundInput, GroundView, LocalizationResult
from .model.backbone import build_backbone
from .model.checkpoints import load_into, load_weights, read_checkpoint
from .model.matcher import CrossViewMatcher
from .model.presets import Preset, get_preset
from .model.runtime import (
    PRECISION_FLOAT16,
    cast_products,
    make_cpu_reproducible,
    reduced_precision,
    resolve_device,
    resolve_precision,
)
from .solver.config import PUBLISHED, SolverConfig
from .solver.ransac import PoseEstimate, direct_pose, ransac_pose
from .types import (
    DEMO_CHECKPOINT,
    PRECISION_AUTO,
    PRECISION_BFLOAT16,
    STATUS_NO_POSE,
    STATUS_NO_VALID_DEPTH,
    STATUS_OK,
)


def _checked_aerial(aerial_rgb: np.ndarray, footprint_m: float) -> np.ndarray:
    """A square RGB uint8 aerial image and a positive footprint in metres, or ImageError."""
    aerial_rgb = as_rgb_uint8(aerial_rgb, "aerial image")
    if aerial_rgb.shape[0] != aerial_rgb.shape[1]:
        raise ImageError(f"aerial image: must be square, got {aerial_rgb.shape[1]}×{aerial_rgb.shape[0]} px")
    if not (footprint_m > 0 and math.isfinite(footprint_m)):
        raise ImageError(f"aerial footprint must be a positive number of metres, got {footprint_m}")
    return aerial_rgb


def _groups_by_size(images: Sequence[torch.Tensor]) -> list[tuple[tuple[int, int], list[int]]]:
    """Indices of ``images`` (…, H, W) grouped by size (H, W), in order of first appearance."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        groups.setdefault(tuple(image.shape[-2:]), []).append(i)
    return list(groups.items())


class Localizer:
    """Match, lift and align one ground image on one aerial image (method §2–6).

    Build it with :meth:`from_preset` (the published weights), :meth:`from_checkpoint` (our own
    checkpoints) or :meth:`demo`. ``localize`` is the whole pipeline.

    ``precision`` (``types.PRECISIONS``): the backbone's arithmetic. ``auto``: float16 on CUDA, float32
    elsewhere; ``float32`` everywhere; ``bfloat16`` autocast on CUDA or on a CPU with bf16 instructions
    (``model/runtime.resolve_precision``). The heads and the solver always run float32.

    ``fp16_backbone``: where the precision is float16, cast the whole backbone to fp16 (weights and
    activations) as the release does, instead of fp16 autocast; None takes the preset's choice (on for the
    published models).
    """

    def __init__(
        self,
        preset: Preset,
        backbone: nn.Module,
        matcher: CrossViewMatcher,
        device: str = "auto",
        fp16_backbone: bool | None = None,
        precision: str = PRECISION_AUTO,
    ):
        self.preset = preset
        self.device = resolve_device(device)
        if self.device.type == "cpu":
            make_cpu_reproducible()  # the same pose at any thread count (model/runtime.py)
        self.precision = resolve_precision(precision, self.device)
        wanted = preset.fp16_backbone if fp16_backbone is None else fp16_backbone
        self.fp16_backbone = bool(wanted) and self.precision == PRECISION_FLOAT16
        backbone = backbone.half() if self.fp16_backbone else backbone
        if self.precision == PRECISION_BFLOAT16:
            cast_products(backbone, torch.bfloat16)
        self.backbone = backbone.to(self.device).eval()
        self.matcher = matcher.to(self.device).eval()
        self.stride = int(getattr(backbone, "stride", 14))

    # ----------------------------------------------------------------- construction
    @staticmethod
    def build_networks(preset: Preset) -> tuple[nn.Module, CrossViewMatcher]:
        """Fresh (randomly initialised) backbone and matcher for a preset."""
        backbone = build_backbone(preset.backbone, **preset.extra.get("backbone_kwargs", {}))
        matcher = CrossViewMatcher(
            embed_dim=preset.embed_dim,
            desc_dim=preset.desc_dim,
            aerial_grid=preset.aerial_grid,
            temperature=preset.temperature,
            head_widths=preset.head_widths,
        )
        return backbone, matcher

    @classmethod
    def from_preset(
        cls,
        preset: str | Preset,
        backbone_weights: str | Path | dict | None = None,
        matcher_weights: str | Path | dict | None = None,
        device: str = "auto",
        fp16_backbone: bool | None = None,
        precision: str = PRECISION_AUTO,
    ) -> Localizer:
        """The published model: a preset name (``vigor``, ``kitti``) or Preset plus the two weight files.

        Weights may be paths or already-loaded state dicts; None leaves that network randomly initialised
        (useful only for tests). ``fp16_backbone``, ``precision``: see the class.
        """
        p = get_preset(preset) if isinstance(preset, str) else preset
        backbone, matcher = cls.build_networks(p)
        for net, weights, what in (
            (backbone, backbone_weights, f"the {p.name} preset's backbone ({p.backbone})"),
            (matcher, matcher_weights, f"the {p.name} preset's matcher"),
        ):
            if weights is None:
                continue
            state = weights if isinstance(weights, dict) else load_weights(weights)
            load_into(net, state, str(weights) if not isinstance(weights, dict) else "state dict", what)
        return cls(p, backbone, matcher, device, fp16_backbone, precision)

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        device: str = "auto",
        fp16_backbone: bool | None = None,
        precision: str = PRECISION_AUTO,
    ) -> Localizer:
        """A model saved by :func:`loc2.core.checkpoints.save_checkpoint` (e.g. by ``loc2 train``);
        ``fp16_backbone``, ``precision``: see the class."""
        preset, backbone_state, matcher_state = read_checkpoint(path)
        backbone, matcher = cls.build_networks(preset)
        load_into(backbone, backbone_state, str(path), f"the {preset.name} checkpoint's backbone")
        load_into(matcher, matcher_state, str(path), f"the {preset.name} checkpoint's matcher")
        return cls(preset, backbone, matcher, device, fp16_backbone, precision)

    @classmethod
    def demo(cls, device: str = "auto", precision: str = PRECISION_AUTO) -> Localizer:
        """The small demo model shipped in ``resources/`` (trained on synthetic cities only)."""
        return cls.from_checkpoint(DEMO_CHECKPOINT, device, precision=precision)

    # ----------------------------------------------------------------- pipeline
    def default_camera(self, width: int, height: int) -> Camera:
        """The preset's camera for an image of this size (panorama, or pinhole with the preset's FOV)."""
        if self.preset.camera == "panorama":
            return Equirectangular(width, height)
        return Pinhole.from_fov(width, height, self.preset.fov_deg)

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """Backbone input size (H, W) for a ground image: the preset's, or its width at the image's aspect."""
        ph, pw = self.preset.ground_size_hw
        if abs((width / height) / (pw / ph) - 1) <= 0.05:
            return ph, pw
        h = max(self.stride, int(round(height * pw / width)))
        return h, pw

    @torch.inference_mode()
    def features(self, image: torch.Tensor) -> torch.Tensor:
        """Backbone features (B, C, rows, cols) float32 of images (B, 3, H, W) in [0, 1], in the backbone's
        ``precision``: float16 through the fp16 backbone (``fp16_backbone``) or under autocast, bfloat16 under
        autocast (oneDNN's kernels on the CPU), else float32."""
        if self.fp16_backbone:
            return self.backbone(image.half()).float()
        with reduced_precision(self.device, self.precision):
            return self.backbone(image).float()

    @property
    def batches_photos(self) -> bool:
        """Whether several photos (or aerial crops) share a backbone pass: on a GPU, yes; on the CPU, no. A CPU
        gains nothing from it (every core is busy with one image), and an image's features in a batch are not
        always bit-identical to its features alone (the demo-size CNN's differ after the first image; the
        heads' convolutions pick their kernel by the memory layout of a batch's slice), which would make a
        pose depend on the batch size."""
        return self.device.type != "cpu"

    def token_shifts(self, camera: Camera, dense: bool) -> tuple[tuple[float, float], ...]:
        """The token grids to run (``geometry.cameras.TOKEN_SHIFTS``): all four for a panorama when ``dense`` and
        the model's grid is pixel-centred (the demo model and ``loc2 train``'s), else the grid itself."""
        if dense and isinstance(camera, Equirectangular) and not self.preset.published_grid:
            return TOKEN_SHIFTS
        return TOKEN_SHIFTS[:1]

    def ground_input(
        self,
        ground_rgb: np.ndarray,
        depth: DepthProvider | DepthMap,
        camera: Camera | None = None,
        dense: bool = False,
    ) -> GroundInput:
        """A ground image made ready for the backbone: its depth map and its resized (and, for ``dense``,
        rolled: :meth:`token_shifts`) image on the device. No network runs here."""
        ground_rgb = as_rgb_uint8(ground_rgb, "ground image")
        h_img, w_img = ground_rgb.shape[:2]
        camera = camera or self.default_camera(w_img, h_img)
        if (camera.width, camera.height) != (w_img, h_img):
            camera = camera.scaled(w_img, h_img)
        t0 = time.perf_counter()
        depth_map = depth if isinstance(depth, DepthMap) else depth.depth_for(ground_rgb, camera)
        check_depth_size(depth_map.depth_m, (h_img, w_img), "depth map")
        timings = {"depth": time.perf_counter() - t0}
        in_hw = self.input_size(w_img, h_img)
        shifts = self.token_shifts(camera, dense)
        image = image_tensor(ground_rgb, in_hw, self.device, self.preset.resize_filter)
        rolled = [
            torch.roll(image, (round(dv * self.stride), round(du * self.stride)), (2, 3)) for du, dv in shifts
        ]
        return GroundInput(torch.cat(rolled), depth_map, camera, (h_img, w_img), shifts, timings)

    @torch.inference_mode()
    def ground_views(self, inputs: Sequence[GroundInput]) -> list[GroundView]:
        """The backbone on several ground images, in one forward pass per input size where the device batches
        photos (:attr:`batches_photos`; else one by one), then each one's descriptors and lifted tokens."""
        views: list[GroundView | None] = [None] * len(inputs)
        groups = _groups_by_size([g.image for g in inputs])
        if not self.batches_photos:
            groups = [(size, [i]) for size, group in groups for i in group]
        for size, group in groups:
            t0 = time.perf_counter()
            feats = self.features(torch.cat([inputs[i].image for i in group]))  # (Σ grids, C, rows, cols)
            share = (time.perf_counter() - t0) / len(group)
            for i, g_feat in zip(group, feats.split([len(inputs[i].shifts) for i in group]), strict=True):
                views[i] = self._ground_view(inputs[i], g_feat, size, share)
        return views  # type: ignore[return-value]

    def _ground_view(
        self, ground: GroundInput, g_feat: torch.Tensor, input_hw: tuple[int, int], backbone_s: float
    ) -> GroundView:
        """A GroundView from one image's backbone features (grids, C, rows, cols)."""
        timings = {**ground.timings_s, "backbone_ground": backbone_s}
        grid_rc = tuple(g_feat.shape[-2:])
        lifted = [self.lift(ground.depth_map, ground.camera, grid_rc, input_hw, s) for s in ground.shifts]
        xy_ground_m = np.concatenate([xy for xy, _ in lifted])
        valid = np.concatenate([ok for _, ok in lifted])
        t0 = time.perf_counter()
        desc_g = self.matcher.describe_ground(g_feat).flatten(0, 1)[None] if valid.any() else None
        timings["heads"] = time.perf_counter() - t0
        return GroundView(
            desc_g, xy_ground_m, valid, grid_rc, input_hw, ground.image_hw, timings, ground.shifts
        )

    def prepare_ground(
        self,
        ground_rgb: np.ndarray,
        depth: DepthProvider | DepthMap,
        camera: Camera | None = None,
        dense: bool = False,
    ) -> GroundView:
        """Everything about the ground image that does not depend on the aerial crop: depth, backbone
        features, ground descriptors and lifted BEV points. Reuse it for several crops (the search).

        ``dense``: a panorama also runs the half-token-shifted grids (:meth:`token_shifts`)."""
        return self.ground_views([self.ground_input(ground_rgb, depth, camera, dense)])[0]

    @torch.inference_mode()
    def aerial_features(self, aerial_rgbs: Sequence[np.ndarray], aerial_footprint_m: float) -> torch.Tensor:
        """Backbone features (N, C, rows, cols) of N aerial crops in one forward pass (callers batch crops only
        where :attr:`batches_photos`); ImageError for a crop that is not a square RGB image."""
        size = self.preset.aerial_size_px
        images = [
            image_tensor(
                _checked_aerial(rgb, aerial_footprint_m), (size, size), self.device, self.preset.resize_filter
            )
            for rgb in aerial_rgbs
        ]
        return self.features(torch.cat(images))

    @torch.inference_mode()
    def match_view(
        self,
        view: GroundView,
        aerial_rgb: np.ndarray,
        aerial_footprint_m: float,
        aerial_valid: np.ndarray | None = None,
        timings: dict | None = None,
        aerial_feat: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The matching probability P (A, G) of a prepared ground view on one aerial crop (A = aerial
        grid points, row-major; G = ground tokens); ``timings`` (if given) adds up the stages' seconds.
        ``aerial_feat`` (1, C, rows, cols): the crop's backbone features when already computed
        (:meth:`aerial_features`)."""
        timings = timings if timings is not None else {}
        if aerial_feat is None:
            t0 = time.perf_counter()
            aerial_feat = self.aerial_features([aerial_rgb], aerial_footprint_m)
            timings["backbone_aerial"] = timings.get("backbone_aerial", 0.0) + time.perf_counter() - t0
        a_valid = None
        if aerial_valid is not None:
            a_valid = aerial_grid_valid(aerial_valid, aerial_footprint_m, self.preset.aerial_grid)
            a_valid = torch.from_numpy(a_valid)[None].to(self.device)
        t0 = time.perf_counter()
        valid_t = torch.from_numpy(view.valid)[None].to(self.device)
        desc_a = self.matcher.describe_aerial(aerial_feat)
        scores = self.matcher.scores(desc_a, view.desc_ground)
        per_grid = view.grid_rc[0] * view.grid_rc[1]  # each grid's dual softmax on its own, as trained
        P = torch.cat(
            [
                self.matcher.match(block, ok, a_valid)[0]
                for block, ok in zip(scores.split(per_grid, 2), valid_t.split(per_grid, 1), strict=True)
            ],
            dim=1,
        )
        timings["heads"] = timings.get("heads", 0.0) + time.perf_counter() - t0
        return P

    def localize_view(
        self,
        view: GroundView,
        aerial_rgb: np.ndarray,
        aerial_footprint_m: float,
        aerial_valid: np.ndarray | None = None,
        generator: torch.Generator | None = None,
        config: SolverConfig = PUBLISHED,
    ) -> LocalizationResult:
        """The pose of a prepared ground view on one aerial crop (see :meth:`localize` for the arguments)."""
        timings = dict(view.timings_s)
        if view.desc_ground is None:
            _checked_aerial(aerial_rgb, aerial_footprint_m)
            return self.solve(view, None, aerial_footprint_m, config, timings=timings)
        P = self.match_view(view, aerial_rgb, aerial_footprint_m, aerial_valid, timings)
        return self.solve(view, P, aerial_footprint_m, config, generator=generator, timings=timings)

    def localize(
        self,
        ground_rgb: np.ndarray,
        aerial_rgb: np.ndarray,
        aerial_footprint_m: float,
        depth: DepthProvider | DepthMap,
        camera: Camera | None = None,
        aerial_valid: np.ndarray | None = None,
        generator: torch.Generator | None = None,
        config: SolverConfig = PUBLISHED,
    ) -> LocalizationResult:
        """The camera pose of ``ground_rgb`` on ``aerial_rgb`` (aerial frame: metres, x down, y right).

        Args:
            ground_rgb: (H, W, 3) uint8 RGB ground image (panorama or pinhole photo).
            aerial_rgb: (S, S, 3) uint8 RGB aerial crop covering ``aerial_footprint_m`` metres.
            depth: a DepthProvider or a DepthMap for the ground image.
            camera: the ground camera model (default: the preset's).
            aerial_valid: (S, S) bool, False where the crop lies outside the orthophoto.
            generator: torch.Generator for reproducible RANSAC.
            config: the solver (default: the paper's protocol), used as given (the pipeline adapts it to
                each photo: :meth:`SolverConfig.for_photo`).
        """
        _checked_aerial(aerial_rgb, aerial_footprint_m)  # a bad aerial image is reported before any work
        view = self.prepare_ground(ground_rgb, depth, camera, dense=config.dense_grids)
        return self.localize_view(view, aerial_rgb, aerial_footprint_m, aerial_valid, generator, config)

    def lift(
        self,
        depth_map: DepthMap,
        camera: Camera,
        grid_rc: tuple[int, int],
        input_hw: tuple[int, int],
        shift: tuple[float, float] = (0.0, 0.0),
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ground BEV points (rows·cols, 2) metres of the backbone's token grid, and their validity.

        ``camera`` is the ground image's camera at the image's own size (as the depth map); ``input_hw`` the
        backbone input size the image was resized to; tokens cover its top-left rows·stride × cols·stride.
        ``shift``: a panorama's rolled grid (``geometry.cameras.TOKEN_SHIFTS``; a grid rolled down loses its top row,
        which holds the wrapped nadir).
        """
        rows, cols = grid_rc
        in_h, in_w = input_hw
        dh, dw = depth_map.depth_m.shape
        region = (int(round(rows * self.stride * dh / in_h)), int(round(cols * self.stride * dw / in_w)))
        # a pixel-centred grid lifts along each token's centre ray, so it takes the depth seen there
        centred = not self.preset.published_grid
        depth_tokens = depth_map.tokens(rows, cols, self.preset.max_depth_m, region, centred, shift)
        if shift[1]:
            depth_tokens[0] = np.nan
        xy_ground_m = lift_tokens(
            camera.scaled(in_w, in_h), depth_tokens, self.stride, self.preset.published_grid, shift
        )
        return xy_ground_m, np.isfinite(xy_ground_m).all(axis=1)

    def solve(
        self,
        view: GroundView,
        P: torch.Tensor | None,
        aerial_footprint_m: float,
        config: SolverConfig = PUBLISHED,
        *,
        xy_aerial_m: np.ndarray | None = None,
        generator: torch.Generator | None = None,
        spread_m: torch.Tensor | None = None,
        timings: dict | None = None,
    ) -> LocalizationResult:
        """The pose from matching probabilities P (A, G) of ``view``'s tokens, as a LocalizationResult.

        ``xy_aerial_m`` (A, 2) gives P's aerial points when they are not the one crop's grid (several search
        crops stacked in one frame); the pose is then in that frame and the inlier ratio is counted on one
        footprint around it. ``spread_m``: each token's ground footprint (``ransac_pose``). ``timings``:
        seconds per stage so far (default: the view's).
        """
        timings = dict(view.timings_s if timings is None else timings)
        if not view.valid.any():
            return LocalizationResult(
                status=STATUS_NO_VALID_DEPTH,
                message="no ground token has valid depth (all sky, too far, or an empty depth map)",
                timings_s=timings,
            )
        grid = xy_aerial_m is None
        if grid:
            xy_aerial_m = aerial_grid_xy(aerial_footprint_m, self.preset.aerial_grid)
        t0 = time.perf_counter()
        xy_aerial_t = torch.from_numpy(xy_aerial_m).float()
        xy_ground_t = torch.from_numpy(np.nan_to_num(view.xy_ground_m)).float().to(self.device)
        if config.ransac:
            est = ransac_pose(P, xy_aerial_t, xy_ground_t, config, generator=generator, spread_m=spread_m)
        else:
            est = direct_pose(P, xy_aerial_t, xy_ground_t, config, generator=generator)
        timings["solver"] = time.perf_counter() - t0
        if not est.valid:
            plausible = ", or none at a plausible scale)" if config.scale_range else ")"
            return LocalizationResult(
                status=STATUS_NO_POSE,
                message="no pose could be solved from the matches (too few or degenerate correspondences"
                + plausible,
                num_valid_tokens=int(view.valid.sum()),
                timings_s=timings,
            )
        # several crops: the ratio on one footprint around the pose, as the paper's one aerial image
        ratio = est.inlier_ratio if grid else est.inlier_ratio_on(xy_aerial_m, aerial_footprint_m)
        return self._result(est, view, xy_aerial_m, ratio, timings)

    def _result(
        self, est: PoseEstimate, view: GroundView, xy_aerial_m: np.ndarray, inlier_ratio: float, timings: dict
    ) -> LocalizationResult:
        pose = est.pose.numpy()
        mask = est.inlier_mask.cpu().numpy()
        ig = est.ground_index.cpu().numpy()[mask]
        ia = est.aerial_index.cpu().numpy()[mask]
        return LocalizationResult(
            status=STATUS_OK,
            pose=pose,
            num_inliers=est.num_inliers,
            inlier_ratio=inlier_ratio,
            score=est.score,
            inliers_ground_px=self._token_pixels(view, ig),
            inliers_xy_ground_m=view.xy_ground_m[ig],
            inliers_xy_aerial_m=xy_aerial_m[ia],
            inliers_aerial_index=ia.astype(np.int64),
            inliers_prob=est.prob.cpu().numpy()[mask].astype(np.float64),
            inliers_residual_m=est.residual_m.cpu().numpy()[mask].astype(np.float64),
            layout_xy_aerial_m=pose.apply(view.xy_ground_m[view.valid]),
            num_valid_tokens=int(view.valid.sum()),
            timings_s=timings,
        )

    def _token_pixels(self, view: GroundView, tokens: np.ndarray) -> np.ndarray:
        """(N, 2) pixel (u column, v row) of the ground image at the centre of each of ``view``'s tokens."""
        rows, cols = view.grid_rc
        scale_u = view.image_hw[1] / view.input_hw[1]
        scale_v = view.image_hw[0] / view.input_hw[0]
        shift = np.asarray(view.shifts, dtype=np.float64)[
            tokens // (rows * cols)
        ]  # (K, 2) of each one's grid
        token = tokens % (rows * cols)
        u = ((token % cols) + 0.5 - shift[:, 0]) * self.stride * scale_u % view.image_hw[1]
        v = ((token // cols) + 0.5 - shift[:, 1]) * self.stride * scale_v
        return np.stack([u, v], axis=1)
