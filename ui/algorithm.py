"""Processing algorithm ``loc2:localizeimages``: localize a batch of geotagged photos on an orthophoto.

Photos come from a folder (priors from EXIF GPS) and/or a point layer with a photo path field (such as the
output of QGIS's "Import geotagged photos"). The work runs in the engine's own process (the worker, shared
with the dialog): the engine writes each photo's results into a GeoPackage as it goes, and the algorithm
copies them into its outputs at the end, in the orthophoto CRS: POSES (points, every photo; one without a
pose sits at its prior, with its status and message), INLIERS (points), OUTLINES (polygons), SHIFTS
(lines) and FAILED (a table of the photos that failed, with their whole message). Only POSES is required.
Cancel and a crash of the engine keep the photos already done.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsCoordinateTransformContext,
    QgsFeature,
    QgsFeatureRequest,
    QgsFeatureSink,
    QgsFields,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingUtils,
    QgsProject,
    QgsVectorFileWriter,
    QgsVectorLayer,
    QgsWkbTypes,
)
from qgis.PyQt.QtCore import QCoreApplication

from ..core.solver.config import SOLVER_HELP, SOLVER_LABELS, SOLVERS
from ..core.types import (
    DEPTH_FLAT,
    LAYER_INLIERS,
    LAYER_OUTLINES,
    LAYER_POSES,
    LAYER_SHIFTS,
    MODE_APPEND,
    MODE_OVERWRITE,
    MODEL_DEMO,
    MODELS,
    STATUS_OK,
    JobOptions,
    LocalizeRequest,
    OptionsError,
    OutputSpec,
    PhotoSource,
)
from ..core.worker import protocol
from .engine.client import OUTCOME_CANCELLED, OUTCOME_CRASHED, OUTCOME_DONE, shared_worker
from .engine.environment import find_engine
from .jobs import progress_text
from .layers import LayerChoiceError, make_field, move_to_group, orthophoto_file
from .settings import DEVICE_CHOICES, DEVICE_LABELS, MODEL_LABELS
from .styles import apply_style

DEPTH_KEYS = (DEPTH_FLAT, "folder")
# the engine's layers the algorithm copies into its outputs
OUTPUT_ROLES = (LAYER_POSES, LAYER_INLIERS, LAYER_OUTLINES, LAYER_SHIFTS)
OUTPUT_GROUP = "Loc2 results"

HELP = f"""Localizes street-level photos on an orthophoto with Loc2 (match, lift, align): each photo's true \
position and heading, corrected from its GPS prior. The work runs in the Loc2 engine's own process (install \
it from the Loc2 dialog: Engine → Install engine).

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
the others go on; Cancel keeps the photos already done.

