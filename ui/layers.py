"""QGIS layers on the plugin's side: the orthophoto layer a job reads, and the engine's result files as
styled layers, read with QGIS's own OGR provider.

The engine writes each job's results into an output file (GeoPackage by default: layers ``poses``,
``priors``, ``inliers``, ``outlines``, ``shifts`` and optionally ``matches``). Here they become map layers
in one group, styled by role (``styles.py``). Only QGIS and the standard library are used.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    Qgis,
    QgsField,
    QgsLayerTreeGroup,
    QgsMapLayer,
    QgsProject,
    QgsRasterLayer,
    QgsVectorLayer,
)

from ..core.types import LAYER_INLIERS, LAYER_MATCHES, LAYER_OUTLINES, LAYER_POSES, LAYER_PRIORS, LAYER_SHIFTS
from .styles import apply_style

# (role = the engine's layer name, layer name in the group), top to bottom of the group.
RESULT_LAYERS = (
    (LAYER_POSES, "Corrected pose"),
    (LAYER_PRIORS, "Prior (GPS) pose"),
    (LAYER_SHIFTS, "Shift, prior → corrected"),
    (LAYER_MATCHES, "Top matches"),
    (LAYER_INLIERS, "Inlier matches"),
    (LAYER_OUTLINES, "Ground layout outline"),
)


class LayerChoiceError(ValueError):
    """A layer that cannot be used for what it was chosen for; the message says why, for the user."""


def orthophoto_file(layer: QgsMapLayer | None) -> str:
    """The file of the orthophoto layer a job reads (the engine opens it itself): a raster layer of GDAL's,
    backed by a file on disk, with a CRS. LayerChoiceError says what is wrong."""
    if layer is None:
        raise LayerChoiceError(
            "Choose an orthophoto: a raster layer of the project or a raster file (GeoTIFF, VRT, …)."
        )
    path = layer.source().split("|")[0]
    if not isinstance(layer, QgsRasterLayer) or layer.providerType() != "gdal":
        raise LayerChoiceError(f"{layer.name()}: choose a raster layer (a file, or a WMS/WMTS/XYZ service)")
    if not Path(path).is_file():
        raise LayerChoiceError(f"{layer.name()}: its source {path} is not a file on disk")
    if not layer.crs().isValid():
        raise LayerChoiceError(f"{path}: the orthophoto has no coordinate reference system")
    return path


def make_field(name: str, kind: str) -> QgsField:
    """A field of kind ``str`` (no length limit: a GeoPackage keeps the whole text, a shapefile up to 254
    characters) or ``float``, with the constructor this QGIS wants (QMetaType types from 3.38)."""
    if Qgis.QGIS_VERSION_INT >= 33800:
        from qgis.PyQt.QtCore import QMetaType

        types = {"str": QMetaType.Type.QString, "float": QMetaType.Type.Double}
    else:
        from qgis.PyQt.QtCore import QVariant

        types = {"str": QVariant.String, "float": QVariant.Double}
    return QgsField(name, types[kind])


def open_result_layers(sources: dict[str, str], suffix: str = "") -> list[tuple[str, QgsVectorLayer]]:
    """Styled layers ``(role, layer)`` for the engine's output ``sources`` (layer name → OGR data source),
    in :data:`RESULT_LAYERS` order; roles the output lacks are left out. RuntimeError names a layer QGIS
    cannot open."""
    layers = []
    for role, title in RESULT_LAYERS:
        source = sources.get(role)
        if not source:
            continue
        layer = QgsVectorLayer(source, f"{title}{suffix}", "ogr")
        if not layer.isValid():
            raise RuntimeError(f"QGIS cannot open the result layer {source}")
        apply_style(layer, role)
        layers.append((role, layer))
    return layers


def add_result_group(
    project: QgsProject, title: str, layers: list[tuple[str, QgsVectorLayer]]
) -> QgsLayerTreeGroup:
    """Add the layers to ``project`` in a new group ``title`` at the top of the layer tree, all or nothing."""
    for _, layer in layers:
        if not layer.isValid():
            raise RuntimeError(f"the result layer {layer.name()!r} is not valid; nothing was added")
    root = project.layerTreeRoot()
    group = root.insertGroup(0, title)
    added: list[str] = []
    try:
        for _, layer in layers:
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


def move_to_group(project: QgsProject, layer: QgsVectorLayer, title: str) -> None:
    """Move a layer already in the project into the top-level group ``title`` (made when missing)."""
    root = project.layerTreeRoot()
    node = root.findLayer(layer.id())
    if node is None:
        return
    group = root.findGroup(title) or root.insertGroup(0, title)
    if node.parent() is group:
        return
    clone = node.clone()
    group.addChildNode(clone)
    node.parent().removeChildNode(node)
