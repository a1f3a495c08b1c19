"""The match figure of one photo: what was matched, where the camera was believed to be and where it is.

Drawn with OpenCV on RGB arrays (no matplotlib). Layout, left to right: the photo with its inlier keypoints
(coloured by matching probability, viridis: dark purple = least, yellow = most probable), then the aerial
crop with the re-scaled ground layout (small translucent cyan dots), the inlier aerial points, the prior
pose (grey arrow) and the corrected pose (red arrow); lines join the photo keypoint and aerial point of the
``top_matches`` most probable matches. A text strip runs along the bottom.

Inputs are in the pixel coordinates of the images given (continuous, pixel centres at +0.5): photo
keypoints as (u column, v row), aerial points as (col, row) of the crop. Headings are degrees clockwise
from the crop's up direction.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..errors import ExportError, ImageError
from ..geometry.cameras import aerial_xy_to_pixel
from ..types import STATUS_OK

AERIAL_HEIGHT_PX = 512
MAX_PHOTO_WIDTH_PX = 1536
GAP_PX = 12
LINE_HEIGHT_PX = 26
ARROW_LENGTH_PX = 56
BACKGROUND_RGB = (24, 24, 24)
TEXT_RGB = (240, 240, 240)
POSE_RGB = (235, 20, 20)
PRIOR_RGB = (175, 175, 175)
LAYOUT_RGB = (0, 220, 255)
LAYOUT_ALPHA = 0.35


def _check_rgb(image: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8 or min(arr.shape[:2]) < 1:
        raise ImageError(f"{name}: expected an (H, W, 3) uint8 RGB image, got {arr.dtype} {arr.shape}")
    return np.ascontiguousarray(arr)


def probability_colours(prob: np.ndarray) -> np.ndarray:
    """Viridis RGB colours (N, 3) uint8 for probabilities, stretched over their own min … max."""
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    if len(p) == 0:
        return np.zeros((0, 3), dtype=np.uint8)
    p = np.nan_to_num(p, nan=0.0)
    lo, hi = float(p.min()), float(p.max())
    level = (p - lo) / (hi - lo) if hi > lo else np.ones_like(p)
    grey = np.round(level * 255).astype(np.uint8).reshape(-1, 1)
    bgr = cv2.applyColorMap(grey, cv2.COLORMAP_VIRIDIS).reshape(-1, 3)
    return bgr[:, ::-1].copy()


def _fit(image: np.ndarray, height: int, max_width: int) -> tuple[np.ndarray, float]:
    """Resize to ``height`` (or narrower to ``max_width``); returns the image and its scale factor."""
    h, w = image.shape[:2]
    scale = height / h
    if w * scale > max_width:
        scale = max_width / w
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interpolation), scale


def _pixels(points_px: Any, scale: float, offset: tuple[int, int]) -> np.ndarray:
    """Continuous (col, row) coordinates → integer canvas pixels (N, 2); non-finite rows are dropped later."""
    pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
    return np.floor(pts * scale).astype(np.int64) + np.asarray(offset, dtype=np.int64) if len(pts) else pts


def _colour(rgb: Any) -> tuple[int, int, int]:
    return tuple(int(c) for c in rgb)


def _arrow(
    canvas: np.ndarray, origin: np.ndarray, heading_deg: float | None, rgb: tuple, thickness: int
) -> None:
    """A dot at ``origin`` and, with a heading (degrees clockwise from up), an arrow of ARROW_LENGTH_PX."""
    p0 = (int(origin[0]), int(origin[1]))
    cv2.circle(canvas, p0, thickness + 3, rgb, -1, cv2.LINE_AA)
    if heading_deg is None or not math.isfinite(heading_deg):
        return
    h = math.radians(heading_deg)
    p1 = (round(p0[0] + ARROW_LENGTH_PX * math.sin(h)), round(p0[1] - ARROW_LENGTH_PX * math.cos(h)))
    cv2.arrowedLine(canvas, p0, p1, rgb, thickness, cv2.LINE_AA, tipLength=0.3)


def _finite_rows(*arrays: np.ndarray) -> np.ndarray:
    ok = np.ones(len(arrays[0]), dtype=bool)
    for a in arrays:
        arr = np.asarray(a, dtype=np.float64)
        if arr.size:
            ok &= np.isfinite(arr).reshape(len(arr), -1).all(axis=1)
    return ok


def _finite_points(points_px: Any) -> np.ndarray:
    """(N, 2) float64 points without the rows holding NaN or inf."""
    points = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
    return points[_finite_rows(points)]


def _draw_layout(canvas: np.ndarray, region: tuple[slice, slice], layout_px: np.ndarray) -> None:
    """The lifted ground layout (canvas pixels) as translucent dots, blended inside the aerial ``region``."""
    if not len(layout_px):
        return
    overlay = canvas.copy()
    for c, r in layout_px:
        cv2.circle(overlay, (int(c), int(r)), 2, LAYOUT_RGB, -1)
    canvas[region] = cv2.addWeighted(overlay[region], LAYOUT_ALPHA, canvas[region], 1 - LAYOUT_ALPHA, 0)


def _draw_matches(
    panels: np.ndarray,
    ground: tuple[Any, float, tuple[int, int]],
    aerial: tuple[Any, float, tuple[int, int]],
    prob: Any,
    top_matches: int,
) -> None:
    """Every match as a dot on both images, coloured by probability (the most probable on top), and a
    line for each of the ``top_matches`` most probable. ``ground``, ``aerial``: (keypoints in image
    pixels, scale, canvas offset)."""
    g_kp = np.asarray(ground[0], dtype=np.float64).reshape(-1, 2)
    a_kp = np.asarray(aerial[0], dtype=np.float64).reshape(-1, 2)
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    n = min(len(g_kp), len(a_kp), len(p))
    g_kp, a_kp, p = g_kp[:n], a_kp[:n], p[:n]
    keep = _finite_rows(g_kp, a_kp)
    g_kp, a_kp, p = g_kp[keep], a_kp[keep], p[keep]
    colours = probability_colours(p)
    g_px = _pixels(g_kp, *ground[1:])
    a_px = _pixels(a_kp, *aerial[1:])
    for i in np.argsort(p, kind="stable"):  # most probable drawn last, on top
        cv2.circle(panels, (int(g_px[i, 0]), int(g_px[i, 1])), 3, _colour(colours[i]), -1, cv2.LINE_AA)
        cv2.circle(panels, (int(a_px[i, 0]), int(a_px[i, 1])), 3, _colour(colours[i]), -1, cv2.LINE_AA)
    top = np.argsort(-p, kind="stable")[: max(int(top_matches), 0)]
    for i in top[::-1]:
        p0 = (int(g_px[i, 0]), int(g_px[i, 1]))
        p1 = (int(a_px[i, 0]), int(a_px[i, 1]))
        cv2.line(panels, p0, p1, _colour(colours[i]), 1, cv2.LINE_AA)


def _draw_text(canvas: np.ndarray, lines: list[str], panel_h: int) -> None:
    """The text lines (ASCII) in the strip below the panels."""
    for k, line in enumerate(lines):
        origin = (10, panel_h + 8 + LINE_HEIGHT_PX * k + 18)
        ascii_line = line.encode("ascii", "replace").decode("ascii")
        cv2.putText(canvas, ascii_line, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.6, TEXT_RGB, 1, cv2.LINE_AA)


def draw_match_figure(
    ground_rgb: np.ndarray,
    aerial_rgb: np.ndarray,
    *,
    ground_kp_px: np.ndarray,
    aerial_kp_px: np.ndarray,
    prob: np.ndarray,
    layout_px: np.ndarray | None = None,
    prior_px: np.ndarray | None = None,
    prior_heading_aerial_deg: float | None = None,
    pose_px: np.ndarray | None = None,
    pose_heading_aerial_deg: float | None = None,
    text: str = "",
    top_matches: int = 50,
    aerial_height_px: int = AERIAL_HEIGHT_PX,
) -> np.ndarray:
    """The match figure as an RGB uint8 array (see the module docstring).

    The aerial crop is scaled to ``aerial_height_px`` square-ish; the photo to the same height (narrower
    when it would exceed ``MAX_PHOTO_WIDTH_PX``, then centred vertically). ``text`` may hold several lines.
    """
    ground = _check_rgb(ground_rgb, "ground image")
    aerial = _check_rgb(aerial_rgb, "aerial image")
    photo, s_photo = _fit(ground, aerial_height_px, MAX_PHOTO_WIDTH_PX)
    sky, s_aerial = _fit(aerial, aerial_height_px, 4 * aerial_height_px)
    lines = [t for t in text.splitlines()] if text else []
    panel_h = max(photo.shape[0], sky.shape[0])
    strip_h = LINE_HEIGHT_PX * len(lines) + (10 if lines else 0)
    width = photo.shape[1] + GAP_PX + sky.shape[1]
    canvas = np.empty((panel_h + strip_h, width, 3), dtype=np.uint8)
    canvas[:] = BACKGROUND_RGB

    photo_off = (0, (panel_h - photo.shape[0]) // 2)
    aerial_off = (photo.shape[1] + GAP_PX, (panel_h - sky.shape[0]) // 2)
    canvas[photo_off[1] : photo_off[1] + photo.shape[0], : photo.shape[1]] = photo
    ax0, ay0 = aerial_off
    canvas[ay0 : ay0 + sky.shape[0], ax0 : ax0 + sky.shape[1]] = sky
    panels = canvas[:panel_h]  # a view: marks drawn on it never spill into the text strip

    region = (slice(ay0, ay0 + sky.shape[0]), slice(ax0, ax0 + sky.shape[1]))
    if layout_px is not None:
        _draw_layout(canvas, region, _pixels(_finite_points(layout_px), s_aerial, aerial_off))
    _draw_matches(
        panels,
        (ground_kp_px, s_photo, photo_off),
        (aerial_kp_px, s_aerial, aerial_off),
        prob,
        top_matches,
    )
    if prior_px is not None and np.isfinite(np.asarray(prior_px, dtype=np.float64)).all():
        _arrow(panels, _pixels(prior_px, s_aerial, aerial_off)[0], prior_heading_aerial_deg, PRIOR_RGB, 2)
    if pose_px is not None and np.isfinite(np.asarray(pose_px, dtype=np.float64)).all():
        _arrow(panels, _pixels(pose_px, s_aerial, aerial_off)[0], pose_heading_aerial_deg, POSE_RGB, 3)

    _draw_text(canvas, lines, panel_h)
    return canvas


def save_match_figure(
    path: str | os.PathLike, ground_rgb: np.ndarray, aerial_rgb: np.ndarray, **kwargs
) -> Path:
    """Draw the match figure (:func:`draw_match_figure` arguments) and write it as PNG; returns the path.

    Missing parent folders are created. Raises ExportError naming the path when it cannot be written.
    """
    out = Path(path)
    image = draw_match_figure(ground_rgb, aerial_rgb, **kwargs)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(out, format="PNG")
    except OSError as exc:
        raise ExportError(f"cannot write the match figure {out}: {exc}") from exc
    return out


def figure_text(result: Any) -> str:
    """Text strip for a ``PhotoResult``: photo, status, inliers, ratio, confidence, shift, heading."""
    name = Path(result.photo).name
    if result.status != STATUS_OK:
        return f"{name}: {result.status} - {result.message}"
    shift = f"{result.shift_m:.2f} m" if math.isfinite(result.shift_m) else "unknown"
    return (
        f"{name}: inliers {result.num_inliers} (ratio {100 * result.inlier_ratio:.1f} %), "
        f"confidence {result.confidence}\n"
        f"shift {shift}, heading {result.heading_deg:.1f} deg, scale {result.scale:.3f}"
    )


def figure_kwargs_from_localization(
    loc: Any,
    crop: Any,
    prior_xy_crs: tuple[float, float] | None = None,
    prior_heading_deg: float | None = None,
) -> dict[str, Any]:
    """:func:`draw_match_figure` keyword arguments from a ``LocalizationResult`` and its ``AerialCrop``.

    ``prior_xy_crs`` is in the ortho CRS and ``prior_heading_deg`` clockwise from true north; both are
    taken into the crop with ``crop.crs_to_aerial`` and ``crop.true_north_to_heading``.
    """
    footprint_m, size_px = float(crop.footprint_m), int(crop.size_px)

    def to_px(xy_aerial_m: Any) -> np.ndarray:
        xy = np.asarray(xy_aerial_m, dtype=np.float64).reshape(-1, 2)
        return aerial_xy_to_pixel(xy, footprint_m, size_px)

    prior_px = prior_head = None
    if prior_xy_crs is not None:
        prior_px = to_px(crop.crs_to_aerial(np.asarray(prior_xy_crs, dtype=np.float64).reshape(1, 2)))[0]
        if prior_heading_deg is not None and math.isfinite(prior_heading_deg):
            prior_head = float(crop.true_north_to_heading(prior_heading_deg))
    ok = loc.status == STATUS_OK
    return {
        "ground_kp_px": np.asarray(loc.inliers_ground_px, dtype=np.float64).reshape(-1, 2),
        "aerial_kp_px": to_px(loc.inliers_xy_aerial_m),
        "prob": np.asarray(loc.inliers_prob, dtype=np.float64).reshape(-1),
        "layout_px": to_px(loc.layout_xy_aerial_m),
        "prior_px": prior_px,
        "prior_heading_aerial_deg": prior_head,
        "pose_px": to_px(loc.pose.t)[0] if ok else None,
        "pose_heading_aerial_deg": loc.pose.heading_aerial_deg if ok else None,
    }
