"""The single-photo dialog: choose an orthophoto, a photo and its prior; Loc2 runs in the engine's process.

Inputs are checked on the main thread (:meth:`Loc2Dialog.collect_job`) and copied into a plain
:class:`PhotoJob`; a :class:`LocalizePhotoTask` sends it to the engine worker in the background and the
results come back as a GeoPackage that QGIS opens with its own provider. Problems are shown whole in the
dialog's message panel (word-wrapped, scrollable, never moving the buttons), never as a traceback, and
nothing is added to the project unless the whole result is.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsMapLayerProxyModel,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.gui import (
    QgsCollapsibleGroupBox,
    QgsDoubleSpinBox,
    QgsFileWidget,
    QgsFilterLineEdit,
    QgsMapLayerComboBox,
    QgsMapToolEmitPoint,
    QgsVertexMarker,
)
from qgis.PyQt.QtCore import Qt, QTimer, pyqtSlot
from qgis.PyQt.QtGui import QPixmap
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import Loc2Error
from ..core.solver.config import SOLVER_HELP, SOLVER_LABELS
from ..core.types import (
    DEMO_CHECKPOINT,
    IMAGE_SUFFIXES,
    MODE_REFUSE,
    MODEL_DEMO,
    PUBLISHED_MODELS,
    JobOptions,
    LocalizeRequest,
    OptionsError,
    OutputSpec,
    PhotoItem,
    PhotoSource,
)
from ..core.worker import protocol
from .engine.client import (
    OUTCOME_CANCELLED,
    OUTCOME_DONE,
    OUTCOME_FAILED,
    JobOutcome,
    shutdown_shared_worker,
)
from .engine.environment import (
    NO_ENGINE_MESSAGE,
    configured_python,
    find_engine,
    set_configured_python,
)
from .engine.installer import EngineInstallTask, InstallError, has_nvidia_gpu, make_plan
from .jobs import EngineTask, progress_text
from .layers import LayerChoiceError, add_result_group, open_result_layers, orthophoto_file
from .provider import plugin_icon
from .settings import (
    DEVICE_CHOICES,
    DEVICE_LABELS,
    MODEL_CHECKPOINT,
    MODEL_CHOICES,
    MODEL_LABELS,
    default_results_folder,
    set_settings_value,
    settings_value,
)
from .styles import write_style_beside

IMAGE_FILTER = f"Images ({' '.join(f'*{s} *{s.upper()}' for s in IMAGE_SUFFIXES)});;All files (*)"
RASTER_FILTER = "Rasters (*.tif *.tiff *.vrt *.jp2 *.img *.png *.jpg);;All files (*)"
DEPTH_FILTER = "Depth maps (*.png *.npy *.tif *.tiff);;All files (*)"
WEIGHTS_FILTER = "PyTorch weights (*.pt *.pth *.bin *.ckpt);;All files (*)"
EXPORT_FILTER = "ESRI Shapefile (*.shp);;GeoPackage (*.gpkg);;GeoJSON (*.geojson);;CSV, poses only (*.csv)"

PRIOR_EXIF, PRIOR_CLICKED, PRIOR_TYPED = range(3)
HEADING_EXIF, HEADING_NONE, HEADING_TYPED = range(3)
DEPTH_FLAT, DEPTH_FILE = range(2)
WGS84 = "EPSG:4326"
FIGURE_WIDTH_PX = 720
MESSAGE_LINES = 5  # the message panel's height, in lines of text; longer messages scroll
LEVEL_COLOURS = {
    Qgis.MessageLevel.Info: "#e8f0fe",
    Qgis.MessageLevel.Success: "#e3f4e1",
    Qgis.MessageLevel.Warning: "#fff4ce",
    Qgis.MessageLevel.Critical: "#fde2e1",
}


class InputError(Loc2Error):
    """Something the user must choose or fix before a run."""


def parse_lonlat(text: str) -> tuple[float, float]:
    """``"lon, lat"`` (decimal degrees, comma or space separated) → (lon, lat); InputError when not valid."""
    parts = [p for p in text.replace(";", ",").replace(",", " ").split() if p]
    try:
        lon, lat = (float(p) for p in parts)
    except ValueError:
        raise InputError(
            f"Type the prior position as 'longitude, latitude' in decimal degrees (got {text!r})"
        ) from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90) or not (math.isfinite(lon) and math.isfinite(lat)):
        raise InputError(f"The typed prior {lon}, {lat} is not a longitude, latitude in degrees")
    return lon, lat


@dataclass
class PhotoJob:
    """Everything the background task needs, as plain values (copied on the main thread).

    ``lonlat`` None: the prior position from the photo's EXIF; ``heading_mode`` HEADING_*; ``heading_deg``
    the typed heading (degrees clockwise from true north).
    """

    photo: str
    ortho: str
    options: JobOptions
    output: str
    lonlat: tuple[float, float] | None = None
    heading_mode: int = HEADING_EXIF
    heading_deg: float | None = None
    depth_file: str | None = None
    title: str = "Loc2"
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="loc2_"))


class LocalizePhotoTask(EngineTask):
    """Inspect the photo (its EXIF prior), then localize it; the outcome of the localize job (or of the
    inspect job when that failed) is ``outcome``."""

    def __init__(self, job: PhotoJob) -> None:
        super().__init__(f"Loc2: localize {Path(job.photo).name}", protocol.CMD_LOCALIZE, {})
        self.job = job

    def run(self) -> bool:
        try:
            inspected = self.run_job(protocol.CMD_INSPECT, {"photo": self.job.photo})
            if not inspected.ok:
                self.outcome = inspected
                return False
            self.setProgress(1)
            self.fields = {"request": self.request(inspected.summary).to_dict()}
            self.outcome = self.run_job(self.cmd, self.fields, self._on_event)
        except (Loc2Error, OSError) as exc:
            self.outcome = JobOutcome(OUTCOME_FAILED, str(exc))
        except Exception as exc:  # noqa: BLE001 - an exception escaping run() can take QGIS down
            self.outcome = JobOutcome(OUTCOME_FAILED, f"unexpected error: {type(exc).__name__}: {exc}")
        return bool(self.outcome and self.outcome.ok)

    def request(self, info: dict[str, Any]) -> LocalizeRequest:
        """The engine request: the photo with its prior (EXIF, clicked or typed) as the dialog says."""
        job = self.job
        lon, lat = job.lonlat if job.lonlat is not None else (info.get("lon"), info.get("lat"))
        if lon is None or lat is None:
            raise InputError(
                f"{Path(job.photo).name} has no GPS position in its EXIF: click the camera's position on the map "
                "('Pick on map') or type it (Prior position: Typed)."
            )
        heading = {HEADING_EXIF: info.get("heading_deg"), HEADING_NONE: None}.get(
            job.heading_mode, job.heading_deg
        )
        uncertainty = info.get("horizontal_error_m") if job.lonlat is None else None
        item = PhotoItem(Path(job.photo), float(lon), float(lat), heading, uncertainty)
        options = job.options
        if job.depth_file:
            options = JobOptions.from_dict({**options.to_dict(), "depth": str(self._depth_folder())})
        output = OutputSpec(job.output, "gpkg", MODE_REFUSE)
        return LocalizeRequest(
            ortho=job.ortho, photos=PhotoSource(items=[item]), output=output, options=options
        )

    def _depth_folder(self) -> Path:
        """A folder holding the chosen depth map under the photo's name (the engine finds maps by name)."""
        depth = Path(str(self.job.depth_file))
        if not depth.is_file():
            raise InputError(f"{depth}: depth map not found")
        folder = Path(self.job.workdir) / "depth"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(depth, folder / f"{Path(self.job.photo).stem}{depth.suffix.lower()}")
        return folder