Confidence: each pose's inlier ratio (inl_ratio) gives its class (confidence: high, medium, low), drawn \
green, amber and red. The thresholds are the model's own, calibrated on held-out photos (the published \
weights use the paper's 15 % and 40 %)."""


class _StylePostProcessor(QgsProcessingLayerPostProcessorInterface):
    """Styles a Loc2 output once QGIS has loaded it and puts it in the "Loc2 results" group."""

    def __init__(self, role: str) -> None:
        super().__init__()
        self.role = role

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 - QGIS API
        if isinstance(layer, QgsVectorLayer):
            apply_style(layer, self.role)
            move_to_group(context.project() or QgsProject.instance(), layer, OUTPUT_GROUP)


# Kept alive here: QGIS holds only a pointer to a post-processor.
_POST_PROCESSORS = {role: _StylePostProcessor(role) for role in OUTPUT_ROLES}


FAILED_FIELDS = ("photo", "status", "message")


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
    ENGINE_RESULTS = "ENGINE_RESULTS"
    LOCALIZED_COUNT = "LOCALIZED_COUNT"
    FAILED_COUNT = "FAILED_COUNT"

    # output parameter → (the engine's layer name, QGIS geometry type, display name)
    SINKS = {
        POSES: (LAYER_POSES, QgsProcessing.SourceType.TypeVectorPoint, "Loc2 poses"),
        INLIERS: (LAYER_INLIERS, QgsProcessing.SourceType.TypeVectorPoint, "Loc2 inliers"),
        OUTLINES: (LAYER_OUTLINES, QgsProcessing.SourceType.TypeVectorPolygon, "Loc2 ground outlines"),
        SHIFTS: (LAYER_SHIFTS, QgsProcessing.SourceType.TypeVectorLine, "Loc2 shifts"),
    }

    def tr(self, text: str) -> str:
        return QCoreApplication.translate("Loc2", text)

    def name(self) -> str:
        return "localizeimages"

    def displayName(self) -> str:  # noqa: N802 - QGIS API
        return self.tr("Localize photos on an orthophoto")

    def group(self) -> str:
        return self.tr("Localization")

    def groupId(self) -> str:  # noqa: N802 - QGIS API
        return "localization"

    def shortHelpString(self) -> str:  # noqa: N802 - QGIS API
        return self.tr(HELP)

    def tags(self) -> list[str]:
        return ["loc2", "photo", "street", "orthophoto", "localization", "pose", "gps", "correction", "exif"]

    def createInstance(self) -> LocalizeImagesAlgorithm:  # noqa: N802 - QGIS API
        return LocalizeImagesAlgorithm()

    def icon(self):
        from .provider import plugin_icon

        return plugin_icon()

    # ------------------------------------------------------------------ parameters
    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self.addParameter(
            QgsProcessingParameterRasterLayer(self.ORTHOPHOTO, self.tr("Orthophoto (with a CRS)"))
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.PHOTOS,
                self.tr("Folder of geotagged photos"),
                QgsProcessingParameterFile.Behavior.Folder,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFeatureSource(
                self.PHOTO_LAYER,
                self.tr("Point layer of photos (e.g. from Import geotagged photos)"),
                [QgsProcessing.SourceType.TypeVectorPoint],
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.PHOTO_FIELD,
                self.tr("Photo path field"),
                defaultValue="photo",
                parentLayerParameterName=self.PHOTO_LAYER,
                type=QgsProcessingParameterField.DataType.String,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterField(
                self.HEADING_FIELD,
                self.tr("Heading field (degrees clockwise from north)"),
                defaultValue="direction",
                parentLayerParameterName=self.PHOTO_LAYER,
                type=QgsProcessingParameterField.DataType.Numeric,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.MODEL,
                self.tr("Model"),
                options=[self.tr(MODEL_LABELS[m]) for m in MODELS],
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.CHECKPOINT,
                self.tr("Loc2 checkpoint file (overrides the model)"),
                fileFilter="Loc2 checkpoints (*.pt *.pth *.ckpt);;All files (*)",
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.BACKBONE_WEIGHTS,
                self.tr("Backbone weights (VIGOR/KITTI: dinov2_vitl14_pretrain.pth)"),
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.MATCHER_WEIGHTS, self.tr("Matcher weights (VIGOR/KITTI)"), optional=True
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.DEPTH,
                self.tr("Depth"),
                options=[self.tr("Flat ground"), self.tr("Folder of depth maps")],
                defaultValue=0,
            )
        )
        self.addParameter(
            QgsProcessingParameterFile(
                self.DEPTH_FOLDER,
                self.tr("Depth map folder (files named like the photos)"),
                QgsProcessingParameterFile.Behavior.Folder,
                optional=True,
            )
        )
        self.addParameter(
            QgsProcessingParameterNumber(
                self.SEARCH_RADIUS,
                self.tr("Search radius around the prior, metres (0: EXIF accuracy, else 10 m)"),
                QgsProcessingParameterNumber.Type.Double,
                defaultValue=0.0,
                minValue=0.0,
                maxValue=500.0,
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.DEVICE, self.tr("Device"), options=[self.tr(d) for d in DEVICE_LABELS], defaultValue=0
            )
        )
        self.addParameter(
            QgsProcessingParameterEnum(
                self.SOLVER,
                self.tr("Pose solver"),
                options=[self.tr(long) for _, long in SOLVER_LABELS.values()],
                defaultValue=0,
            )
        )
        for name, (_, kind, title) in self.SINKS.items():
            required = name == self.POSES
            self.addParameter(
                QgsProcessingParameterFeatureSink(
                    name, self.tr(title), kind, optional=not required, createByDefault=True
                )
            )
        self.addParameter(
            QgsProcessingParameterFeatureSink(
                self.FAILED,
                self.tr("Loc2 failed photos"),
                QgsProcessing.SourceType.TypeVector,
                optional=True,
                createByDefault=False,
            )
        )
        results = QgsProcessingParameterFileDestination(
            self.ENGINE_RESULTS,
            self.tr("Engine results GeoPackage (kept; run again with the same file to resume)"),
            fileFilter="GeoPackage (*.gpkg)",
            optional=True,
            createByDefault=False,
        )
        results.setFlags(results.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(results)
        self.addOutput(QgsProcessingOutputNumber(self.LOCALIZED_COUNT, self.tr("Photos localized")))
        self.addOutput(QgsProcessingOutputNumber(self.FAILED_COUNT, self.tr("Photos that failed")))

    # ------------------------------------------------------------------ inputs
    def _ortho(self, parameters, context) -> str:
        try:
            return orthophoto_file(self.parameterAsRasterLayer(parameters, self.ORTHOPHOTO, context))
        except LayerChoiceError as exc:
            raise QgsProcessingException(str(exc)) from None

    def _options(self, parameters, context) -> JobOptions:
        checkpoint = self.parameterAsFile(parameters, self.CHECKPOINT, context)
        model = MODELS[self.parameterAsEnum(parameters, self.MODEL, context)]
        weights = None
        if checkpoint:
            model = checkpoint
        elif model != MODEL_DEMO:
            backbone = self.parameterAsFile(parameters, self.BACKBONE_WEIGHTS, context)
            matcher = self.parameterAsFile(parameters, self.MATCHER_WEIGHTS, context)
            if not (backbone and matcher):
                raise QgsProcessingException(
                    f"The {model.upper()} model needs its published weights: give BACKBONE_WEIGHTS "
                    "(dinov2_vitl14_pretrain.pth) and MATCHER_WEIGHTS (the Loc2 matcher checkpoint), or choose "
                    "the demo model or a checkpoint file."
                )
            weights = (backbone, matcher)
        depth = DEPTH_FLAT
        if DEPTH_KEYS[self.parameterAsEnum(parameters, self.DEPTH, context)] == "folder":
            depth = self.parameterAsFile(parameters, self.DEPTH_FOLDER, context)
            if not depth or not Path(depth).is_dir():
                raise QgsProcessingException(f"Depth map folder not found: {depth or '(none given)'}")
        radius = self.parameterAsDouble(parameters, self.SEARCH_RADIUS, context)
        try:
            return JobOptions(
                model=model,
                weights=weights,
                depth=depth,
                search_radius_m=radius if radius > 0 else None,
                device=DEVICE_CHOICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
                solver=SOLVERS[self.parameterAsEnum(parameters, self.SOLVER, context)],
            )
        except OptionsError as exc:
            raise QgsProcessingException(str(exc)) from None

    def _photo_sources(self, parameters, context, feedback, workdir: Path) -> list[PhotoSource]:
        sources = []
        folder = self.parameterAsFile(parameters, self.PHOTOS, context)
        if folder:
            if not Path(folder).is_dir():
                raise QgsProcessingException(f"{folder}: the photo folder does not exist")
            sources.append(PhotoSource(images=[folder]))
        layer_source = self._layer_source(parameters, context, feedback, workdir)
        if layer_source is not None:
            sources.append(layer_source)
        if not sources:
            raise QgsProcessingException(
                "No photos to localize: give a folder of photos (PHOTOS) or a point layer of photos (PHOTO_LAYER)"
            )
        return sources

    def _layer_source(self, parameters, context, feedback, workdir: Path) -> PhotoSource | None:
        """The photo layer's photo and heading fields, written to a GeoPackage the engine reads (any QGIS
        source, memory layers included; relative photo paths stay relative to the layer's own folder)."""
        source = self.parameterAsSource(parameters, self.PHOTO_LAYER, context)
        if source is None:
            return None
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
        fields = QgsFields()
        fields.append(make_field("photo", "str"))
        fields.append(make_field("direction", "float"))
        path = workdir / "photo_layer.gpkg"
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
        return PhotoSource(
            priors_file=str(path),
            photo_field="photo",
            heading_field="direction",
            base_dir=self._layer_folder(parameters, context),
        )

    def _field(self, parameters, name: str, context) -> str | None:
        fields = self.parameterAsFields(parameters, name, context)
        return fields[0] if fields else None

    def _layer_folder(self, parameters, context) -> str | None:
        layer = self.parameterAsVectorLayer(parameters, self.PHOTO_LAYER, context)
        if layer is None or layer.providerType() != "ogr":
            return None
        path = Path(layer.source().split("|")[0])
        return str(path.parent) if path.is_file() else None

    # ------------------------------------------------------------------ run
    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802 - QGIS API
        """Main thread: which engine to run (QGIS's settings are read here, not on the task thread)."""
        self._engine = find_engine()
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 - QGIS API
        ortho = self._ortho(parameters, context)
        options = self._options(parameters, context)
        workdir = Path(tempfile.mkdtemp(prefix="loc2_", dir=QgsProcessingUtils.tempFolder()))
        sources = self._photo_sources(parameters, context, feedback, workdir)
        kept = self.parameterAsFileOutput(parameters, self.ENGINE_RESULTS, context)
        output = Path(kept) if kept else workdir / f"loc2_{uuid.uuid4().hex[:8]}.gpkg"
        worker = shared_worker()
        written: dict[str, str] = {}
        problem = ""
        for i, photos in enumerate(sources):
            mode = MODE_APPEND if kept or i > 0 else MODE_OVERWRITE  # a kept file resumes
            request = LocalizeRequest(
                ortho=ortho, photos=photos, output=OutputSpec(str(output), "gpkg", mode), options=options
            )
            outcome = worker.run_job(
                self._engine,
                protocol.CMD_LOCALIZE,
                {"request": request.to_dict()},
                lambda event: self._event(event, feedback),
                feedback.isCanceled,
            )
            if outcome.status in (OUTCOME_DONE, OUTCOME_CANCELLED) and outcome.summary.get("sources"):
                written = outcome.summary["sources"]
            elif output.exists():
                written = {role: f"{output}|layername={role}" for role in OUTPUT_ROLES}
            if outcome.status == OUTCOME_CRASHED:
                again = (
                    f"run again with the same engine results file ({output}) to go on where it stopped"
                    if kept
                    else "to be able to resume, give an 'Engine results GeoPackage' (ENGINE_RESULTS) and run again"
                )
                problem = f"{outcome.message}\nThe outputs hold the photos done; {again}."
                break
            if outcome.status not in (OUTCOME_DONE, OUTCOME_CANCELLED):
                raise QgsProcessingException(outcome.message)  # the engine refused the job (bad input, …)
            if feedback.isCanceled():
                break
        if not written:
            raise QgsProcessingException(problem or "The Loc2 engine wrote no results.")
        outputs, counts = self._copy_outputs(parameters, context, written)
        if problem:
            feedback.reportError(problem, fatalError=False)
        if feedback.isCanceled():
            feedback.pushWarning(self.tr("Cancelled: the outputs hold the photos done so far."))
        feedback.pushInfo(f"{counts['ok']} photo(s) localized, {counts['failed']} failed")
        outputs[self.LOCALIZED_COUNT] = counts["ok"]
        outputs[self.FAILED_COUNT] = counts["failed"]
        return outputs

    def _event(self, event: dict[str, Any], feedback) -> None:
        kind = event.get("event")
        if kind == "progress":
            feedback.setProgress(100.0 * float(event.get("fraction") or 0.0))
            feedback.setProgressText(progress_text(event))
        elif kind == "result":
            res = event.get("result") or {}
            name = Path(str(res.get("photo"))).name
            if res.get("ok"):
                feedback.pushInfo(
                    f"{name}: shift {res['shift_m']:.1f} m, heading {res['heading_deg']:.0f}°, "
                    f"{res['num_inliers']} inliers, confidence {res['confidence']}"
                )
            else:
                message = str(res.get("message") or res.get("status"))
                feedback.reportError(message if name in message else f"{name}: {message}", fatalError=False)

    def _copy_outputs(
        self, parameters, context, written: dict[str, str]
    ) -> tuple[dict[str, Any], dict[str, int]]:
        """Copy the engine's layers into the sinks (the requested ones) and count the photos."""
        outputs: dict[str, Any] = {}
        counts = {"ok": 0, "failed": 0}
        failed_rows: list[list[Any]] = []
        for name, (role, _, _) in self.SINKS.items():
            layer = QgsVectorLayer(written[role], role, "ogr")
            if not layer.isValid():
                raise QgsProcessingException(f"QGIS cannot read the engine's results {written[role]}")
            fields = QgsFields()
            for field in layer.fields():
                if field.name() != "fid":  # the GeoPackage's feature id, not a result attribute
                    fields.append(field)
            sink, dest = self.parameterAsSink(parameters, name, context, fields, layer.wkbType(), layer.crs())
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
                    context.layerToLoadOnCompletionDetails(dest).setPostProcessor(_POST_PROCESSORS[role])
        fields = QgsFields()
        for field_name in FAILED_FIELDS:
            fields.append(make_field(field_name, "str"))
        sink, dest = self.parameterAsSink(
            parameters, self.FAILED, context, fields, QgsWkbTypes.Type.NoGeometry
        )
        if sink is not None:
            for row in failed_rows:
                feature = QgsFeature(fields)
                feature.setAttributes(row)
                sink.addFeature(feature, QgsFeatureSink.FastInsert)
            outputs[self.FAILED] = dest
        return outputs, counts
