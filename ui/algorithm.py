"""Processing algorithm ``loc2:localizeimages``: localize a batch of geotagged photos on an orthophoto.

Photos come from a folder (priors from EXIF GPS) and/or a point layer with a photo path field (such as the
output of QGIS's "Import geotagged photos"). Outputs are feature sinks in the orthophoto CRS: POSES (points,
every photo; one without a pose sits at its prior), INLIERS (points), OUTLINES (polygons), SHIFTS (lines)
and an optional FAILED table (no geometry). Each photo's rows are written as soon as it is done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureRequest,
    QgsFeatureSink,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsWkbTypes,
)

from ..core.errors import Loc2Error
from ..core.solvers import SOLVER_HELP, SOLVER_LABELS, SOLVERS
from .dependencies import require
from .layers import qgs_fields, to_features
from .models import DEVICE_CHOICES, cached_localizer
from .styles import apply_style
from .threads import finish_worker_job

MODEL_KEYS = ("demo", "vigor", "kitti")
DEPTH_KEYS = ("flat", "folder")
FAILED_FIELDS = [("photo", "str"), ("status", "str"), ("message", "str")]

HELP = f"""Localizes street-level photos on an orthophoto with Loc2 (match, lift, align): each photo's true \
position and heading, corrected from its GPS prior.

Photos: a folder of geotagged photos (EXIF GPS position and, if present, heading) and/or a point layer whose \
photo field holds the photo paths, e.g. the output of "Import geotagged photos" (fields photo, direction).

Model: the shipped demo model, the published VIGOR (panoramas) or KITTI (pinhole photos) weights (backbone \
and matcher files), or a Loc2 checkpoint file (overrides the model choice).

Depth: flat ground (no extra weights) or a folder of depth maps named like the photos (.png, .npy, .tif).

