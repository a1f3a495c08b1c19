"""The single-photo dialog: choose an orthophoto, a photo and its prior, run Loc2 in the background.

Inputs are checked on the main thread (:meth:`Loc2Dialog.collect_spec`) and copied into a plain
:class:`~loc2.ui.task.JobSpec`; a :class:`~loc2.ui.task.LocalizeTask` does the work. Problems are shown in
the dialog's message bar, never as a traceback window, and nothing is added to the project unless the
whole result is.
"""

from __future__ import annotations

import math
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
)
from qgis.gui import (
    QgsDoubleSpinBox,
    QgsFileWidget,
    QgsMapLayerComboBox,
    QgsMapToolEmitPoint,
    QgsMessageBar,
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
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ..core.errors import Loc2Error
from ..core.solvers import SOLVER_HELP, SOLVER_LABELS
from .dependencies import missing_message, missing_packages
from .models import (
    DEMO_CHECKPOINT,
    DEVICE_CHOICES,
    MODEL_CHOICES,
    MODEL_LABELS,
    set_settings_value,
    settings_value,
)
from .provider import plugin_icon
from .task import JobSpec, LocalizeTask

IMAGE_FILTER = "Images (*.jpg *.jpeg *.JPG *.JPEG *.png *.tif *.tiff *.webp);;All files (*)"
RASTER_FILTER = "Rasters (*.tif *.tiff *.vrt *.jp2 *.img *.png *.jpg);;All files (*)"
DEPTH_FILTER = "Depth maps (*.png *.npy *.tif *.tiff);;All files (*)"
WEIGHTS_FILTER = "PyTorch weights (*.pt *.pth *.bin *.ckpt);;All files (*)"
EXPORT_FILTER = "ESRI Shapefile (*.shp);;GeoPackage (*.gpkg);;GeoJSON (*.geojson);;CSV, poses only (*.csv)"

PRIOR_EXIF, PRIOR_CLICKED, PRIOR_TYPED = range(3)
HEADING_EXIF, HEADING_NONE, HEADING_TYPED = range(3)
DEPTH_FLAT, DEPTH_FILE = range(2)
WGS84 = "EPSG:4326"
FIGURE_WIDTH_PX = 720


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


class Loc2Dialog(QDialog):
    """Localize one street-level photo on an orthophoto (non-modal; ``iface`` may be None in tests)."""

    def __init__(self, iface: Any = None, parent: QWidget | None = None, project: QgsProject | None = None):
        super().__init__(parent)
        self.iface = iface
        self.project = project or QgsProject.instance()
        self.canvas = iface.mapCanvas() if iface is not None else None
        self.task: LocalizeTask | None = None
        self.last_task: LocalizeTask | None = None
        self.clicked_lonlat: tuple[float, float] | None = None
        self.last_message: tuple[Any, str] = (None, "")
        self._photo_meta = None
        self._map_tool: QgsMapToolEmitPoint | None = None
        self._previous_tool = None
        self._marker: QgsVertexMarker | None = None
        self._device_described = False
        self.installer = None  # DependencyInstaller, made on first use
        self.install_button: QPushButton | None = None
        self.setWindowTitle("Loc2 — localize a photo on an orthophoto")
        self.setWindowIcon(plugin_icon())
        self.setMinimumWidth(620)
        self._build()
        self._restore_settings()
        self._update_enabled()
        missing = missing_packages()
        if missing:
            self.show_missing_packages(missing)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.bar = QgsMessageBar(self)
        self.bar.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Fixed)
        layout.addWidget(self.bar)

        inputs = QGroupBox("Inputs", self)
        form = QFormLayout(inputs)
        self.ortho_combo = QgsMapLayerComboBox(inputs)
        self.ortho_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        self.ortho_combo.setAllowEmptyLayer(True)
        self.ortho_combo.setLayer(None)
        self.ortho_button = QToolButton(inputs)
        self.ortho_button.setText("…")
        self.ortho_button.setToolTip("Choose a raster file")
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
        self.prior_edit = QLineEdit(inputs)
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

        model = QGroupBox("Model", self)
        mform = QFormLayout(model)
        self.model_combo = QComboBox(model)
        for key in MODEL_CHOICES:
            self.model_combo.addItem(MODEL_LABELS[key], key)
        self.model_combo.currentIndexChanged.connect(self._update_enabled)
        mform.addRow("Model", self.model_combo)
        self.backbone_widget = QgsFileWidget(model)
        self.backbone_widget.setFilter(WEIGHTS_FILTER)
        self.matcher_widget = QgsFileWidget(model)
        self.matcher_widget.setFilter(WEIGHTS_FILTER)
        self.checkpoint_widget = QgsFileWidget(model)
        self.checkpoint_widget.setFilter(WEIGHTS_FILTER)
        mform.addRow("Backbone weights", self.backbone_widget)
        mform.addRow("Matcher weights", self.matcher_widget)
        mform.addRow("Checkpoint", self.checkpoint_widget)
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
        mform.addRow("Depth", self.depth_combo)
        mform.addRow("Depth map file", self.depth_widget)

        self.radius_spin = QgsDoubleSpinBox(model)
        self.radius_spin.setRange(0.0, 500.0)
        self.radius_spin.setDecimals(1)
        self.radius_spin.setSuffix(" m")
        self.radius_spin.setSpecialValueText("Automatic (EXIF accuracy, else 10 m)")
        self.radius_spin.setClearValue(0.0)
        mform.addRow("Search radius", self.radius_spin)

        self.solver_combo = QComboBox(model)
        for key, (label, _) in SOLVER_LABELS.items():
            self.solver_combo.addItem(label, key)
        self.solver_combo.setToolTip(SOLVER_HELP)
        mform.addRow("Pose solver", self.solver_combo)

        self.device_combo = QComboBox(model)
        self.device_combo.addItems(["Auto", "CUDA GPU", "CPU"])
        self.device_combo.currentIndexChanged.connect(self.update_device_label)
        self.device_label = QLabel("", model)
        self.device_label.setWordWrap(True)
        mform.addRow("Device", self._row(self.device_combo, self.device_label))
        self.matches_check = QCheckBox("Add the match lines layer", model)
        mform.addRow("", self.matches_check)

        columns = QHBoxLayout()
        columns.addWidget(inputs, 1)
        columns.addWidget(model, 1)
        layout.addLayout(columns)

        run_row = QHBoxLayout()
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
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
        """Weight paths and the model choice of the last session (QgsSettings ``loc2/...``)."""
        for key, widget in self._weight_widgets.items():
            widget.setFilePath(settings_value(key))
            widget.fileChanged.connect(partial(set_settings_value, key))  # remembered from now on
        model = settings_value("model", "demo")
        index = self.model_combo.findData(model)
        self.model_combo.setCurrentIndex(max(index, 0))

    @property
    def model_key(self) -> str:
        return str(self.model_combo.currentData())

    @property
    def device(self) -> str:
        return DEVICE_CHOICES[self.device_combo.currentIndex()]

    def _update_enabled(self, *_args) -> None:
        running = self.task is not None
        key = self.model_key
        self.backbone_widget.setEnabled(key in ("vigor", "kitti"))
        self.matcher_widget.setEnabled(key in ("vigor", "kitti"))
        self.checkpoint_widget.setEnabled(key == "checkpoint")
        prior = self.prior_combo.currentIndex()
        self.pick_button.setEnabled(self.canvas is not None and not running)
        self.prior_edit.setEnabled(prior == PRIOR_TYPED)
        self.heading_spin.setEnabled(self.heading_combo.currentIndex() == HEADING_TYPED)
        self.depth_widget.setEnabled(self.depth_combo.currentIndex() == DEPTH_FILE)
        installing = self.installer is not None and self.installer.running
        self.run_button.setEnabled(not running and not installing)
        self.cancel_button.setEnabled(running)
        has_result = self.last_task is not None and self.last_task.result is not None and not running
        self.export_button.setEnabled(bool(has_result and self.last_task.result.ok))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        if not self._device_described:
            QTimer.singleShot(0, self.update_device_label)

    def update_device_label(self, *_args) -> None:
        """Show what "auto" / the chosen device will run on (imports torch: only once the dialog shows)."""
        self._device_described = True
        if any(module == "torch" for module, _ in missing_packages()):
            self.device_label.setText("PyTorch is not installed")
            return
        from ..core.localizer import describe_device

        self.device_label.setText(describe_device(self.device))

    def show_message(self, text: str, level: Any = Qgis.MessageLevel.Info, duration: int = 0) -> None:
        """A message in the dialog's bar (errors stay until closed); kept in ``last_message`` for tests."""
        self.last_message = (level, text)
        title = {
            Qgis.MessageLevel.Critical: "Error",
            Qgis.MessageLevel.Warning: "Warning",
            Qgis.MessageLevel.Success: "Done",
        }.get(level, "Loc2")
        self.bar.clearWidgets()
        self.bar.pushMessage(title, text, level, duration)

    def show_missing_packages(self, missing: list[tuple[str, str]]) -> None:
        """Say what is missing and how to install it, with a button that installs it in the background."""
        text = missing_message(missing)
        self.last_message = (Qgis.MessageLevel.Critical, text)
        self.bar.clearWidgets()
        item = self.bar.createMessage("Error", text)
        self.install_button = QPushButton("Install dependencies", item)
        self.install_button.setToolTip("Run the pip command above in the background (then restart QGIS)")
        self.install_button.clicked.connect(self.install_dependencies)
        item.layout().addWidget(self.install_button)
        self.bar.pushWidget(item, Qgis.MessageLevel.Critical)

    def install_dependencies(self, *_args, command: list[str] | None = None) -> None:
        """Start installing the missing packages into QGIS's Python (``command`` overrides pip's, for tests)."""
        from .installer import DependencyInstaller

        if self.installer is None:
            self.installer = DependencyInstaller(self)
            self.installer.done.connect(self._installed)
        if self.installer.running:
            return
        self.installer.start(command)
        self.progress.setRange(0, 0)  # busy
        self.run_button.setEnabled(False)
        self.show_message("Installing the Python packages Loc2 needs… (this can take several minutes)")

    def _installed(self, ok: bool, message: str) -> None:
        self.progress.setRange(0, 100)
        self.progress.setValue(100 if ok else 0)
        self._update_enabled()
        self.show_message(message, Qgis.MessageLevel.Success if ok else Qgis.MessageLevel.Critical)

    # ------------------------------------------------------------------ inputs
    def _browse_ortho(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Orthophoto", settings_value("last_folder"), RASTER_FILTER
        )
        if path:
            self.set_ortho_file(path)

    def set_ortho_file(self, path: str) -> None:
        """Use a raster file that is not a project layer (listed at the end of the combo box)."""
        items = [p for p in self.ortho_combo.additionalItems() if p != path] + [path]
        self.ortho_combo.setAdditionalItems(items)
        self.ortho_combo.setCurrentIndex(self.ortho_combo.findText(path))
        set_settings_value("last_folder", str(Path(path).parent))

    def _photo_changed(self, path: str) -> None:
        self._photo_meta = None
        if not path:
            self.photo_info.setText("Choose a geotagged street-level photo (panorama or pinhole).")
            return
        try:
            from ..core.photos import read_photo

            self._photo_meta = read_photo(path)
        except (ImportError, Loc2Error) as exc:
            self.photo_info.setText(str(exc))
            return
        meta = self._photo_meta
        kind = "panorama" if meta.is_panorama else "pinhole photo"
        where = f"GPS {meta.lat:.6f}, {meta.lon:.6f}" if meta.has_position else "no GPS position in EXIF"
        heading = f", heading {meta.heading_deg:.0f}°" if meta.heading_deg is not None else ""
        self.photo_info.setText(f"{meta.width}×{meta.height} {kind}; {where}{heading}")

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
                self._marker.setIconType(QgsVertexMarker.ICON_CROSS)
                self._marker.setIconSize(14)
                self._marker.setPenWidth(2)
            self._marker.setCenter(point)

    def _ortho_path(self) -> str:
        layer = self.ortho_combo.currentLayer()
        if layer is not None:
            if not isinstance(layer, QgsRasterLayer) or layer.providerType() != "gdal":
                raise InputError(
                    f"{layer.name()}: choose a raster file layer (GeoTIFF, VRT, …), not a web service"
                )
            path = layer.source().split("|")[0]
            if not Path(path).is_file():
                raise InputError(f"{layer.name()}: its source {path} is not a file on disk")
            if not layer.crs().isValid():
                raise InputError(f"{path}: the orthophoto has no coordinate reference system")
            return path
        path = self.ortho_combo.currentText().strip()
        if not path or not Path(path).is_file():
            raise InputError("Choose an orthophoto: a raster layer of the project or a raster file (…).")
        return path

    def _check_ortho(self, path: str) -> None:
        from ..core.ortho import Orthophoto

        with Orthophoto.open(path):  # OrthoError names the file: unreadable, no CRS, rotated
            pass

    def _prior(self, photo_path: str) -> tuple[float, float, float | None]:
        mode = self.prior_combo.currentIndex()
        meta = self._photo_meta
        if mode == PRIOR_EXIF:
            if meta is None or not meta.has_position:
                raise InputError(
                    f"{Path(photo_path).name} has no GPS position in its EXIF: click the camera's position "
                    "on the map ('Pick on map') or type it (Prior position: Typed)."
                )
            lon, lat = meta.lon, meta.lat
        elif mode == PRIOR_CLICKED:
            if self.clicked_lonlat is None:
                raise InputError("Click the camera's approximate position on the map first ('Pick on map').")
            lon, lat = self.clicked_lonlat
        else:
            lon, lat = parse_lonlat(self.prior_edit.text())
        heading_mode = self.heading_combo.currentIndex()
        heading = None
        if heading_mode == HEADING_EXIF and meta is not None:
            heading = meta.heading_deg
        elif heading_mode == HEADING_TYPED:
            heading = float(self.heading_spin.value()) % 360.0
        return lon, lat, heading

    def _model_options(self) -> dict[str, Any]:
        key = self.model_key
        if key == "demo":
            if not DEMO_CHECKPOINT.is_file():
                raise InputError(
                    f"The demo model is not installed ({DEMO_CHECKPOINT} is missing): choose a Loc2 "
                    "checkpoint file or the published VIGOR/KITTI weights."
                )
            return {"model": "demo", "weights": None}
        if key == "checkpoint":
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

    def collect_spec(self) -> JobSpec:
        """Check every input on the main thread and copy it into a JobSpec; raises InputError."""
        missing = missing_packages()
        if missing:
            raise InputError(missing_message(missing))
        ortho_path = self._ortho_path()
        self._check_ortho(ortho_path)
        photo_path = self.photo_widget.filePath().strip()
        if not photo_path:
            raise InputError("Choose the photo to localize.")
        if self._photo_meta is None or str(self._photo_meta.path) != photo_path:
            from ..core.photos import read_photo

            self._photo_meta = read_photo(photo_path)
        lon, lat, heading = self._prior(photo_path)
        options = self._model_options()
        depth_file = None
        if self.depth_combo.currentIndex() == DEPTH_FILE:
            depth_file = self.depth_widget.filePath().strip()
            if not depth_file or not Path(depth_file).is_file():
                raise InputError(
                    f"Choose the photo's depth map file (not found: {depth_file or 'none chosen'})."
                )
        radius = float(self.radius_spin.value())
        options.update(
            depth="flat",
            search_radius_m=radius if radius > 0 else None,
            device=self.device,
            solver=self.solver_combo.currentData(),
            include_matches=self.matches_check.isChecked(),
        )
        return JobSpec(
            ortho_path=ortho_path,
            photo_path=photo_path,
            prior_lon=lon,
            prior_lat=lat,
            prior_heading_deg=heading,
            uncertainty_m=self._photo_meta.horizontal_error_m
            if self.prior_combo.currentIndex() == PRIOR_EXIF
            else None,
            options=options,
            depth_file=depth_file,
            include_matches=self.matches_check.isChecked(),
            title=f"Loc2 — {Path(photo_path).name}",
        )

    # ------------------------------------------------------------------ run
    def start(self) -> LocalizeTask | None:
        """Check the inputs and start the background task; returns it (None when the inputs are bad)."""
        if self.task is not None:
            return None
        try:
            spec = self.collect_spec()
        except Loc2Error as exc:
            self.show_message(str(exc), Qgis.MessageLevel.Critical)
            return None
        set_settings_value("model", self.model_key)
        task = LocalizeTask(spec, project=self.project)
        task.progressChanged.connect(self._task_progress)  # a slot of this dialog: queued to the main thread
        task.done.connect(self._task_done)
        self.task = task
        self.progress.setValue(0)
        self.bar.clearWidgets()
        self._update_enabled()
        QgsApplication.taskManager().addTask(task)
        return task

    @pyqtSlot(float)
    def _task_progress(self, value: float) -> None:
        self.progress.setValue(int(value))

    def cancel(self) -> None:
        """Ask the running task to stop (it stops before the next photo step and adds nothing)."""
        if self.task is not None:
            self.show_message("Cancelling…", Qgis.MessageLevel.Info, 3)
            self.task.cancel()  # a queued task finishes (cancelled) right here

    def _task_done(self, ok: bool) -> None:
        task = self.task or self.sender()
        self.task = None
        if self.last_task is not None and self.last_task is not task:
            self.last_task.cleanup()
        self.last_task = task
        self._update_enabled()
        if task is None:
            return
        if ok:
            self.progress.setValue(100)
            self._show_result(task)
        elif task.canceled:
            self.progress.setValue(0)
            self.show_message("Cancelled: nothing was added to the project.", Qgis.MessageLevel.Info, 5)
        else:
            self.progress.setValue(0)
            self.show_message(task.error or "The localization failed.", Qgis.MessageLevel.Critical)

    def _show_result(self, task: LocalizeTask) -> None:
        res = task.result
        self.show_message(
            f"{Path(res.photo).name}: moved {res.shift_m:.1f} m, heading {res.heading_deg:.0f}°, "
            f"{res.num_inliers} inliers ({100 * res.inlier_ratio:.1f} %), confidence {res.confidence}.",
            Qgis.MessageLevel.Success,
        )
        self.show_figure(task.figure_path)
        self.zoom_to(task)

    def show_figure(self, path: str | None) -> None:
        pixmap = QPixmap(path) if path else QPixmap()
        if pixmap.isNull():
            self.figure_label.setPixmap(QPixmap())
            self.figure_label.setText("No match figure.")
            return
        if pixmap.width() > FIGURE_WIDTH_PX:
            pixmap = pixmap.scaledToWidth(FIGURE_WIDTH_PX, Qt.TransformationMode.SmoothTransformation)
        self.figure_label.setPixmap(pixmap)

    def zoom_to(self, task: LocalizeTask) -> None:
        """Zoom the map canvas to the result layers (no-op without a canvas)."""
        if self.canvas is None or not task.layers:
            return
        extent = QgsRectangle()
        extent.setMinimal()
        crs = None
        for layer in task.layers.values():
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

    def export_results(self, path: str) -> dict[str, str]:
        """Write the last result with ``core.export`` (format from the suffix, ``.shp`` → one shapefile per
        layer); returns layer name → data source, or {} after showing the error."""
        task = self.last_task
        if task is None or task.result is None or not task.result.ok:
            self.show_message(
                "Run a localization first: there is nothing to export.", Qgis.MessageLevel.Warning
            )
            return {}
        try:
            from ..core.export import MODE_OVERWRITE, write_results

            writer = write_results(
                path,
                [task.result],
                crs=task.result.crs_wkt,
                include_matches=task.spec.include_matches,
                mode=MODE_OVERWRITE,
            )
        except Loc2Error as exc:
            self.show_message(str(exc), Qgis.MessageLevel.Critical)
            return {}
        sources = writer.sources()
        names = ", ".join(sorted({Path(t.path).name for t in writer.targets.values()}))
        self.show_message(f"Exported to {Path(path).parent}: {names}", Qgis.MessageLevel.Success, 8)
        return sources

    # ------------------------------------------------------------------ teardown
    def shutdown(self) -> None:
        """Plugin unload: cancel a running task, restore the map tool, remove the marker and temp files."""
        if self.task is not None:
            self.task.cancel()
        if self.canvas is not None:
            if self._map_tool is not None and self.canvas.mapTool() is self._map_tool:
                self.canvas.unsetMapTool(self._map_tool)
            if self._marker is not None:
                self.canvas.scene().removeItem(self._marker)
                self._marker = None
        if self.last_task is not None:
            self.last_task.cleanup()
