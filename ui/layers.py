"""Core :class:`~loc2.core.results.LayerTable` s as QGIS fields, features and memory layers.

A LayerTable holds shapely geometries in the orthophoto CRS and attribute dicts; here they become
``QgsFields`` / ``QgsFeature`` s (geometry through WKT) and memory layers. NaN numbers become NULL.
Only QGIS is imported at module level (the plugin loads where shapely, pyproj or torch are missing).
"""

from __future__ import annotations

import math
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsFeature,
    QgsField,
    QgsFields,
    QgsGeometry,
    QgsLayerTreeGroup,
    QgsProject,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QVariant

from .styles import apply_style

# Geometry types of LayerTable → QGIS WKB types and memory-provider names.
WKB_TYPES = {
    "Point": QgsWkbTypes.Type.Point,
    "LineString": QgsWkbTypes.Type.LineString,
    "Polygon": QgsWkbTypes.Type.Polygon,
    "None": QgsWkbTypes.Type.NoGeometry,
}
_MEMORY_GEOMETRY = {"Point": "Point", "LineString": "LineString", "Polygon": "Polygon", "None": "None"}
try:  # Qt 5 (QGIS 3): field types are QVariant types
    _FIELD_TYPES = {"str": QVariant.String, "int": QVariant.Int, "float": QVariant.Double}
except AttributeError:  # Qt 6 (QGIS 4): QMetaType types
    from qgis.PyQt.QtCore import QMetaType

    _FIELD_TYPES = {"str": QMetaType.Type.QString, "int": QMetaType.Type.Int, "float": QMetaType.Type.Double}
_FIELD_LENGTHS = {"str": 254, "int": 10, "float": 24}
_FIELD_PRECISION = {"str": 0, "int": 0, "float": 15}


def qgs_fields(fields: list[tuple[str, str]]) -> QgsFields:
    """QgsFields from ``(name, kind)`` pairs, kind ``str`` | ``int`` | ``float``."""
    out = QgsFields()
    for name, kind in fields:
        if kind not in _FIELD_TYPES:
            raise ValueError(f"field {name!r}: unknown kind {kind!r} (str, int or float)")
        out.append(QgsField(name, _FIELD_TYPES[kind], len=_FIELD_LENGTHS[kind], prec=_FIELD_PRECISION[kind]))
    return out


def attribute_value(value: Any, kind: str) -> Any:
    """A Python value as a QGIS attribute: NaN / None → NULL, numbers cast to the field kind."""
    if value is None:
        return None
    if kind == "str":
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return int(round(number)) if kind == "int" else number


def qgs_geometry(geom: Any) -> QgsGeometry:
    """A shapely geometry (or None / empty) as a QgsGeometry (empty for None)."""
    if geom is None or getattr(geom, "is_empty", False):
        return QgsGeometry()
    return QgsGeometry.fromWkt(geom.wkt)


def to_features(table: Any, fields: QgsFields | None = None) -> list[QgsFeature]:
    """The rows of a LayerTable as QgsFeatures with ``fields`` (built from the table when None)."""
    fields = fields if fields is not None else qgs_fields(table.fields)
    kinds = dict(table.fields)
    features = []
    for geom, attrs in table.rows:
        feature = QgsFeature(fields)
        feature.setGeometry(qgs_geometry(geom))
        for name in fields.names():
            feature.setAttribute(name, attribute_value(attrs.get(name), kinds.get(name, "str")))
        features.append(feature)
    return features


def memory_layer(table: Any, crs: QgsCoordinateReferenceSystem, name: str | None = None) -> QgsVectorLayer:
    """A memory layer holding a LayerTable (coordinates in ``crs``, the orthophoto CRS)."""
    geometry = _MEMORY_GEOMETRY.get(table.geometry_type)
    if geometry is None:
        raise ValueError(f"layer {table.name!r}: unknown geometry type {table.geometry_type!r}")
    layer = QgsVectorLayer(geometry, name or table.name, "memory")
    if not layer.isValid():
        raise RuntimeError(f"QGIS could not create a memory layer for {table.name!r}")
    layer.setCrs(crs)
    fields = qgs_fields(table.fields)
    provider = layer.dataProvider()
    provider.addAttributes(fields.toList())
    layer.updateFields()
    ok, _ = provider.addFeatures(to_features(table, layer.fields()))
    if not ok:
        raise RuntimeError(f"QGIS could not add the features of {table.name!r} to a memory layer")
    layer.updateExtents()
    return layer


def crs_from_wkt(crs_wkt: str) -> QgsCoordinateReferenceSystem:
    """A QgsCoordinateReferenceSystem from WKT (e.g. ``PhotoResult.crs_wkt``); invalid when empty."""
    crs = QgsCoordinateReferenceSystem.fromWkt(crs_wkt) if crs_wkt else QgsCoordinateReferenceSystem()
    return crs


# (role, table name, layer name in the group), top to bottom of the group.
RESULT_LAYERS = (
    ("poses", "poses", "Corrected pose"),
    ("priors", "priors", "Prior pose"),
    ("shifts", "shifts", "Shift"),
    ("matches", "matches", "Matches"),
    ("inliers", "inliers", "Inliers"),
    ("outlines", "outlines", "Ground outline"),
)


def prior_table(poses: Any) -> Any:
    """The poses LayerTable placed at the PRIOR positions (rows without a finite prior are left out)."""
    from shapely.geometry import Point

    from ..core.results import LayerTable

    rows = []
    for _, attrs in poses.rows:
        x, y = attrs.get("prior_x"), attrs.get("prior_y")
        if attribute_value(x, "float") is not None and attribute_value(y, "float") is not None:
            rows.append((Point(float(x), float(y)), attrs))
    return LayerTable("priors", "Point", list(poses.fields), rows)


def result_layers(
    tables: dict[str, Any], crs: QgsCoordinateReferenceSystem
) -> list[tuple[str, str, QgsVectorLayer]]:
    """Styled memory layers ``(role, name, layer)`` for the result tables (``matches`` only if present)."""
    tables = dict(tables)
    if "poses" in tables:
        tables["priors"] = prior_table(tables["poses"])
    built = []
    for role, table_name, title in RESULT_LAYERS:
        table = tables.get(table_name)
        if table is None:
            continue
        layer = memory_layer(table, crs, title)
        apply_style(layer, role)
        built.append((role, title, layer))
    return built


def add_result_group(
    project: QgsProject, title: str, layers: list[tuple[str, str, QgsVectorLayer]]
) -> QgsLayerTreeGroup:
    """Add the layers to ``project`` in a new group ``title`` at the top of the layer tree, all or nothing."""
    for _, name, layer in layers:
        if not layer.isValid():
            raise RuntimeError(f"the result layer {name!r} is not valid; nothing was added")
    root = project.layerTreeRoot()
    group = root.insertGroup(0, title)
    added: list[str] = []
    try:
        for _, _, layer in layers:
            if project.addMapLayer(layer, False) is None:
                raise RuntimeError(f"QGIS refused the layer {layer.name()!r}")
            added.append(layer.id())
            group.addLayer(layer)
    except Exception:
        for layer_id in added:
            project.removeMapLayer(layer_id)
        root.removeChildNode(group)
        raise
    return group


def empty_result_layers(crs: QgsCoordinateReferenceSystem) -> dict[str, QgsVectorLayer]:
    """An empty memory layer with the schema of every role (for writing the shipped QML styles)."""
    from ..core.results import empty_tables

    tables = empty_tables(include_matches=True)
    tables["priors"] = prior_table(tables["poses"])
    return {role: memory_layer(tables[name], crs, title) for role, name, title in RESULT_LAYERS}