class MessagePanel(QScrollArea):
    """A fixed-height, word-wrapped, selectable message area: long messages scroll instead of being cut,
    and showing or clearing one never moves the widgets around it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("", self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.label.setContentsMargins(6, 4, 6, 4)
        self.setWidget(self.label)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        height = self.fontMetrics().lineSpacing() * MESSAGE_LINES + 12
        self.setFixedHeight(height)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.level: Any = None

    @property
    def text(self) -> str:
        return self.label.text()

    def show_message(self, text: str, level: Any) -> None:
        self.level = level
        self.label.setText(text)
        colour = LEVEL_COLOURS.get(level, "#ffffff")
        self.label.setStyleSheet(f"QLabel {{ background-color: {colour}; color: #202020; }}")

    def clear_message(self) -> None:
        self.level = None
        self.label.setText("")
        self.label.setStyleSheet("")


class Loc2Dialog(QDialog):
    """Localize one street-level photo on an orthophoto (non-modal; ``iface`` may be None in tests)."""

    def __init__(self, iface: Any = None, parent: QWidget | None = None, project: QgsProject | None = None):
        super().__init__(parent)
        self.iface = iface
        self.project = project or QgsProject.instance()
        self.canvas = iface.mapCanvas() if iface is not None else None
        self.task: LocalizePhotoTask | None = None
        self.last_task: LocalizePhotoTask | None = None
        self.last_outcome: JobOutcome | None = None
        self.last_result: dict[str, Any] | None = None
        self.last_export: dict[str, Any] | None = None
        self.group = None
        self.layers: dict[str, QgsVectorLayer] = {}
        self.clicked_lonlat: tuple[float, float] | None = None
        self.last_message: tuple[Any, str] = (None, "")
        self.photo_meta: dict[str, Any] | None = None
        self._side_tasks: list[EngineTask] = []  # inspect / describe / export, kept alive while they run
        self._workdirs: list[str] = []  # temporary folders of the runs (figures, depth copies)
        self._map_tool: QgsMapToolEmitPoint | None = None
        self._previous_tool = None
        self._marker: QgsVertexMarker | None = None
        self._engine_described = False
        self.installer: EngineInstallTask | None = None  # the running install, None otherwise
        self.setWindowTitle("Loc2 — localize a photo on an orthophoto")
        self.setWindowIcon(plugin_icon())
        self.setMinimumWidth(760)
        self.resize(1040, 900)
        self._build()
        self._restore_settings()
        self._connect_inputs()
        self._update_enabled()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        columns = QHBoxLayout()
        columns.addWidget(self._build_inputs(), 1)
        columns.addWidget(self._build_model(), 1)
        layout.addLayout(columns)
        layout.addWidget(self._build_engine())

        self.message_panel = MessagePanel(self)
        layout.addWidget(self.message_panel)

        run_row = QHBoxLayout()
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setTextVisible(True)
        self.progress.setFormat("%p%")
        self.run_button = QPushButton("Run", self)
        self.run_button.setDefault(True)
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.export_button = QPushButton("Export…", self)
        self.export_button.setToolTip("Write the result layers as shapefiles (or GeoPackage, GeoJSON, CSV)")
        self.export_button.clicked.connect(self._browse_export)
        self.close_button = QPushButton("Close", self)
        self.close_button.clicked.connect(self.close)
        run_row.addWidget(self.progress, 1)
        for button in (self.run_button, self.cancel_button, self.export_button, self.close_button):
            run_row.addWidget(button)
        layout.addLayout(run_row)

        self.figure_label = QLabel("The match figure appears here after a run.", self)
        self.figure_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.figure_label.setMinimumHeight(160)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.figure_label)
        layout.addWidget(scroll, 1)

    def _build_inputs(self) -> QGroupBox:
        inputs = QGroupBox("Inputs", self)
        form = QFormLayout(inputs)
        self.ortho_combo = QgsMapLayerComboBox(inputs)
        self.ortho_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        self.ortho_combo.setAllowEmptyLayer(True)
        self.ortho_combo.setLayer(None)
        self.ortho_button = QToolButton(inputs)
        self.ortho_button.setText("…")
        self.ortho_button.setToolTip("Choose a raster file (it is added to the map)")
        self.ortho_button.clicked.connect(self._browse_ortho)
        form.addRow("Orthophoto", self._row(self.ortho_combo, self.ortho_button))

        self.photo_widget = QgsFileWidget(inputs)
        self.photo_widget.setFilter(IMAGE_FILTER)
        self.photo_widget.fileChanged.connect(self._photo_changed)
        form.addRow("Photo", self.photo_widget)
        self.photo_info = QLabel("Choose a geotagged street-level photo (panorama or pinhole).", inputs)
        self.photo_info.setWordWrap(True)
        form.addRow("", self.photo_info)

        self.prior_combo = QComboBox(inputs)
        self.prior_combo.addItems(["Photo's EXIF GPS", "Clicked on the map", "Typed lon, lat"])
        self.prior_combo.currentIndexChanged.connect(self._update_enabled)
        self.pick_button = QPushButton("Pick on map", inputs)
        self.pick_button.setToolTip("Click the camera's approximate position on the map canvas")
        self.pick_button.clicked.connect(self.start_picking)
        form.addRow("Prior position", self._row(self.prior_combo, self.pick_button))
        self.prior_edit = QgsFilterLineEdit(inputs)
        self.prior_edit.setShowClearButton(True)
        self.prior_edit.setPlaceholderText("longitude, latitude in decimal degrees, e.g. 8.5417, 47.3769")
        form.addRow("", self.prior_edit)

        self.heading_combo = QComboBox(inputs)
        self.heading_combo.addItems(["From EXIF (if present)", "None", "Typed"])
        self.heading_combo.currentIndexChanged.connect(self._update_enabled)
        self.heading_spin = QgsDoubleSpinBox(inputs)
        self.heading_spin.setRange(0.0, 359.9)
        self.heading_spin.setDecimals(1)
        self.heading_spin.setSuffix(" °")
        self.heading_spin.setToolTip("Degrees clockwise from true north")
        form.addRow("Heading prior", self._row(self.heading_combo, self.heading_spin))
        return inputs

    def _build_model(self) -> QGroupBox:
        model = QGroupBox("Model", self)
        form = QFormLayout(model)
        self.model_combo = QComboBox(model)
        for key in MODEL_CHOICES:
            self.model_combo.addItem(MODEL_LABELS[key], key)
        self.model_combo.currentIndexChanged.connect(self._update_enabled)
        form.addRow("Model", self.model_combo)
        self.backbone_widget = QgsFileWidget(model)
        self.backbone_widget.setFilter(WEIGHTS_FILTER)
        self.matcher_widget = QgsFileWidget(model)
        self.matcher_widget.setFilter(WEIGHTS_FILTER)
        self.checkpoint_widget = QgsFileWidget(model)
        self.checkpoint_widget.setFilter(WEIGHTS_FILTER)
        form.addRow("Backbone weights", self.backbone_widget)
        form.addRow("Matcher weights", self.matcher_widget)
        form.addRow("Checkpoint", self.checkpoint_widget)
        self._weight_widgets = {
            "weights/backbone": self.backbone_widget,
            "weights/matcher": self.matcher_widget,
            "weights/checkpoint": self.checkpoint_widget,
        }

        self.depth_combo = QComboBox(model)
        self.depth_combo.addItems(["Flat ground (no weights)", "Depth map file"])
        self.depth_combo.currentIndexChanged.connect(self._update_enabled)
        self.depth_widget = QgsFileWidget(model)
        self.depth_widget.setFilter(DEPTH_FILTER)
        form.addRow("Depth", self.depth_combo)
        form.addRow("Depth map file", self.depth_widget)

        self.radius_spin = QgsDoubleSpinBox(model)
        self.radius_spin.setRange(0.0, 500.0)
        self.radius_spin.setDecimals(1)
        self.radius_spin.setSuffix(" m")
        self.radius_spin.setSpecialValueText("Automatic (EXIF accuracy, else 10 m)")
        self.radius_spin.setClearValue(0.0)
        form.addRow("Search radius", self.radius_spin)

        self.solver_combo = QComboBox(model)
        for key, (label, _) in SOLVER_LABELS.items():
            self.solver_combo.addItem(label, key)
        self.solver_combo.setToolTip(SOLVER_HELP)
        form.addRow("Pose solver", self.solver_combo)

        self.device_combo = QComboBox(model)
        self.device_combo.addItems(list(DEVICE_LABELS))
        self.device_combo.currentIndexChanged.connect(self.describe_engine)
        form.addRow("Device", self.device_combo)
        self.matches_check = QCheckBox("Add the top matches layer", model)
        form.addRow("", self.matches_check)
        self.results_widget = QgsFileWidget(model)
        self.results_widget.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.results_widget.setToolTip("Each run writes a GeoPackage here; the map layers read it")
        form.addRow("Results folder", self.results_widget)
        return model

    def _build_engine(self) -> QgsCollapsibleGroupBox:
        box = QgsCollapsibleGroupBox("Engine", self)
        box.setCollapsed(find_engine() is not None)  # open it where the engine still has to be installed
        self.engine_box = box
        form = QFormLayout(box)
        self.engine_label = QLabel(
            NO_ENGINE_MESSAGE if find_engine() is None else "Checking the engine…", box
        )
        self.engine_label.setWordWrap(True)
        form.addRow("Status", self.engine_label)
        self.engine_python_widget = QgsFileWidget(box)
        self.engine_python_widget.setToolTip(
            "A Python interpreter that has the engine's packages (torch, rasterio, …); empty: the managed "
            "environment that 'Install engine' makes in your QGIS profile"
        )
        form.addRow("Engine Python", self.engine_python_widget)
        self.install_button = QPushButton("Install engine", box)
        self.install_button.setToolTip("Make a Python environment with PyTorch for Loc2 in your QGIS profile")
        self.install_button.clicked.connect(self.install_engine)
        self.check_button = QPushButton("Check engine", box)
        self.check_button.clicked.connect(self.describe_engine)
        self.cuda_check = QCheckBox("with CUDA (NVIDIA GPU)", box)
        form.addRow("", self._row(self.install_button, self.cuda_check, self.check_button))
        self.install_log = QPlainTextEdit(box)
        self.install_log.setReadOnly(True)
        self.install_log.setMaximumBlockCount(2000)
        self.install_log.setFixedHeight(110)
        self.install_log.setVisible(False)
        form.addRow(self.install_log)
        return box

    @staticmethod
    def _row(*widgets: QWidget) -> QWidget:
        row = QWidget()
        box = QHBoxLayout(row)
        box.setContentsMargins(0, 0, 0, 0)
        for i, widget in enumerate(widgets):
            box.addWidget(widget, 1 if i == 0 else 0)
        return row

    # ------------------------------------------------------------------ state
    def _restore_settings(self) -> None:
        """Weight paths, the model choice and folders of the last session (QgsSettings ``loc2/...``)."""
        for key, widget in self._weight_widgets.items():
            widget.setFilePath(settings_value(key))
            widget.fileChanged.connect(partial(set_settings_value, key))  # remembered from now on
        model = settings_value("model", MODEL_DEMO)
        self.model_combo.setCurrentIndex(max(self.model_combo.findData(model), 0))
        self.results_widget.setFilePath(settings_value("results_folder", str(default_results_folder())))
        self.results_widget.fileChanged.connect(partial(set_settings_value, "results_folder"))
        self.engine_python_widget.setFilePath(configured_python())
        self.engine_python_widget.fileChanged.connect(self._engine_python_changed)
        self.cuda_check.setChecked(has_nvidia_gpu())
        self._preselect_ortho()

    def _connect_inputs(self) -> None:
        """Any change of an input clears a message about the inputs (it may be fixed now)."""
        for signal in (
            self.ortho_combo.layerChanged,
            self.photo_widget.fileChanged,
            self.prior_combo.currentIndexChanged,
            self.prior_edit.textChanged,
            self.heading_combo.currentIndexChanged,
            self.model_combo.currentIndexChanged,
            self.backbone_widget.fileChanged,
            self.matcher_widget.fileChanged,
            self.checkpoint_widget.fileChanged,
            self.depth_combo.currentIndexChanged,
            self.depth_widget.fileChanged,
            self.engine_python_widget.fileChanged,
        ):
            signal.connect(self._input_changed)

    def _input_changed(self, *_args) -> None:
        if self.message_panel.level == Qgis.MessageLevel.Critical and self.task is None:
            self.clear_message()

    def _preselect_ortho(self) -> None:
        """With no orthophoto chosen, the project's only raster layer is."""
        if self.ortho_combo.currentLayer() is not None or self.ortho_combo.currentText().strip():
            return
        rasters = [lyr for lyr in self.project.mapLayers().values() if isinstance(lyr, QgsRasterLayer)]
        if len(rasters) == 1:
            self.ortho_combo.setLayer(rasters[0])

    @property
    def model_key(self) -> str:
        return str(self.model_combo.currentData())

    @property
    def device(self) -> str:
        return DEVICE_CHOICES[self.device_combo.currentIndex()]

    def _update_enabled(self, *_args) -> None:
        running = self.task is not None
        installing = self.installer is not None
        key = self.model_key
        self.backbone_widget.setEnabled(key in PUBLISHED_MODELS)
        self.matcher_widget.setEnabled(key in PUBLISHED_MODELS)
        self.checkpoint_widget.setEnabled(key == MODEL_CHECKPOINT)
        self.pick_button.setEnabled(self.canvas is not None and not running)
        self.prior_edit.setEnabled(self.prior_combo.currentIndex() == PRIOR_TYPED)
        self.heading_spin.setEnabled(self.heading_combo.currentIndex() == HEADING_TYPED)
        self.depth_widget.setEnabled(self.depth_combo.currentIndex() == DEPTH_FILE)
        self.run_button.setEnabled(not running and not installing)
        self.cancel_button.setEnabled(running or installing)
        self.install_button.setEnabled(not running and not installing)
        self.export_button.setEnabled(bool(self.last_result and self.last_result.get("ok")) and not running)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self._preselect_ortho()
        if not self._engine_described:
            QTimer.singleShot(0, self.describe_engine)

    def show_message(self, text: str, level: Any = Qgis.MessageLevel.Info, duration: int = 0) -> None:
        """A message in the dialog's panel (kept in ``last_message`` for tests); ``duration`` seconds > 0
        clears it later unless another message replaced it."""
        self.last_message = (level, text)
        self.message_panel.show_message(text, level)
        if duration > 0:
            QTimer.singleShot(duration * 1000, partial(self._clear_if, text))

    def _clear_if(self, text: str) -> None:
        if self.message_panel.text == text:
            self.clear_message()

    def clear_message(self) -> None:
        self.last_message = (None, "")
        self.message_panel.clear_message()

    # ------------------------------------------------------------------ engine
    def _start_side_task(self, task: EngineTask, on_done) -> EngineTask:
        self._side_tasks.append(task)

        def finished(outcome: JobOutcome) -> None:
            if task in self._side_tasks:
                self._side_tasks.remove(task)
            on_done(outcome)

        task.done.connect(finished)
        QgsApplication.taskManager().addTask(task)
        return task

    def describe_engine(self, *_args) -> None:
        """Ask the engine what it runs on (status line); says how to install it when there is none."""
        self._engine_described = True
        location = find_engine()
        if location is None:
            self.engine_label.setText(NO_ENGINE_MESSAGE)
            return
        self.engine_label.setText(f"Starting the engine ({location.python})…")
        task = EngineTask("Loc2: check the engine", protocol.CMD_DESCRIBE, {"device": self.device})
        self._start_side_task(task, self._described)

    def _described(self, outcome: JobOutcome) -> None:
        if outcome.ok:
            info = outcome.summary
            self.engine_label.setText(
                f"Python {info.get('python')}, PyTorch {info.get('torch')}; runs on: {info.get('device')} "
                f"({info.get('executable')})"
            )
        else:
            self.engine_label.setText(outcome.message)

    def _engine_python_changed(self, path: str) -> None:
        set_configured_python(path)
        shutdown_shared_worker()  # the next job starts the chosen engine
        self.describe_engine()

    def install_engine(self, *_args, confirm: bool = True, base_python: str = "") -> None:
        """Make the managed engine environment (asks first; ``confirm=False`` in tests)."""
        if self.installer is not None:
            return
        try:
            plan = make_plan(base_python, cuda=self.cuda_check.isChecked())
        except InstallError as exc:
            self.show_message(str(exc), Qgis.MessageLevel.Critical)
            return
        if confirm:
            answer = QMessageBox.question(
                self, "Install the Loc2 engine", plan.describe() + "\n\nInstall now?"
            )
            if answer != QMessageBox.StandardButton.Yes:
                return
        shutdown_shared_worker()
        task = EngineInstallTask(plan)
        task.line.connect(self.install_log.appendPlainText)
        task.step.connect(self._install_step)
        task.done.connect(self._installed)
        self.installer = task
        self.install_log.clear()
        self.install_log.setVisible(True)
        self.engine_box.setCollapsed(False)
        self.show_message(plan.describe(), Qgis.MessageLevel.Info)
        self._update_enabled()
        QgsApplication.taskManager().addTask(task)

    def _install_step(self, label: str, index: int, count: int) -> None:
        self.progress.setValue(int(100 * index / count))
        self.progress.setFormat(f"%p% — {label}")
        self.engine_label.setText(f"{label}…")

    def _installed(self, ok: bool, message: str) -> None:  # noqa: FBT001 - signal signature
        size = self.installer.downloaded_mb if self.installer is not None else 0.0
        self.installer = None
        self.progress.setValue(100 if ok else 0)
        self.progress.setFormat("%p%")
        self._update_enabled()
        if ok:
            downloaded = f" ({size:,.0f} MB downloaded)" if size else ""
            self.show_message(message + downloaded, Qgis.MessageLevel.Success)
            self.engine_python_widget.setFilePath("")  # the managed environment from now on
            self.describe_engine()
        else:
            self.show_message(message, Qgis.MessageLevel.Critical)

    # ------------------------------------------------------------------ inputs
    def _browse_ortho(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Orthophoto", settings_value("last_folder"), RASTER_FILTER
        )
        if path:
            self.set_ortho_file(path)

    def set_ortho_file(self, path: str) -> QgsRasterLayer | None:
        """Add a raster file to the map and choose it (a message names the file when QGIS cannot read it)."""
        layer = QgsRasterLayer(path, Path(path).stem)
        if not layer.isValid():
            self.show_message(f"{path}: QGIS cannot read this file as a raster", Qgis.MessageLevel.Critical)
            return None
        self.project.addMapLayer(layer)
        self.ortho_combo.setLayer(layer)
        set_settings_value("last_folder", str(Path(path).parent))
        return layer

    def _photo_changed(self, path: str) -> None:
        self.photo_meta = None
        if not path:
            self.photo_info.setText("Choose a geotagged street-level photo (panorama or pinhole).")
            return
        if find_engine() is None:
            self.photo_info.setText("(install the engine to read the photo's details)")
            return
        self.photo_info.setText("Reading the photo…")
        task = EngineTask(f"Loc2: read {Path(path).name}", protocol.CMD_INSPECT, {"photo": path})
        self._start_side_task(task, partial(self._inspected, path))

    def _inspected(self, path: str, outcome: JobOutcome) -> None:
        if self.photo_widget.filePath().strip() != path:
            return  # another photo was chosen meanwhile
        if not outcome.ok:
            self.photo_info.setText(outcome.message)
            return
        meta = self.photo_meta = outcome.summary
        kind = "panorama" if meta.get("panorama") else "pinhole photo"
        has_gps = meta.get("lat") is not None and meta.get("lon") is not None
        where = f"GPS {meta['lat']:.6f}, {meta['lon']:.6f}" if has_gps else "no GPS position in EXIF"
        heading = f", heading {meta['heading_deg']:.0f}°" if meta.get("heading_deg") is not None else ""
        self.photo_info.setText(f"{meta.get('width')}×{meta.get('height')} {kind}; {where}{heading}")

    def start_picking(self) -> None:
        """Let the user click the prior position on the map canvas."""
        if self.canvas is None:
            self.show_message(
                "There is no map canvas to click on; type the position instead.", Qgis.MessageLevel.Warning
            )
            return
        if self._map_tool is None:
            self._map_tool = QgsMapToolEmitPoint(self.canvas)
            self._map_tool.canvasClicked.connect(self._canvas_clicked)
        self._previous_tool = self.canvas.mapTool()
        self.canvas.setMapTool(self._map_tool)
        self.show_message("Click the camera's approximate position on the map.", Qgis.MessageLevel.Info, 5)

    def _canvas_clicked(self, point: QgsPointXY, _button=None) -> None:
        crs = self.canvas.mapSettings().destinationCrs()
        self.set_clicked_prior(point, crs)
        if self._previous_tool is not None:
            self.canvas.setMapTool(self._previous_tool)
        elif self._map_tool is not None:
            self.canvas.unsetMapTool(self._map_tool)

    def set_clicked_prior(self, point: QgsPointXY, crs: QgsCoordinateReferenceSystem) -> None:
        """Use a map point (in ``crs``) as the prior position."""
        transform = QgsCoordinateTransform(crs, QgsCoordinateReferenceSystem(WGS84), self.project)
        lonlat = transform.transform(point)
        self.clicked_lonlat = (lonlat.x(), lonlat.y())
        self.prior_combo.setCurrentIndex(PRIOR_CLICKED)
        self.prior_edit.setText(f"{lonlat.x():.7f}, {lonlat.y():.7f}")
        if self.canvas is not None:
            if self._marker is None:
                self._marker = QgsVertexMarker(self.canvas)
                self._marker.setIconType(QgsVertexMarker.IconType.ICON_CROSS)
                self._marker.setIconSize(14)
                self._marker.setPenWidth(2)
            self._marker.setCenter(point)

    def _ortho_path(self) -> str:
        try:
            return orthophoto_file(self.ortho_combo.currentLayer())
        except LayerChoiceError as exc:
            raise InputError(str(exc)) from None

    def _prior_lonlat(self, photo: str) -> tuple[float, float] | None:
        """The clicked or typed prior, or None for the photo's EXIF (checked when already read)."""
        mode = self.prior_combo.currentIndex()
        if mode == PRIOR_EXIF:
            meta = self.photo_meta
            if meta is not None and (meta.get("lat") is None or meta.get("lon") is None):
                raise InputError(
                    f"{Path(photo).name} has no GPS position in its EXIF: click the camera's position on "
                    "the map ('Pick on map') or type it (Prior position: Typed)."
                )
            return None
        if mode == PRIOR_CLICKED:
            if self.clicked_lonlat is None:
                raise InputError("Click the camera's approximate position on the map first ('Pick on map').")
            return self.clicked_lonlat
        return parse_lonlat(self.prior_edit.text())

    def _model_options(self) -> dict[str, Any]:
        key = self.model_key
        if key == MODEL_DEMO:
            if not DEMO_CHECKPOINT.is_file():
                raise InputError(
                    f"The demo model is not installed ({DEMO_CHECKPOINT} is missing): choose a Loc2 "
                    "checkpoint file or the published VIGOR/KITTI weights."
                )
            return {"model": MODEL_DEMO, "weights": None}
        if key == MODEL_CHECKPOINT:
            path = self.checkpoint_widget.filePath().strip()
            if not path or not Path(path).is_file():
                raise InputError(f"Choose a Loc2 checkpoint file (not found: {path or 'none chosen'}).")
            return {"model": path, "weights": None}
        backbone = self.backbone_widget.filePath().strip()
        matcher = self.matcher_widget.filePath().strip()
        for what, path in (("backbone (dinov2_vitl14_pretrain.pth)", backbone), ("matcher", matcher)):
            if not path or not Path(path).is_file():
                raise InputError(
                    f"The {key.upper()} model needs its published weights: choose the {what} weights file "
                    f"(not found: {path or 'none chosen'})."
                )
        return {"model": key, "weights": (backbone, matcher)}

    def _output_path(self, photo: str) -> str:
        folder = Path(self.results_widget.filePath().strip() or default_results_folder())
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"The results folder {folder} cannot be made: {exc}") from None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = folder / f"{Path(photo).stem}_{stamp}.gpkg"
        n = 1
        while path.exists():
            n += 1
            path = folder / f"{Path(photo).stem}_{stamp}_{n}.gpkg"
        return str(path)

    def collect_job(self) -> PhotoJob:
        """Check every input on the main thread and copy it into a PhotoJob; raises InputError."""
        if find_engine() is None:
            raise InputError(NO_ENGINE_MESSAGE)
        ortho = self._ortho_path()
        photo = self.photo_widget.filePath().strip()
        if not photo:
            raise InputError("Choose the photo to localize.")
        if not Path(photo).is_file():
            raise InputError(f"{photo}: the photo does not exist")
        lonlat = self._prior_lonlat(photo)
        depth_file = None
        if self.depth_combo.currentIndex() == DEPTH_FILE:
            depth_file = self.depth_widget.filePath().strip()
            if not depth_file or not Path(depth_file).is_file():
                raise InputError(
                    f"Choose the photo's depth map file (not found: {depth_file or 'none chosen'})."
                )
        radius = float(self.radius_spin.value())
        try:
            options = JobOptions(
                **self._model_options(),
                search_radius_m=radius if radius > 0 else None,
                device=self.device,
                solver=str(self.solver_combo.currentData()),
                include_matches=self.matches_check.isChecked(),
            )
        except OptionsError as exc:
            raise InputError(str(exc)) from None
        job = PhotoJob(
            photo=photo,
            ortho=ortho,
            options=options,
            output=self._output_path(photo),
            lonlat=lonlat,
            heading_mode=self.heading_combo.currentIndex(),
            heading_deg=float(self.heading_spin.value()) % 360.0,
            depth_file=depth_file,
            title=f"Loc2 — {Path(photo).name}",
        )
        job.options.figures_dir = Path(job.workdir) / "figures"
        return job

    # ------------------------------------------------------------------ run
    def start(self) -> LocalizePhotoTask | None:
        """Check the inputs and start the background task; returns it (None when the inputs are bad)."""
        if self.task is not None:
            return None
        try:
            job = self.collect_job()
        except Loc2Error as exc:
            self.show_message(str(exc), Qgis.MessageLevel.Critical)
            return None
        set_settings_value("model", self.model_key)
        self._workdirs.append(job.workdir)
        task = LocalizePhotoTask(job)
        task.engine_event.connect(self._task_event)  # a slot of this dialog: queued to the main thread
        task.done.connect(self._task_done)
        self.task = task
        self.progress.setValue(0)
        self.progress.setFormat("%p% — starting the engine")
        self.clear_message()
        self._update_enabled()
        QgsApplication.taskManager().addTask(task)
        return task

    @pyqtSlot(object)
    def _task_event(self, event: dict[str, Any]) -> None:
        if event.get("event") == "progress":
            self.progress.setValue(int(100 * float(event.get("fraction") or 0.0)))
            self.progress.setFormat(f"%p% — {progress_text(event)}")

    def cancel(self) -> None:
        """Stop the running task (within a second) or the engine installation."""
        if self.installer is not None:
            self.installer.cancel()
            return
        if self.task is not None:
            self.show_message("Cancelling…", Qgis.MessageLevel.Info)
            self.task.cancel()

    def _task_done(self, outcome: JobOutcome) -> None:
        task = self.task or self.sender()
        self.task = None
        self.last_task = task
        self.last_outcome = outcome
        self._forget_workdirs(keep=task.job.workdir)  # the figure shown now is in this run's folder
        self.progress.setFormat("%p%")
        result = outcome.results[0] if outcome.results else None
        if outcome.status == OUTCOME_DONE and result is not None and result.get("ok"):
            self.last_result = {**result, "sources": outcome.summary.get("sources", {})}
            try:
                self._add_layers(task.job, self.last_result["sources"])
            except Exception as exc:  # noqa: BLE001 - reported in the dialog, never a traceback window
                self.last_result = None
                self.progress.setValue(0)
                self.show_message(f"The result layers could not be added: {exc}", Qgis.MessageLevel.Critical)
            else:
                self.progress.setValue(100)
                self._show_result(self.last_result)
        elif outcome.status == OUTCOME_CANCELLED:
            self.progress.setValue(0)
            self.show_message("Cancelled: nothing was added to the project.", Qgis.MessageLevel.Info, 5)
        else:
            self.progress.setValue(0)
            message = outcome.message
            if outcome.status == OUTCOME_DONE and result is not None:
                message = result.get("message") or f"{Path(result['photo']).name}: {result.get('status')}"
            self.show_message(message or "The localization failed.", Qgis.MessageLevel.Critical)
        self._update_enabled()

    def _forget_workdirs(self, keep: str | None = None) -> None:
        """Remove the temporary folders (figures, depth copies) of earlier runs, all but ``keep``."""
        for workdir in [w for w in self._workdirs if w != keep]:
            shutil.rmtree(workdir, ignore_errors=True)
            self._workdirs.remove(workdir)

    def _add_layers(self, job: PhotoJob, sources: dict[str, str]) -> None:
        built = open_result_layers(sources)
        self.group = add_result_group(self.project, job.title, built)
        self.layers = dict(built)

    def _show_result(self, res: dict[str, Any]) -> None:
        ratio = res.get("inlier_ratio") or 0.0
        self.show_message(
            f"{Path(res['photo']).name}: moved {res['shift_m']:.1f} m, heading {res['heading_deg']:.0f}° "
            f"(clockwise from north), {res['num_inliers']} inliers ({100 * ratio:.1f} %), confidence "
            f"{res['confidence']}. Layers in the group '{self.group.name() if self.group else ''}'.",
            Qgis.MessageLevel.Success,
        )
        self.show_figure(res.get("figure"))
        self.zoom_to_result()

    def show_figure(self, path: str | None) -> None:
        pixmap = QPixmap(path) if path else QPixmap()
        if pixmap.isNull():
            self.figure_label.setPixmap(QPixmap())
            self.figure_label.setText("No match figure.")
            return
        if pixmap.width() > FIGURE_WIDTH_PX:
            pixmap = pixmap.scaledToWidth(FIGURE_WIDTH_PX, Qt.TransformationMode.SmoothTransformation)
        self.figure_label.setPixmap(pixmap)

    def zoom_to_result(self) -> None:
        """Zoom the map canvas to the result layers (no-op without a canvas)."""
        if self.canvas is None or not self.layers:
            return
        extent = QgsRectangle()
        extent.setMinimal()
        crs = None
        for layer in self.layers.values():
            if layer.featureCount():
                extent.combineExtentWith(layer.extent())
                crs = layer.crs()
        if crs is None or extent.isEmpty():
            return
        transform = QgsCoordinateTransform(crs, self.canvas.mapSettings().destinationCrs(), self.project)
        extent = transform.transformBoundingBox(extent)
        extent.scale(1.3)
        self.canvas.setExtent(extent)
        self.canvas.refresh()

    # ------------------------------------------------------------------ export
    def _browse_export(self) -> None:
        start = str(Path(settings_value("last_folder")) / "loc2_result.shp")
        path, _ = QFileDialog.getSaveFileName(self, "Export the result layers", start, EXPORT_FILTER)
        if path:
            self.export_results(path)

    def export_results(self, path: str) -> EngineTask | None:
        """Write the last result in the format of ``path``'s suffix (``.shp``: one shapefile per layer) with
        a ``.qml`` style beside each layer file; the message says where (None when there is nothing)."""
        res = self.last_result
        if not res or not res.get("ok"):
            self.show_message(
                "Run a localization first: there is nothing to export.", Qgis.MessageLevel.Warning
            )
            return None
        source = str(res["sources"]["poses"]).split("|")[0]
        task = EngineTask(
            "Loc2: export", protocol.CMD_EXPORT, {"source": source, "target": path, "format": None}
        )
        self.show_message(f"Exporting to {path}…", Qgis.MessageLevel.Info)
        return self._start_side_task(task, self._exported)

    def _exported(self, outcome: JobOutcome) -> None:
        if not outcome.ok:
            self.show_message(outcome.message or "The export failed.", Qgis.MessageLevel.Critical)
            return
        sources: dict[str, str] = outcome.summary.get("sources", {})
        try:
            for role, source in sources.items():
                write_style_beside(source, role)
        except OSError as exc:
            self.show_message(
                f"Exported, but a style file could not be written: {exc}", Qgis.MessageLevel.Warning
            )
            return
        files = sorted({Path(s.split("|")[0]).name for s in sources.values()})
        folder = Path(outcome.summary.get("output", "")).parent
        self.last_export = outcome.summary
        self.show_message(
            f"Exported to {folder}: {', '.join(files)} (with .qml styles)", Qgis.MessageLevel.Success, 15
        )

    # ------------------------------------------------------------------ teardown
    def _stop_tasks(self, wait_ms: int = 5000) -> None:
        """Cancel this dialog's running tasks and wait for them to end: a task thread still running while
        QGIS exits crashes it (seen with QGIS 3.40). Cancelled, a task ends within about a second."""
        tasks = [task for task in (self.task, self.installer, *self._side_tasks) if task is not None]
        for task in tasks:
            with contextlib.suppress(RuntimeError):  # already deleted by the task manager
                task.cancel()
        for task in tasks:
            with contextlib.suppress(RuntimeError):
                task.waitForFinished(wait_ms)

    def shutdown(self) -> None:
        """Plugin unload: stop the running tasks or install, restore the map tool, remove the marker."""
        self._stop_tasks()
        self._forget_workdirs()
        if self.canvas is not None:
            if self._map_tool is not None and self.canvas.mapTool() is self._map_tool:
                self.canvas.unsetMapTool(self._map_tool)
            if self._marker is not None:
                self.canvas.scene().removeItem(self._marker)
                self._marker = None
