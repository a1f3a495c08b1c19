"""The engine's result files as styled QGIS layers, read with QGIS's own OGR provider.

The engine writes each job's results into an output file (GeoPackage by default: layers ``poses``,
``priors``, ``inliers``, ``outlines``, ``shifts`` and optionally ``matches``). Here they become map layers
in one group, styled by role (``styles.py``). Only QGIS and the standard library are used.
"""

from __future__ import annotations

from qgis.core import Qgis, QgsField, QgsLayerTreeGroup, QgsProject, QgsVectorLayer

from .styles import apply_style

# (role = the engine's layer name, layer name in the group), top to bottom of the group.
RESULT_LAYERS = (
    ("poses", "Corrected pose"),
    ("priors", "Prior (GPS) pose"),
    ("shifts", "Shift, prior → corrected"),
    ("matches", "Top matches"),
    ("inliers", "Inlier matches"),
    ("outlines", "Ground layout outline"),
)


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
