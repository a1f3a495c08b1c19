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
    QgsCoordinateReferenceSystem,
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
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
)
from qgis.PyQt.QtCore import QCoreApplication

from ...core.solver.config import SOLVER_HELP, SOLVER_LABELS, SOLVERS
from ...core.types import (
    DEPTH_FLAT,
    LAYER_INLIERS,
    LAYER_OUTLINES,
    LAYER_POSES,
    LAYER_SHIFTS,
    MODE_APPEND,
    MODE_OVERWRITE,
    MODEL_DEMO,
    MODELS,
    JobOptions,
    LocalizeRequest,
    OptionsError,
    OutputSpec,
    PhotoSource,
)
from ...core.worker import protocol
from ..engine.client import (
    OUTCOME_CANCELLED,
    OUTCOME_CRASHED,
    OUTCOME_DONE,
    OUTCOME_NO_ENGINE,
    shared_worker,
)
from ..engine.environment import find_engine
from ..icon import plugin_icon
from ..jobs import progress_text
from ..layers import LayerChoiceError
from ..ortho_window import WindowError, folder_priors, layer_priors, orthophoto_choice, write_windows
from ..settings import (
    DEVICE_CHOICES,
    DEVICE_LABELS,
    MODEL_LABELS,
    PRECISION_CHOICES,
    PRECISION_HELP,
    PRECISION_LABELS,
)
from .outputs import copy_outputs
from .photo_layer import HEADING_FIELD, PHOTO_FIELD, layer_folder, write_photo_layer

DEPTH_KEYS = (DEPTH_FLAT, "folder")
# the engine's layers the algorithm copies into its outputs
OUTPUT_ROLES = (LAYER_POSES, LAYER_INLIERS, LAYER_OUTLINES, LAYER_SHIFTS)

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

Precision of the backbone (advanced): {PRECISION_HELP}

Outputs, in the orthophoto's CRS: poses (one point per photo, heading in degrees clockwise from true north; \
a photo without a pose sits at its prior with its status and message; each records the model, depth, \
solver and precision that made it), inliers, ground outlines, shifts (prior → corrected) and optionally a \
table of the photos that failed. A photo that fails is reported and \
the others go on; Cancel keeps the photos already done.

