"""The GIS layer tables of a job's results: ONE attribute schema per layer that every export format shares
(``export.py``, ``formats.py``); every field name has at most 10 characters so that shapefiles keep them.

Layers (all coordinates in the orthophoto CRS):

* ``poses`` (Point): one row per photo, failed photos included. An ``ok`` photo is placed at its corrected
  position; a photo without a pose is placed at its PRIOR position (``geom_src`` = ``prior``) so that nothing
  is lost from the table, or has no geometry when even the prior is unknown (``geom_src`` = ``none``).
* ``inliers`` (Point): the aerial end of every RANSAC inlier, with the ground pixel (u, v), probability and
  residual.
* ``outlines`` (Polygon): the projected ground outline (:func:`~.results.ground_outline`) of each located photo.
* ``shifts`` (LineString): prior position → corrected position.
* ``priors`` (Point): each photo's prior position with the prior's attributes (heading, uncertainty).
* ``matches`` (LineString, optional): the top matches, ground point moved by the pose → aerial point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from shapely.geometry import LineString, Point

from ..geometry.frames import angle_difference_deg
from ..types import (
    GEOM_CORRECTED,
    GEOM_NONE,
    GEOM_PRIOR,
    LAYER_INLIERS,
    LAYER_MATCHES,
    LAYER_OUTLINES,
    LAYER_POSES,
    LAYER_PRIORS,
    LAYER_SHIFTS,
    LAYERS,
)
from .results import PhotoResult, _finite, candidate_summary, geodesic_area_m2, geodesic_distances_m

Fields = list[tuple[str, str]]

POSE_FIELDS: Fields = [
    ("photo", "str"),  # photo path as given to the job
    ("status", "str"),  # ok | failed | no_valid_depth | no_pose
    ("message", "str"),  # why a photo failed (empty when ok)
    ("geom_src", "str"),  # corrected | prior | none: where the point comes from
    ("x", "float"),  # corrected position, ortho CRS
    ("y", "float"),
    ("lon", "float"),  # corrected position, WGS84 degrees
    ("lat", "float"),
    ("heading", "float"),  # corrected heading, degrees clockwise from true north, [0, 360)
    ("prior_x", "float"),  # prior position, ortho CRS
    ("prior_y", "float"),
    ("prior_lon", "float"),  # prior position, WGS84 degrees
    ("prior_lat", "float"),
    ("prior_head", "float"),  # prior heading, degrees clockwise from true north (null if unknown)
    ("shift_m", "float"),  # prior → corrected, geodesic metres on the WGS84 ellipsoid
    ("scale", "float"),  # scale s of the alignment (≈ 1 with metric depth)
    ("inliers", "int"),  # RANSAC inliers
    ("inl_ratio", "float"),  # inliers / sampled correspondences
    ("confidence", "str"),  # high | medium | low | none
    ("runtime_s", "float"),  # seconds spent on the photo
    ("model", "str"),  # model name
    ("depth", "str"),  # depth source name
    ("solver", "str"),  # pose solver: published | precise
    ("precision", "str"),  # the backbone's arithmetic: float32 | bfloat16 | float16 (as asked: failed rows)
    ("n_cand", "int"),  # search crops matched
    (
        "cand_score",
        "str",
    ),  # every search crop: "x y inliers" (its centre in the ortho CRS, the inliers it gave)
]
# Fields that outputs of earlier versions lack (added in 0.15.0): appending to such an output goes on without
# them, so a run resumed after an upgrade keeps the output's own schema.
LATER_FIELDS = frozenset({"solver", "precision"})
INLIER_FIELDS: Fields = [
    ("photo", "str"),
    ("u", "float"),  # ground image column, pixels of the input photo
    ("v", "float"),  # ground image row
    ("prob", "float"),  # matching probability P
    ("resid_m", "float"),  # distance between the moved ground point and its aerial point, metres
]
OUTLINE_FIELDS: Fields = [
    ("photo", "str"),
    ("heading", "float"),
    ("confidence", "str"),
    ("area_m2", "float"),  # geodesic area, square metres
    ("n_points", "int"),  # layout points the outline was built from
]
SHIFT_FIELDS: Fields = [
    ("photo", "str"),
    ("shift_m", "float"),
    ("heading", "float"),
    ("prior_head", "float"),
    ("head_diff", "float"),  # |heading − prior heading| folded into [0, 180] degrees
    ("confidence", "str"),
]
MATCH_FIELDS: Fields = [
    ("photo", "str"),
    ("rank", "int"),  # 1 = most probable match
    ("prob", "float"),
    ("resid_m", "float"),
]

PRIOR_FIELDS: Fields = [
    ("photo", "str"),
    ("status", "str"),  # the photo's outcome (see POSE_FIELDS)
    ("prior_lon", "float"),  # WGS84 degrees
    ("prior_lat", "float"),
    ("prior_head", "float"),  # degrees clockwise from true north (null if unknown)
    ("prior_x", "float"),  # ortho CRS
    ("prior_y", "float"),
    ("shift_m", "float"),  # how far the corrected position lies from this prior, metres (null: no pose)
]

LAYER_SCHEMAS: dict[str, tuple[str, Fields]] = {
    LAYER_POSES: ("Point", POSE_FIELDS),
    LAYER_INLIERS: ("Point", INLIER_FIELDS),
    LAYER_OUTLINES: ("Polygon", OUTLINE_FIELDS),
    LAYER_SHIFTS: ("LineString", SHIFT_FIELDS),
    LAYER_MATCHES: ("LineString", MATCH_FIELDS),
    LAYER_PRIORS: ("Point", PRIOR_FIELDS),
}


@dataclass
class LayerTable:
    """One GIS layer: ``geometry_type`` ``Point`` | ``LineString`` | ``Polygon``; ``fields`` (name, kind) with
    kind ``str`` | ``int`` | ``float``; ``rows`` (geometry or None, {field: value})."""

    name: str
    geometry_type: str
    fields: Fields
    rows: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)

    @property
    def field_names(self) -> list[str]:
        return [n for n, _ in self.fields]

    def without(self, names: set[str] | frozenset[str]) -> LayerTable:
        """The same rows with the fields ``names`` left out."""
        if not names:
            return self
        return LayerTable(
            self.name, self.geometry_type, [f for f in self.fields if f[0] not in names], self.rows
        )


def layer_names(include_matches: bool = False) -> list[str]:
    """The names of the output layers, in their usual order."""
    return [n for n in LAYERS if include_matches or n != LAYER_MATCHES]


def empty_tables(include_matches: bool = False) -> dict[str, LayerTable]:
    """Every layer with its schema and no rows."""
    names = layer_names(include_matches)
    return {n: LayerTable(n, LAYER_SCHEMAS[n][0], list(LAYER_SCHEMAS[n][1])) for n in names}


def _opt(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _pose_row(res: PhotoResult) -> tuple[Point | None, dict[str, Any]]:
    if res.ok:
        geom, src = Point(res.x, res.y), GEOM_CORRECTED
    elif res.has_prior:
        geom, src = Point(res.prior_x, res.prior_y), GEOM_PRIOR
    else:
        geom, src = None, GEOM_NONE
    attrs = {
        "photo": res.photo,
        "status": res.status,
        "message": res.message,
        "geom_src": src,
        "x": res.x,
        "y": res.y,
        "lon": res.lon,
        "lat": res.lat,
        "heading": res.heading_deg,
        "prior_x": res.prior_x,
        "prior_y": res.prior_y,
        "prior_lon": res.prior_lon,
        "prior_lat": res.prior_lat,
        "prior_head": _opt(res.prior_heading_deg),
        "shift_m": float(res.shift_m),
        "scale": float(res.scale),
        "inliers": int(res.num_inliers),
        "inl_ratio": float(res.inlier_ratio),
        "confidence": res.confidence,
        "runtime_s": float(res.runtime_s),
        "model": res.model,
        "depth": res.depth,
        "solver": res.solver,
        "precision": res.precision,
        "n_cand": len(res.candidates),
        "cand_score": candidate_summary(res.candidates),
    }
    return geom, attrs


def _head_diff(a_deg: float, b_deg: float | None) -> float:
    if not (_finite(a_deg) and _finite(b_deg)):
        return math.nan
    return float(angle_difference_deg(a_deg, b_deg))


def _result_rows(res: PhotoResult, include_matches: bool) -> dict[str, list[tuple[Any, dict[str, Any]]]]:
    rows: dict[str, list] = {n: [] for n in LAYER_SCHEMAS}
    rows[LAYER_POSES].append(_pose_row(res))
    if res.has_prior:
        attrs = {
            "photo": res.photo,
            "status": res.status,
            "prior_lon": res.prior_lon,
            "prior_lat": res.prior_lat,
            "prior_head": _opt(res.prior_heading_deg),
            "prior_x": res.prior_x,
            "prior_y": res.prior_y,
            "shift_m": float(res.shift_m),
        }
        rows[LAYER_PRIORS].append((Point(res.prior_x, res.prior_y), attrs))
    if not res.ok:
        return rows
    n = min(len(res.inliers_xy_crs), len(res.inliers_uv), len(res.inliers_prob), len(res.inliers_resid_m))
    for i in range(n):
        xy, uv = res.inliers_xy_crs[i], res.inliers_uv[i]
        attrs = {
            "photo": res.photo,
            "u": float(uv[0]),
            "v": float(uv[1]),
            "prob": float(res.inliers_prob[i]),
            "resid_m": float(res.inliers_resid_m[i]),
        }
        rows[LAYER_INLIERS].append((Point(xy[0], xy[1]), attrs))
    outline = res.outline()
    if outline is not None:
        attrs = {
            "photo": res.photo,
            "heading": res.heading_deg,
            "confidence": res.confidence,
            "area_m2": geodesic_area_m2(outline, res.crs_wkt),
            "n_points": int(np.isfinite(res.layout_xy_crs).all(axis=1).sum()),
        }
        rows[LAYER_OUTLINES].append((outline, attrs))
    if res.has_prior:
        attrs = {
            "photo": res.photo,
            "shift_m": float(res.shift_m),
            "heading": res.heading_deg,
            "prior_head": _opt(res.prior_heading_deg),
            "head_diff": _head_diff(res.heading_deg, res.prior_heading_deg),
            "confidence": res.confidence,
        }
        rows[LAYER_SHIFTS].append((LineString([(res.prior_x, res.prior_y), (res.x, res.y)]), attrs))
    if include_matches:
        k = min(len(res.matches_ground_xy_crs), len(res.matches_aerial_xy_crs), len(res.matches_prob))
        g_xy, a_xy = res.matches_ground_xy_crs[:k], res.matches_aerial_xy_crs[:k]
        resid_m = np.hypot(*(a_xy - g_xy).T)
        if res.crs_wkt:
            resid_m = geodesic_distances_m(res.crs_wkt, g_xy, a_xy)
        for i in range(k):
            g, a = res.matches_ground_xy_crs[i], res.matches_aerial_xy_crs[i]
            attrs = {
                "photo": res.photo,
                "rank": i + 1,
                "prob": float(res.matches_prob[i]),
                "resid_m": float(resid_m[i]),
            }
            rows[LAYER_MATCHES].append((LineString([tuple(g), tuple(a)]), attrs))
    return rows


def layer_tables(results: list[PhotoResult], include_matches: bool = False) -> dict[str, LayerTable]:
    """The layers ``poses``, ``priors``, ``inliers``, ``outlines``, ``shifts`` (and ``matches``) of
    ``results``.

    Every layer is present, possibly without rows. The match residual ``resid_m`` of the ``matches`` layer
    is the line's geodesic length in metres (its length in CRS units when the result has no CRS).
    """
    tables = empty_tables(include_matches)
    for res in results:
        for name, rows in _result_rows(res, include_matches).items():
            if name in tables:
                tables[name].rows.extend(rows)
    return tables
