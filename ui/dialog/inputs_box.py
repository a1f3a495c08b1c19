"""The dialog's "Inputs" box: the orthophoto, the photo (read by the engine for its EXIF prior), the prior
position (EXIF, clicked on the map or typed) and the heading prior."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from qgis.core import (
    Qgis,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsMapLayerProxyModel,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
)
from qgis.gui import (
    QgsDoubleSpinBox,
    QgsFileWidget,
    QgsFilterLineEdit,
    QgsMapLayerComboBox,
    QgsMapToolEmitPoint,
    QgsVertexMarker,
)
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QToolButton,
)

from ...core.types import IMAGE_SUFFIXES
from ...core.worker import protocol
from ..engine.client import JobOutcome
from ..engine.environment import find_engine
from ..jobs import EngineTask, TaskKeeper
from ..layers import LayerChoiceError
from ..ortho_window import LayerSnapshot, orthophoto_choice
from ..settings import set_settings_value, settings_value
from .job import (
    HEADING_TYPED,
    PRIOR_CLICKED,
    PRIOR_EXIF,
    PRIOR_TYPED,
    InputError,
    no_gps_message,
    parse_lonlat,
)
from .widgets import widget_row

IMAGE_FILTER = f"Images ({' '.join(f'*{s} *{s.upper()}' for s in IMAGE_SUFFIXES)});;All files (*)"
RASTER_FILTER = "Rasters (*.tif *.tiff *.vrt *.jp2 *.img *.png *.jpg);;All files (*)"
WGS84 = "EPSG:4326"
NO_PHOTO_TEXT = "Choose a geotagged street-level photo (panorama or pinhole)."


class InputsBox(QGroupBox):
    """Orthophoto, photo, prior position and heading prior.

    Signals: ``message(text, level, duration_s)`` for the dialog's panel; ``changed()`` when any input
    changed. ``photo_meta`` holds what the engine read from the photo (None until read).
    """

    message = pyqtSignal(str, object, int)
    changed = pyqtSignal()

    def __init__(self, project: QgsProject, canvas: Any, tasks: TaskKeeper, parent=None) -> None:
        super().__init__("Inputs", parent)
        self.project = project
        self.canvas = canvas
        self.tasks = tasks
        self.photo_meta: dict[str, Any] | None = None
        self.clicked_lonlat: tuple[float, float] | None = None
        self._map_tool: QgsMapToolEmitPoint | None = None
        self._previous_tool = None
        self._marker: QgsVertexMarker | None = None
        self._build()
        for signal in (
            self.ortho_combo.layerChanged,
            self.photo_widget.fileChanged,
            self.prior_combo.currentIndexChanged,
            self.prior_edit.textChanged,
            self.heading_combo.currentIndexChanged,
        ):
            signal.connect(self.changed)
        self.set_busy(False)

    def _build(self) -> None:
        form = QFormLayout(self)
        self.ortho_combo = QgsMapLayerComboBox(self)
        self.ortho_combo.setFilters(QgsMapLayerProxyModel.Filter.RasterLayer)
        self.ortho_combo.setAllowEmptyLayer(True)
        self.ortho_combo.setLayer(None)
        self.ortho_button = QToolButton(self)
        self.ortho_button.setText("…")
        self.ortho_button.setToolTip("Choose a raster file (it is added to the map)")
        self.ortho_button.clicked.connect(self._browse_ortho)
        form.addRow("Orthophoto", widget_row(self.ortho_combo, self.ortho_button))

        self.photo_widget = QgsFileWidget(self)
        self.photo_widget.setFilter(IMAGE_FILTER)
        self.photo_widget.fileChanged.connect(self._photo_changed)
        form.addRow("Photo", self.photo_widget)
        self.photo_info = QLabel(NO_PHOTO_TEXT, self)
        self.photo_info.setWordWrap(True)
        form.addRow("", self.photo_info)

        self.prior_combo = QComboBox(self)
        self.prior_combo.addItems(["Photo's EXIF GPS", "Clicked on the map", "Typed lon, lat"])
        self.prior_combo.currentIndexChanged.connect(self._update_enabled)
        self.pick_button = QPushButton("Pick on map", self)
        self.pick_button.setToolTip("Click the camera's approximate position on the map canvas")
        self.pick_button.clicked.connect(self.start_picking)
        form.addRow("Prior position", widget_row(self.prior_combo, self.pick_button))
        self.prior_edit = QgsFilterLineEdit(self)
        self.prior_edit.setShowClearButton(True)
        self.prior_edit.setPlaceholderText("longitude, latitude in decimal degrees, e.g. 8.5417, 47.3769")
        form.addRow("", self.prior_edit)

        self.heading_combo = QComboBox(self)
        self.heading_combo.addItems(["From EXIF (if present)", "None", "Typed"])
        self.heading_combo.currentIndexChanged.connect(self._update_enabled)
        self.heading_spin = QgsDoubleSpinBox(self)
        self.heading_spin.setRange(0.0, 359.9)
        self.heading_spin.setDecimals(1)
        self.heading_spin.setSuffix(" °")
        self.heading_spin.setToolTip("Degrees clockwise from true north")
        form.addRow("Heading prior", widget_row(self.heading_combo, self.heading_spin))

    def _update_enabled(self, *_args) -> None:
        self.prior_edit.setEnabled(self.prior_combo.currentIndex() == PRIOR_TYPED)
        self.heading_spin.setEnabled(self.heading_combo.currentIndex() == HEADING_TYPED)

    def set_busy(self, busy: bool) -> None:  # noqa: FBT001 - a state, not an option
        """While a run goes on, the map cannot be clicked for a new prior."""
        self.pick_button.setEnabled(self.canvas is not None and not busy)
        self._update_enabled()

    # ------------------------------------------------------------------ orthophoto
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
            self.message.emit(
                f"{path}: QGIS cannot read this file as a raster", Qgis.MessageLevel.Critical, 0
            )
            return None
        self.project.addMapLayer(layer)
        self.ortho_combo.setLayer(layer)
        set_settings_value("last_folder", str(Path(path).parent))
        return layer

    def preselect_ortho(self) -> None:
        """With no orthophoto chosen, the project's only raster layer is."""
        if self.ortho_combo.currentLayer() is not None or self.ortho_combo.currentText().strip():
            return
        rasters = [lyr for lyr in self.project.mapLayers().values() if isinstance(lyr, QgsRasterLayer)]
        if len(rasters) == 1:
            self.ortho_combo.setLayer(rasters[0])

    def ortho_source(self) -> tuple[str, LayerSnapshot | None]:
        """The chosen orthophoto's file, or a snapshot of a layer the engine cannot open (a web service:
        its window around the prior is read on the task's thread); InputError saying what to choose."""
        try:
            return orthophoto_choice(self.ortho_combo.currentLayer(), self.project.transformContext())
        except LayerChoiceError as exc:
            raise InputError(str(exc)) from None

    # ------------------------------------------------------------------ photo
    def photo_path(self) -> str:
        """The chosen photo's path; InputError when none is chosen or it does not exist."""
        photo = self.photo_widget.filePath().strip()
        if not photo:
            raise InputError("Choose the photo to localize.")
        if not Path(photo).is_file():
            raise InputError(f"{photo}: the photo does not exist")
        return photo

    def _photo_changed(self, path: str) -> None:
        self.photo_meta = None
        if not path:
            self.photo_info.setText(NO_PHOTO_TEXT)
            return
        if find_engine() is None:
            self.photo_info.setText("(install the engine to read the photo's details)")
            return
        self.photo_info.setText("Reading the photo…")
        task = EngineTask(f"Loc2: read {Path(path).name}", protocol.CMD_INSPECT, {"photo": path})
        self.tasks.start(task, partial(self._inspected, path))

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

    # ------------------------------------------------------------------ prior
    def prior_lonlat(self, photo: str) -> tuple[float, float] | None:
        """The clicked or typed prior (lon, lat degrees), or None for the photo's EXIF (checked when read)."""
        mode = self.prior_combo.currentIndex()
        if mode == PRIOR_EXIF:
            meta = self.photo_meta
            if meta is not None and (meta.get("lat") is None or meta.get("lon") is None):
                raise InputError(no_gps_message(photo))
            return None
        if mode == PRIOR_CLICKED:
            if self.clicked_lonlat is None:
                raise InputError("Click the camera's approximate position on the map first ('Pick on map').")
            return self.clicked_lonlat
        return parse_lonlat(self.prior_edit.text())

    def heading(self) -> tuple[int, float]:
        """(HEADING_* mode, typed heading in degrees clockwise from true north)."""
        return self.heading_combo.currentIndex(), float(self.heading_spin.value()) % 360.0

    def start_picking(self) -> None:
        """Let the user click the prior position on the map canvas."""
        if self.canvas is None:
            self.message.emit(
                "There is no map canvas to click on; type the position instead.", Qgis.MessageLevel.Warning, 0
            )
            return
        if self._map_tool is None:
            self._map_tool = QgsMapToolEmitPoint(self.canvas)
            self._map_tool.canvasClicked.connect(self._canvas_clicked)
        self._previous_tool = self.canvas.mapTool()
        self.canvas.setMapTool(self._map_tool)
        self.message.emit("Click the camera's approximate position on the map.", Qgis.MessageLevel.Info, 5)

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

    def shutdown(self) -> None:
        """Restore the map tool and remove the prior's marker from the canvas."""
        if self.canvas is None:
            return
        if self._map_tool is not None and self.canvas.mapTool() is self._map_tool:
            self.canvas.unsetMapTool(self._map_tool)
        if self._marker is not None:
            self.canvas.scene().removeItem(self._marker)
            self._marker = None