Confidence: each pose's inlier ratio (inl_ratio) gives its class (confidence: high, medium, low), drawn \
green, amber and red. The thresholds are the model's own, calibrated on held-out photos (the published \
weights use the paper's 15 % and 40 %)."""


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
    PRECISION = "PRECISION"
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
        return plugin_icon()

    # ------------------------------------------------------------------ parameters
    def initAlgorithm(self, config=None):  # noqa: N802 - QGIS API
        self._add_photo_parameters()
        self._add_model_parameters()
        self._add_output_parameters()

    def _add_photo_parameters(self) -> None:
        """The orthophoto and the photos: a folder and/or a point layer with its path and heading fields."""
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

    def _add_model_parameters(self) -> None:
        """The model and its weights, depth, search radius, device and pose solver."""
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
        precision = QgsProcessingParameterEnum(
            self.PRECISION,
            self.tr("Precision of the backbone"),
            options=[self.tr(label) for label in PRECISION_LABELS],
            defaultValue=0,
        )
        precision.setHelp(self.tr(PRECISION_HELP))
        precision.setFlags(precision.flags() | QgsProcessingParameterDefinition.Flag.FlagAdvanced)
        self.addParameter(precision)

    def _add_output_parameters(self) -> None:
        """The result layers (only POSES required), the failed photos, the kept engine results, the counts."""
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
    def _ortho(self, parameters, context, feedback, options: JobOptions, workdir: Path) -> str:
        """The orthophoto file; for a layer the engine cannot open (a web service), the windows around the
        photos' priors read through the layer's provider (``ortho_window``)."""
        layer = self.parameterAsRasterLayer(parameters, self.ORTHOPHOTO, context)
        try:
            ortho, ortho_layer = orthophoto_choice(layer, context.transformContext())
            if ortho_layer is None:
                return ortho
            option_m = options.search_radius_m
            priors = []
            folder = self.parameterAsFile(parameters, self.PHOTOS, context)
            if folder and Path(folder).is_dir():
                priors += folder_priors(folder, lambda photo: self._inspect(photo, feedback), option_m)
            source = self.parameterAsSource(parameters, self.PHOTO_LAYER, context)
            if source is not None:
                priors += layer_priors(source, option_m, context.transformContext())
            feedback.pushInfo(f"Reading {layer.name()} around {len(priors)} photo(s)")
            folder_out = workdir / "orthophoto"
            return str(
                write_windows(ortho_layer, priors, options.model_name, folder_out, feedback.isCanceled)
            )
        except (LayerChoiceError, WindowError) as exc:
            raise QgsProcessingException(str(exc)) from None

    def _inspect(self, photo: str, feedback) -> dict | None:
        """The engine's ``inspect`` of one photo (its EXIF prior), None when the photo cannot be read (the
        localization reports it); QgsProcessingException when the engine itself could not run, so that an
        engine that cannot start is not mistaken for photos without a position."""
        outcome = shared_worker().run_job(
            self._engine, protocol.CMD_INSPECT, {"photo": photo}, None, feedback.isCanceled
        )
        if outcome.status in (OUTCOME_NO_ENGINE, OUTCOME_CRASHED):
            raise QgsProcessingException(f"The Loc2 engine could not read {photo}: {outcome.message}")
        return outcome.summary if outcome.ok else None

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
                precision=PRECISION_CHOICES[self.parameterAsEnum(parameters, self.PRECISION, context)],
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
        path = workdir / "photo_layer.gpkg"
        write_photo_layer(source, photo_field, heading_field, path)
        return PhotoSource(
            priors_file=str(path),
            photo_field=PHOTO_FIELD,
            heading_field=HEADING_FIELD,
            base_dir=layer_folder(self.parameterAsVectorLayer(parameters, self.PHOTO_LAYER, context)),
        )

    def _field(self, parameters, name: str, context) -> str | None:
        fields = self.parameterAsFields(parameters, name, context)
        return fields[0] if fields else None

    # ------------------------------------------------------------------ run
    def prepareAlgorithm(self, parameters, context, feedback):  # noqa: N802 - QGIS API
        """Main thread: which engine to run (QGIS's settings are read here, not on the task thread)."""
        self._engine = find_engine()
        return True

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 - QGIS API
        options = self._options(parameters, context)
        workdir = Path(tempfile.mkdtemp(prefix="loc2_", dir=QgsProcessingUtils.tempFolder()))
        ortho = self._ortho(parameters, context, feedback, options, workdir)
        sources = self._photo_sources(parameters, context, feedback, workdir)
        kept = self.parameterAsFileOutput(parameters, self.ENGINE_RESULTS, context)
        output = Path(kept) if kept else workdir / f"loc2_{uuid.uuid4().hex[:8]}.gpkg"
        written, problem = self._localize(ortho, options, sources, output, bool(kept), feedback)
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

    def _localize(
        self, ortho: str, options: JobOptions, sources: list[PhotoSource], output: Path, kept: bool, feedback
    ) -> tuple[dict[str, str], str]:
        """Run the engine on each photo source into ``output`` (a kept file resumes); returns the layers
        written (role → OGR source) and, when the engine crashed, what happened and how to go on."""
        written: dict[str, str] = {}
        for i, photos in enumerate(sources):
            mode = MODE_APPEND if kept or i > 0 else MODE_OVERWRITE
            request = LocalizeRequest(
                ortho=ortho, photos=photos, output=OutputSpec(str(output), "gpkg", mode), options=options
            )
            outcome = shared_worker().run_job(
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
                return written, f"{outcome.message}\nThe outputs hold the photos done; {again}."
            if outcome.status not in (OUTCOME_DONE, OUTCOME_CANCELLED):
                raise QgsProcessingException(outcome.message)  # the engine refused the job (bad input, …)
            if feedback.isCanceled():
                break
        return written, ""

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
        """Copy the engine's layers into the requested sinks and count the photos (``outputs.py``)."""

        def make_sink(name: str, fields, wkb_type, crs):
            crs = crs if crs is not None else QgsCoordinateReferenceSystem()
            return self.parameterAsSink(parameters, name, context, fields, wkb_type, crs)

        sinks = {name: role for name, (role, _, _) in self.SINKS.items()}
        return copy_outputs(make_sink, context, written, sinks, self.FAILED)
