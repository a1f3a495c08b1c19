"""The algorithm's outputs: the engine's result layers copied into Processing's sinks, the photos that
failed as a table, and the style and group each output gets once QGIS has loaded it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qgis.core import (
    QgsFeature,
    QgsFeatureSink,
    QgsFields,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProject,
    QgsVectorLayer,
    QgsWkbTypes,
)

from ...core.types import LAYER_POSES, STATUS_OK
from ..layers import make_field, move_to_group
from ..styles import apply_style

OUTPUT_GROUP = "Loc2 results"
FAILED_FIELDS = ("photo", "status", "message")

# make_sink(parameter name, fields, wkb type, crs or None) → (sink or None, destination id)
MakeSink = Callable[[str, QgsFields, Any, Any], tuple[Any, str]]


class StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Styles a Loc2 output once QGIS has loaded it and puts it in the "Loc2 results" group."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        if isinstance(layer, QgsVectorLayer):
            apply_style(layer, self.role)
            move_to_group(context.project() or QgsProject.instance(), layer, OUTPUT_GROUP)


_POST_PROCESSORS: dict[str, StylePostProcessor] = {}  # kept alive here: QGIS holds only a pointer


def post_processor(role: str) -> StylePostProcessor:
    if role not in _POST_PROCESSORS:
        _POST_PROCESSORS[role] = StylePostProcessor(role)
    return _POST_PROCESSORS[role]


def copy_outputs(
    make_sink: MakeSink,
    context: QgsProcessingContext,
    written: dict[str, str],
    sinks: dict[str, str],
    failed_sink: str,
) -> tuple[dict[str, Any], dict[str, int]]:
    """Copy the engine's layers (``written``: role → OGR source) into the requested sinks (``sinks``:
    parameter → role) and the failed photos into ``failed_sink``; returns the outputs and the counts of
    photos localized (``ok``) and failed."""
    outputs: dict[str, Any] = {}
    counts = {"ok": 0, "failed": 0}
    failed_rows: list[list[Any]] = []
    for name, role in sinks.items():
        layer = QgsVectorLayer(written[role], role, "ogr")
        if not layer.isValid():
            raise QgsProcessingException(f"QGIS cannot read the engine's results {written[role]}")
        fields = QgsFields()
        for field in layer.fields():
            if field.name() != "fid":  # the GeoPackage's feature id, not a result attribute
                fields.append(field)
        sink, dest = make_sink(name, fields, layer.wkbType(), layer.crs())
        for feature in layer.getFeatures():
            if role == LAYER_POSES:
                ok = feature["status"] == STATUS_OK
                counts["ok" if ok else "failed"] += 1
                if not ok:
                    failed_rows.append([feature[n] for n in FAILED_FIELDS])
            if sink is not None:
                out = QgsFeature(fields)
                out.setGeometry(feature.geometry())
                out.setAttributes([feature[f.name()] for f in fields])
                sink.addFeature(out, QgsFeatureSink.FastInsert)
        if sink is not None:
            outputs[name] = dest
            if context.willLoadLayerOnCompletion(dest):
                context.layerToLoadOnCompletionDetails(dest).setPostProcessor(post_processor(role))
    _write_failed(make_sink, failed_sink, failed_rows, outputs)
    return outputs, counts


def _write_failed(make_sink: MakeSink, name: str, rows: list[list[Any]], outputs: dict[str, Any]) -> None:
    fields = QgsFields()
    for field_name in FAILED_FIELDS:
        fields.append(make_field(field_name, "str"))
    sink, dest = make_sink(name, fields, QgsWkbTypes.Type.NoGeometry, None)
    if sink is None:
        return
    for row in rows:
        feature = QgsFeature(fields)
        feature.setAttributes(row)
        sink.addFeature(feature, QgsFeatureSink.FastInsert)
    outputs[name] = dest