Search radius: how far from the prior to look, in metres (0: the photo's EXIF accuracy, else 10 m).

Pose solver: {SOLVER_HELP}

Outputs, in the orthophoto's CRS: poses (one point per photo, heading in degrees clockwise from true north; \
a photo without a pose sits at its prior with its status and message), inliers, ground outlines, shifts \
(prior → corrected) and optionally a table of the photos that failed. A photo that fails is reported and \
the others go on.

Confidence: each pose's inlier ratio (inl_ratio) gives its class (confidence: high, medium, low), drawn \
green, amber and red. The thresholds are the model's own, calibrated on held-out photos (the published \
weights: 15 % and 40 %, the paper's; the demo model's are far lower and leave its pinhole photos low). On \
the demo model's synthetic test cities every panorama more than 5 m off was low."""


class _StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Applies a Loc2 layer style to an output once QGIS has loaded it."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        if layer is not None and layer.type() == layer.VectorLayer:
            apply_style(layer, self.role)


# Kept alive here: QGIS holds only a pointer to a post-processor.
_POST_PROCESSORS = {role: _StylePostProcessor(role) for role in ("poses", "inliers", "outlines", "shifts")}


class LocalizeImagesAlgorithm(QgsProcessingAlgorithm):
    """Batch localization of photos on an orthophoto (see :data:`HELP`)."""

    ORTHOPHOTO = "ORTHOPHOTO"
    PHOTOS = "PHOTOS"
    PHOTO_LAYER = "PHOTO_LAYER"
    PHOTO_FIELD = "PHOTO_FIELD"
    HEADING_FIELD = "HEADING_FIELD"
    MODEL = "MODEL"
    CHECKPOINT = "CHECKPOINT"
    BACKBONE_WEIGHTS = "BACKBONE_WEIGHTS"
    MATCHER_WEIGHTS = "MATCHER_WEIGHTS"
    DEPTH = "DEPTH"
    DEPTH_FOLDER = "DEPTH_FOLDER"
    SEARCH_RADIUS = "SEARCH_RADIUS"
    DEVICE = "DEVICE"
    SOLVER = "SOLVER"
    POSES = "POSES"
    INLIERS = "INLIERS"
    OUTLINES = "OUTLINES"
    SHIFTS = "SHIFTS"
    FAILED = "FAILED"
    LOCALIZED_COUNT = "LOCALIZED_COUNT"
    FAILED_COUNT = "FAILED_COUNT"

    # output parameter → (LayerTable name, QGIS geometry type, display name)
    SINKS = {
        POSES: ("poses", QgsProcessing.SourceType.TypeVectorPoint, "Loc2 poses"),
        INLIERS: ("inliers", QgsProcessing.SourceType.TypeVectorPoint, "Loc2 inliers"),
        OUTLINES: ("outlines", QgsProcessing.SourceType.TypeVectorPolygon, "Loc2 ground outlines"),
        SHIFTS: ("shifts", QgsProcessing.SourceType.TypeVectorLine, "Loc2 shifts"),
    }
    _WKB = {
        "Point": QgsWkbTypes.Type.Point,
        "LineString": QgsWkbTypes.Type.LineString,
        "Polygon": QgsWkbTypes.Type.Polygon,
    }

    def name(self) -> str:
        return "localizeimages"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return "Localize photos on an orthophoto"

    def group(self) -> str:
        return "Localization"

    def groupId(self) -> str:  # noqa: N802 - QGIS API
        return "localization"

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return HELP

    def tags(self) -> list[str]:
        return ["loc2", "photo", "street", "orthophoto", "localization", "pose", "gps", "correction", "exif"]

    def createInstance(self) -> LocalizeImagesAlgorithm:  # noqa: N802 - QGIS API
        return LocalizeImagesAlgorithm()

    def icon(self):
        from .provider import plugin_icon

        return plugin_icon()

    # ------------------------------------------------------------------ parameters
    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(QgsProcessingParameterRasterLayer(self.ORTHOPHOTO, "Orthophoto (with a CRS)"))
        self.addParameter(
            QgsProcessingParameterFile(
                self.PHOTOS,
                "Folder of geotagged photos",
                QgsProcessingParameterFile.Behavior.Folder,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.PHOTO_LAYER,
                "Point layer of photos (e.g. from Import geotagged photos)",
                [QgsProcessing.SourceType.TypeVectorPoint],
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.PHOTO_FIELD,
                "Photo path field",
                defaultValue="photo",
                parentLayerParameterName=self.PHOTO_LAYER,
                type=QgsProcessingParameterField.DataType.String,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.HEADING_FIELD,
                "Heading field (degrees clockwise from north)",
                defaultValue="direction",
                parentLayerParameterName=self.PHOTO_LAYER,
                type=QgsProcessingParameterField.DataType.Numeric,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.MODEL,
                "Model",
                options=[
                    "Demo model",
                    "VIGOR (panoramas, published weights)",
                    "KITTI (pinhole, published weights)",
                ],
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.CHECKPOINT,
                "Loc2 checkpoint file (overrides the model)",
                fileFilter="Loc2 checkpoints (*.pt *.pth *.ckpt);;All files (*)",
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.BACKBONE_WEIGHTS,
                "Backbone weights (VIGOR/KITTI: dinov2_vitl14_pretrain.pth)",
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(self.MATCHER_WEIGHTS, "Matcher weights (VIGOR/KITTI)", optional=True)
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.DEPTH, "Depth", options=["Flat ground", "Folder of depth maps"], defaultValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.DEPTH_FOLDER,
                "Depth map folder (files named like the photos)",
                QgsProcessingParameterFile.Behavior.Folder,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.SEARCH_RADIUS,
                "Search radius around the prior, metres (0: EXIF accuracy, else 10 m)",
                QgsProcessingParameterNumber.Type.Double,
                defaultValue=0.0,
                minValue=0.0,
                maxValue=500.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.DEVICE,
                "Device",
                options=["Auto (CUDA GPU if available)", "CUDA GPU", "CPU"],
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.SOLVER,
                "Pose solver",
                options=[long for _, long in SOLVER_LABELS.values()],
                defaultValue=0,
            )
        )
        for name, (_, kind, title) in self.SINKS.items():
            self.addParameter(QgsProcessingParameterFeatureSink(name, title, kind))
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                self.FAILED,
                "Loc2 failed photos",
                QgsProcessing.SourceType.TypeVector,
                optional=True,
                createByDefault=False,
            )
        )
        self.addOutput(QgsProcessingOutputNumber(self.LOCALIZED_COUNT, "Photos localized"))
        self.addOutput(QgsProcessingOutputNumber(self.FAILED_COUNT, "Photos that failed"))

    # ------------------------------------------------------------------ inputs
    def _ortho(self, parameters, context) -> tuple[str, QgsCoordinateReferenceSystem]:
        raster = self.parameterAsRasterLayer(parameters, self.ORTHOPHOTO, context)
        if raster is None:
            raise QgsProcessingException("Choose an orthophoto (a raster layer or a GeoTIFF file).")
        path = raster.source().split("|")[0]
        if raster.providerType() != "gdal" or not Path(path).is_file():
            raise QgsProcessingException(
                f"{raster.name()}: the orthophoto must be a raster file (GeoTIFF, VRT, ...), not {raster.source()}"
            )
        if not raster.crs().isValid():
            raise QgsProcessingException(f"{path}: the orthophoto has no coordinate reference system")
        return path, raster.crs()

    def _options(self, parameters, context) -> dict[str, Any]:
        checkpoint = self.parameterAsFile(parameters, self.CHECKPOINT, context)
        model = MODEL_KEYS[self.parameterAsEnum(parameters, self.MODEL, context)]
        weights = None
        if checkpoint:
            model = checkpoint
        elif model != "demo":
            backbone = self.parameterAsFile(parameters, self.BACKBONE_WEIGHTS, context)
            matcher = self.parameterAsFile(parameters, self.MATCHER_WEIGHTS, context)
            if not (backbone and matcher):
                raise QgsProcessingException(
                    f"The {model.upper()} model needs its published weights: give BACKBONE_WEIGHTS "
                    "(dinov2_vitl14_pretrain.pth) and MATCHER_WEIGHTS (the Loc2 matcher checkpoint), or choose "
                    "the demo model or a checkpoint file."
                )
            weights = (backbone, matcher)
        depth = "flat"
        if DEPTH_KEYS[self.parameterAsEnum(parameters, self.DEPTH, context)] == "folder":
            depth = self.parameterAsFile(parameters, self.DEPTH_FOLDER, context)
            if not depth or not Path(depth).is_dir():
                raise QgsProcessingException(f"Depth map folder not found: {depth or '(none given)'}")
        radius = self.parameterAsDouble(parameters, self.SEARCH_RADIUS, context)
        return {
            "model": model,
            "weights": weights,
            "depth": depth,
            "search_radius_m": radius if radius > 0 else None,
            "device": DEVICE_CHOICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            "solver": SOLVERS[self.parameterAsEnum(parameters, self.SOLVER, context)],
        }

    def _layer_items(self, parameters, context, feedback) -> list:
        source = self.parameterAsSource(parameters, self.PHOTO_LAYER, context)
        if source is None:
            return []
        photo_field = self._field(parameters, self.PHOTO_FIELD, context) or "photo"
        heading_field = self._field(parameters, self.HEADING_FIELD, context)
        names = source.fields().names()
        if photo_field not in names:
            raise QgsProcessingException(
                f"The photo layer has no field {photo_field!r} (fields: {', '.join(names)})"
            )
        if heading_field and heading_field not in names:
            feedback.pushWarning(f"The photo layer has no field {heading_field!r}: no heading priors")
            heading_field = None
        folder = self._layer_folder(parameters, context)
        to_wgs84 = QgsCoordinateTransform(
            source.sourceCrs(), QgsCoordinateReferenceSystem("EPSG:4326"), context.transformContext()
        )
        items = []
        for feature in source.getFeatures(QgsFeatureRequest()):
            item = _item_from_feature(feature, photo_field, heading_field, folder, to_wgs84)
            if item is not None:
                items.append(item)
        return items

    def _field(self, parameters, name: str, context) -> str | None:
        fields = self.parameterAsFields(parameters, name, context)
        return fields[0] if fields else None

    def _layer_folder(self, parameters, context) -> Path | None:
        layer = self.parameterAsVectorLayer(parameters, self.PHOTO_LAYER, context)
        if layer is None:
            return None
        if layer.providerType() != "ogr":
            return None
        path = Path(layer.source().split("|")[0])
        return path.parent if path.is_file() else None

    # ------------------------------------------------------------------ run
    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 - QGIS API
        try:
            require()
        except Loc2Error as exc:
            raise QgsProcessingException(str(exc)) from exc
        from ..core.priors import items_from_images

        ortho_path, crs = self._ortho(parameters, context)
        options = self._options(parameters, context)
        items: list = []
        unreadable: list[tuple[str, str]] = []
        folder = self.parameterAsFile(parameters, self.PHOTOS, context)
        if folder:
            if not Path(folder).is_dir():
                raise QgsProcessingException(f"{folder}: the photo folder does not exist")
            found, errors = items_from_images([folder])
            items.extend(found)
            unreadable.extend((str(p), msg) for p, msg in errors)
        items.extend(self._layer_items(parameters, context, feedback))
        if not items:
            detail = f" ({unreadable[0][1]})" if unreadable else ""
            raise QgsProcessingException(
                "No photos to localize: give a folder of photos (PHOTOS) or a point layer of photos "
                f"(PHOTO_LAYER){detail}"
            )
        sinks, outputs = self._sinks(parameters, context, crs)
        counts = {"ok": 0, "failed": 0}
        for path, message in unreadable:
            feedback.reportError(message, fatalError=False)
            self._write_failed(sinks, path, "unreadable", message)
            counts["failed"] += 1

        try:
            from ..core.pipeline import JobOptions, localize_batch

            job = JobOptions(**options)
            feedback.pushInfo(f"Loading the model ({job.model_name}) …")
            localizer = cached_localizer(job)
            feedback.pushInfo(f"{len(items)} photo(s) on {ortho_path}")
            localize_batch(
                items,
                ortho_path,
                job,
                on_result=lambda res: self._write(res, sinks, counts, feedback),
                progress=lambda done, total, _res: feedback.setProgress(100.0 * done / max(total, 1)),
                is_canceled=feedback.isCanceled,
                localizer=localizer,
            )
        except Loc2Error as exc:
            raise QgsProcessingException(str(exc)) from exc
        finally:
            finish_worker_job()
        if feedback.isCanceled():
            feedback.pushWarning("Cancelled: the outputs hold the photos done so far.")
        self._style_outputs(context, outputs)
        feedback.pushInfo(f"{counts['ok']} photo(s) localized, {counts['failed']} failed")
        outputs[self.LOCALIZED_COUNT] = counts["ok"]
        outputs[self.FAILED_COUNT] = counts["failed"]
        return outputs

    def _sinks(self, parameters, context, crs) -> tuple[dict[str, Any], dict[str, Any]]:
        from ..core.results import LAYER_SCHEMAS

        sinks: dict[str, Any] = {}
        outputs: dict[str, Any] = {}
        for name, (table, _, _) in self.SINKS.items():
            geometry, fields = LAYER_SCHEMAS[table]
            sink, dest = self.parameterAsSink(
                parameters, name, context, qgs_fields(fields), self._WKB[geometry], crs
            )
            if sink is None:
                raise QgsProcessingException(self.invalidSinkError(parameters, name))
            sinks[table], outputs[name] = sink, dest
        sink, dest = self.parameterAsSink(
            parameters, self.FAILED, context, qgs_fields(FAILED_FIELDS), QgsWkbTypes.Type.NoGeometry, crs
        )
        if sink is not None:
            sinks["failed"], outputs[self.FAILED] = sink, dest
        return sinks, outputs

    @staticmethod
    def _write_failed(sinks: dict[str, Any], photo: str, status: str, message: str) -> None:
        sink = sinks.get("failed")
        if sink is None:
            return
        fields = qgs_fields(FAILED_FIELDS)
        feature = QgsFeature(fields)
        feature.setAttributes([photo, status, message])
        sink.addFeature(feature, QgsFeatureSink.FastInsert)

    def _write(self, result, sinks: dict[str, Any], counts: dict[str, int], feedback) -> None:
        """Write one photo's rows to every sink and report it (on the algorithm's thread)."""
        from ..core.results import layer_tables

        for name, table in layer_tables([result]).items():
            sink = sinks.get(name)
            if sink is not None and table.rows:
                sink.addFeatures(to_features(table), QgsFeatureSink.FastInsert)
        name = Path(result.photo).name
        if result.ok:
            counts["ok"] += 1
            feedback.pushInfo(
                f"{name}: shift {result.shift_m:.1f} m, heading {result.heading_deg:.0f}°, "
                f"{result.num_inliers} inliers, confidence {result.confidence}"
            )
        else:
            counts["failed"] += 1
            message = result.message or result.status
            feedback.reportError(message if name in message else f"{name}: {message}", fatalError=False)
            self._write_failed(sinks, result.photo, result.status, result.message)

    def _style_outputs(self, context, outputs: dict[str, Any]) -> None:
        for name, (table, _, _) in self.SINKS.items():
            dest = outputs.get(name)
            if dest and context.willLoadLayerOnCompletion(dest):
                context.layerToLoadOnCompletionDetails(dest).setPostProcessor(_POST_PROCESSORS[table])


def _item_from_feature(
    feature: QgsFeature,
    photo_field: str,
    heading_field: str | None,
    folder: Path | None,
    to_wgs84: QgsCoordinateTransform,
) -> Any:
    """A ``PhotoItem`` from a point feature (position → WGS84); None when the photo field is empty."""
    from ..core.priors import PhotoItem

    photo = feature[photo_field]
    if photo is None or not str(photo).strip() or str(photo) == "NULL":
        return None
    path = Path(str(photo).strip()).expanduser()
    if not path.is_absolute() and folder is not None:
        path = folder / path
    lon = lat = None
    geometry = feature.geometry()
    if geometry is not None and not geometry.isEmpty():
        point = to_wgs84.transform(
            geometry.asPoint() if not geometry.isMultipart() else geometry.asMultiPoint()[0]
        )
        lon, lat = point.x(), point.y()
    heading = None
    if heading_field:
        value = feature[heading_field]
        try:
            heading = float(value) % 360.0 if value is not None and str(value) != "NULL" else None
        except (TypeError, ValueError):
            heading = None
    return PhotoItem(path, lon, lat, heading)
