"""A point layer of photos (any QGIS source, memory layers included) as a GeoPackage the engine reads:
the photo path and heading fields, one point per photo."""

from __future__ import annotations

from pathlib import Path

from qgis.core import (
    QgsCoordinateTransformContext,
    QgsFeature,
    QgsFeatureRequest,
    QgsFeatureSource,
    QgsFields,
    QgsVectorFileWriter,
    QgsVectorLayer,
    QgsWkbTypes,
)

from ..layers import make_field

# the field names of the GeoPackage written for the engine
PHOTO_FIELD = "photo"
HEADING_FIELD = "direction"


def write_photo_layer(
    source: QgsFeatureSource, photo_field: str, heading_field: str | None, path: Path
) -> None:
    """Write ``source``'s photo path and heading (degrees clockwise from north; None without
    ``heading_field``) to the GeoPackage ``path``, in the source's CRS (a single-part multipoint becomes a
    point)."""
    fields = QgsFields()
    fields.append(make_field(PHOTO_FIELD, "str"))
    fields.append(make_field(HEADING_FIELD, "float"))
    options = QgsVectorFileWriter.SaveVectorOptions()
    options.driverName = "GPKG"
    writer = QgsVectorFileWriter.create(
        str(path),
        fields,
        QgsWkbTypes.Type.Point,
        source.sourceCrs(),
        QgsCoordinateTransformContext(),
        options,
    )
    for feature in source.getFeatures(QgsFeatureRequest()):
        out = QgsFeature(fields)
        geometry = feature.geometry()
        if geometry is not None and not geometry.isEmpty() and geometry.isMultipart():
            parts = geometry.asMultiPoint()
            geometry = geometry.fromPointXY(parts[0]) if len(parts) == 1 else geometry
        out.setGeometry(geometry)
        out.setAttributes([feature[photo_field], feature[heading_field] if heading_field else None])
        writer.addFeature(out)
    del writer  # closes the file


def layer_folder(layer: QgsVectorLayer | None) -> str | None:
    """The folder of a file-based layer (relative photo paths are relative to it), None otherwise."""
    if layer is None or layer.providerType() != "ogr":
        return None
    path = Path(layer.source().split("|")[0])
    return str(path.parent) if path.is_file() else None
