"""The single-photo dialog: the three boxes (inputs, model, engine), the message panel, Run / Cancel /
Export and the match figure. Inputs are checked on the main thread (:meth:`Loc2Dialog.collect_job`) and
copied into a plain :class:`PhotoJob`; a :class:`LocalizePhotoTask` sends it to the engine worker in the
background and the results come back as a GeoPackage that QGIS opens with its own provider. Problems are
shown whole in the message panel, never as a traceback, and nothing is added to the project unless the
whole result is."""

from __future__ import annotations

import shutil
from functools import partial
from pathlib import Path
from typing import Any

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateTransform,
    QgsProject,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import Qt, QTimer, pyqtSlot
from qgis.PyQt.QtGui import QPixmap
from qgis.PyQt.QtWidgets import (
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from ...core.errors import Loc2Error
from ...core.worker import protocol
from ..engine.client import OUTCOME_CANCELLED, OUTCOME_DONE, JobOutcome
from ..engine.environment import NO_ENGINE_MESSAGE, find_engine
from ..icon import plugin_icon
from ..jobs import EngineTask, TaskKeeper, progress_text
from ..layers import add_result_group, open_result_layers
from ..settings import settings_value
from ..styles import write_style_beside
from .engine_box import EngineBox
from .inputs_box import InputsBox
from .job import InputError, LocalizePhotoTask, PhotoJob
from .model_box import ModelBox
from .widgets import MessagePanel

EXPORT_FILTER = "ESRI Shapefile (*.shp);;GeoPackage (*.gpkg);;GeoJSON (*.geojson);;CSV, poses only (*.csv)"
FIGURE_WIDTH_PX = 720


class Loc2Dialog(QDialog):
    """Localize one street-level photo on an orthophoto (non-modal; ``iface`` may be None in tests).

    ``inputs``, ``model`` and ``engine`` are its three boxes; ``last_message`` (level, text) is what the
    panel shows, ``layers`` the result layers of the last run by role.
    """

    def __init__(self, iface: Any = None, parent: QWidget | None = None, project: QgsProject | None = None):
        super().__init__(parent)
        self.iface = iface
        self.project = project or QgsProject.instance()
        self.canvas = iface.mapCanvas() if iface is not None else None
        self.tasks = TaskKeeper()  # inspect / describe / export, kept alive while they run
        self.task: LocalizePhotoTask | None = None
        self.last_task: LocalizePhotoTask | None = None
        self.last_outcome: JobOutcome | None = None
        self.last_result: dict[str, Any] | None = None
        self.last_export: dict[str, Any] | None = None
        self.group = None
        self.layers: dict[str, QgsVectorLayer] = {}
        self.last_message: tuple[Any, str] = (None, "")
        self._workdirs: list[str] = []  # temporary folders of the runs (figures, depth copies)
        self.setWindowTitle("Loc2 — localize a photo on an orthophoto")
        self.setWindowIcon(plugin_icon())
        self.setMinimumWidth(760)
        self.resize(1040, 900)
        self._build()
        self.inputs.preselect_ortho()
        self._update_enabled()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        layout = QVBoxLayout(self)
        self.inputs = InputsBox(self.project, self.canvas, self.tasks, self)
        self.model = ModelBox(self)
        self.engine = EngineBox(self.tasks, lambda: self.model.device, self)
        columns = QHBoxLayout()
        columns.addWidget(self.inputs, 1)
        columns.addWidget(self.model, 1)
        layout.addLayout(columns)
        layout.addWidget(self.engine)
        for box in (self.inputs, self.engine):
            box.message.connect(self.show_message)
        self.inputs.changed.connect(self._input_changed)
        self.model.changed.connect(self._input_changed)
        self.model.device_changed.connect(self.engine.describe)
        self.engine.python_widget.fileChanged.connect(self._input_changed)
        self.engine.install_progress.connect(self._install_progress)
        self.engine.busy_changed.connect(self._update_enabled)

        self.message_panel = MessagePanel(self)
        layout.addWidget(self.message_panel)
        layout.addLayout(self._build_run_row())

        self.figure_label = QLabel("The match figure appears here after a run.", self)
        self.figure_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.figure_label.setMinimumHeight(160)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.figure_label)
        layout.addWidget(scroll, 1)

    def _build_run_row(self) -> QHBoxLayout:
        row = QHBoxLayout()
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
        row.addWidget(self.progress, 1)
        for button in (self.run_button, self.cancel_button, self.export_button, self.close_button):
            row.addWidget(button)
        return row

    # ------------------------------------------------------------------ state
    def _input_changed(self, *_args) -> None:
        """Any change of an input clears a message about the inputs (it may be fixed now)."""
        if self.message_panel.level == Qgis.MessageLevel.Critical and self.task is None:
            self.clear_message()

    def _update_enabled(self, *_args) -> None:
        running = self.task is not None
        installing = self.engine.installer is not None
        self.inputs.set_busy(running)
        self.engine.set_busy(running)
        self.run_button.setEnabled(not running and not installing)
        self.cancel_button.setEnabled(running or installing)
        self.export_button.setEnabled(bool(self.last_result and self.last_result.get("ok")) and not running)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt API
        super().showEvent(event)
        self.inputs.preselect_ortho()
        if not self.engine.described:
            QTimer.singleShot(0, self.engine.describe)

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

    def _install_progress(self, percent: int, label: str) -> None:
        self.progress.setValue(percent)
        self.progress.setFormat(f"%p% — {label}" if label else "%p%")

    # ------------------------------------------------------------------ run
    def collect_job(self) -> PhotoJob:
        """Check every input on the main thread and copy it into a PhotoJob; raises InputError."""
        if find_engine() is None:
            raise InputError(NO_ENGINE_MESSAGE)
        ortho, ortho_layer = self.inputs.ortho_source()
        photo = self.inputs.photo_path()
        lonlat = self.inputs.prior_lonlat(photo)
        depth_file = self.model.depth_file()
        options = self.model.options()
        heading_mode, heading_deg = self.inputs.heading()
        job = PhotoJob(
            photo=photo,
            ortho=ortho,
            options=options,
            output=self.model.output_path(photo),
            lonlat=lonlat,
            heading_mode=heading_mode,
            heading_deg=heading_deg,
            depth_file=depth_file,
            title=f"Loc2 — {Path(photo).name}",
            ortho_layer=ortho_layer,
        )
        job.options.figures_dir = Path(job.workdir) / "figures"
        return job

    def start(self) -> LocalizePhotoTask | None:
        """Check the inputs and start the background task; returns it (None when the inputs are bad)."""
        if self.task is not None:
            return None
        try:
            job = self.collect_job()
        except Loc2Error as exc:
            self.show_message(str(exc), Qgis.MessageLevel.Critical)
            return None
        self.model.remember_choices()
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
        if self.engine.installer is not None:
            self.engine.installer.cancel()
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
            self._accept_result({**result, "sources": outcome.summary.get("sources", {})}, task.job)
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

    def _accept_result(self, result: dict[str, Any], job: PhotoJob) -> None:
        """Add the result's layers to the project, or none of them (the message says why)."""
        self.last_result = result
        try:
            built = open_result_layers(result["sources"])
            self.group = add_result_group(self.project, job.title, built)
            self.layers = dict(built)
        except Exception as exc:  # noqa: BLE001 - reported in the dialog, never a traceback window
            self.last_result = None
            self.progress.setValue(0)
            self.show_message(f"The result layers could not be added: {exc}", Qgis.MessageLevel.Critical)
            return
        self.progress.setValue(100)
        ratio = result.get("inlier_ratio") or 0.0
        self.show_message(
            f"{Path(result['photo']).name}: moved {result['shift_m']:.1f} m, heading {result['heading_deg']:.0f}° "
            f"(clockwise from north), {result['num_inliers']} inliers ({100 * ratio:.1f} %), confidence "
            f"{result['confidence']}. Layers in the group '{self.group.name() if self.group else ''}'.",
            Qgis.MessageLevel.Success,
        )
        self.show_figure(result.get("figure"))
        self.zoom_to_result()

    def _forget_workdirs(self, keep: str | None = None) -> None:
        """Remove the temporary folders (figures, depth copies) of earlier runs, all but ``keep``."""
        for workdir in [w for w in self._workdirs if w != keep]:
            shutil.rmtree(workdir, ignore_errors=True)
            self._workdirs.remove(workdir)

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
        return self.tasks.start(task, self._exported)

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
    def shutdown(self) -> None:
        """Plugin unload: stop the running tasks or install, restore the map tool, remove the marker."""
        running = [t for t in (self.task, self.engine.installer, *self.tasks.running) if t is not None]
        TaskKeeper.stop(running)
        self._forget_workdirs()
        self.inputs.shutdown()
