"""The dialog's "Model" box: the model and its weights, depth, search radius, pose solver, device, precision, the
optional matches layer and the results folder; it turns them into the engine's :class:`JobOptions`."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from qgis.gui import QgsDoubleSpinBox, QgsFileWidget
from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox

from ...core.solver.config import SOLVER_HELP, SOLVER_LABELS
from ...core.types import DEMO_CHECKPOINT, MODEL_DEMO, PUBLISHED_MODELS, JobOptions, OptionsError
from ..settings import (
    DEVICE_CHOICES,
    DEVICE_LABELS,
    MODEL_CHECKPOINT,
    MODEL_CHOICES,
    MODEL_LABELS,
    PRECISION_CHOICES,
    PRECISION_HELP,
    PRECISION_LABELS,
    default_results_folder,
    set_settings_value,
    settings_value,
)
from .job import DEPTH_FILE, InputError

DEPTH_FILTER = "Depth maps (*.png *.npy *.tif *.tiff);;All files (*)"
WEIGHTS_FILTER = "PyTorch weights (*.pt *.pth *.bin *.ckpt);;All files (*)"
RADIUS_KEY = "search_radius_m"  # 0: automatic
MATCHES_KEY = "include_matches"


class ModelBox(QGroupBox):
    """What runs and how; remembers the weights, the results folder and the last run's choices in QGIS's settings.

    Signals: ``changed()`` when an input that can make a run fail changed; ``device_changed()``.
    """

    changed = pyqtSignal()
    device_changed = pyqtSignal()

    def __init__(self, parent=None) -> None:
        super().__init__("Model", parent)
        self._build()
        self._restore_settings()
        for signal in (
            self.model_combo.currentIndexChanged,
            self.backbone_widget.fileChanged,
            self.matcher_widget.fileChanged,
            self.checkpoint_widget.fileChanged,
            self.depth_combo.currentIndexChanged,
            self.depth_widget.fileChanged,
        ):
            signal.connect(self.changed)
        self._update_enabled()

    def _build(self) -> None:
        form = QFormLayout(self)
        self.model_combo = QComboBox(self)
        for key in MODEL_CHOICES:
            self.model_combo.addItem(MODEL_LABELS[key], key)
        self.model_combo.currentIndexChanged.connect(self._update_enabled)
        form.addRow("Model", self.model_combo)
        self.backbone_widget = self._weights_widget()
        self.matcher_widget = self._weights_widget()
        self.checkpoint_widget = self._weights_widget()
        form.addRow("Backbone weights", self.backbone_widget)
        form.addRow("Matcher weights", self.matcher_widget)
        form.addRow("Checkpoint", self.checkpoint_widget)

        self.depth_combo = QComboBox(self)
        self.depth_combo.addItems(["Flat ground (no weights)", "Depth map file"])
        self.depth_combo.currentIndexChanged.connect(self._update_enabled)
        self.depth_widget = QgsFileWidget(self)
        self.depth_widget.setFilter(DEPTH_FILTER)
        form.addRow("Depth", self.depth_combo)
        form.addRow("Depth map file", self.depth_widget)

        self.radius_spin = QgsDoubleSpinBox(self)
        self.radius_spin.setRange(0.0, 500.0)
        self.radius_spin.setDecimals(1)
        self.radius_spin.setSuffix(" m")
        self.radius_spin.setSpecialValueText("Automatic (EXIF accuracy, else 10 m)")
        self.radius_spin.setClearValue(0.0)
        form.addRow("Search radius", self.radius_spin)

        self.solver_combo = QComboBox(self)
        for key, (label, _) in SOLVER_LABELS.items():
            self.solver_combo.addItem(label, key)
        self.solver_combo.setToolTip(SOLVER_HELP)
        form.addRow("Pose solver", self.solver_combo)

        self.device_combo = QComboBox(self)
        for key, label in zip(DEVICE_CHOICES, DEVICE_LABELS, strict=True):
            self.device_combo.addItem(label, key)
        self.device_combo.currentIndexChanged.connect(self.device_changed)
        form.addRow("Device", self.device_combo)
        self.precision_combo = QComboBox(self)
        for key, label in zip(PRECISION_CHOICES, PRECISION_LABELS, strict=True):
            self.precision_combo.addItem(label, key)
        self.precision_combo.setToolTip(PRECISION_HELP)
        form.addRow("Precision", self.precision_combo)
        self.matches_check = QCheckBox("Add the top matches layer", self)
        form.addRow("", self.matches_check)
        self.results_widget = QgsFileWidget(self)
        self.results_widget.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        self.results_widget.setToolTip("Each run writes a GeoPackage here; the map layers read it")
        form.addRow("Results folder", self.results_widget)

    def _weights_widget(self) -> QgsFileWidget:
        widget = QgsFileWidget(self)
        widget.setFilter(WEIGHTS_FILTER)
        return widget

    def _restore_settings(self) -> None:
        """Weight paths, the results folder and the last run's choices (``loc2/...``)."""
        weights = {
            "weights/backbone": self.backbone_widget,
            "weights/matcher": self.matcher_widget,
            "weights/checkpoint": self.checkpoint_widget,
        }
        for key, widget in weights.items():
            widget.setFilePath(settings_value(key))
            widget.fileChanged.connect(partial(set_settings_value, key))  # remembered from now on
        for key, combo in self._remembered_combos().items():
            index = combo.findData(settings_value(key))
            if index >= 0:  # not found (never run, or a choice this version lacks): the combo's default
                combo.setCurrentIndex(index)
        try:
            self.radius_spin.setValue(float(settings_value(RADIUS_KEY, "0") or 0.0))
        except ValueError:
            self.radius_spin.setValue(0.0)
        self.matches_check.setChecked(settings_value(MATCHES_KEY) == "true")
        self.results_widget.setFilePath(settings_value("results_folder", str(default_results_folder())))
        self.results_widget.fileChanged.connect(partial(set_settings_value, "results_folder"))

    def _update_enabled(self, *_args) -> None:
        key = self.model_key
        self.backbone_widget.setEnabled(key in PUBLISHED_MODELS)
        self.matcher_widget.setEnabled(key in PUBLISHED_MODELS)
        self.checkpoint_widget.setEnabled(key == MODEL_CHECKPOINT)
        self.depth_widget.setEnabled(self.depth_combo.currentIndex() == DEPTH_FILE)

    @property
    def model_key(self) -> str:
        return str(self.model_combo.currentData())

    @property
    def device(self) -> str:
        return str(self.device_combo.currentData())

    def _remembered_combos(self) -> dict[str, QComboBox]:
        """The combos a run remembers, by settings key; each item's data is its engine key."""
        return {
            "model": self.model_combo,
            "solver": self.solver_combo,
            "device": self.device_combo,
            "precision": self.precision_combo,
        }

    def remember_choices(self) -> None:
        """Called when a run starts: the next dialog, in this session or the next, starts from these."""
        for key, combo in self._remembered_combos().items():
            set_settings_value(key, str(combo.currentData()))
        set_settings_value(RADIUS_KEY, repr(float(self.radius_spin.value())))
        set_settings_value(MATCHES_KEY, "true" if self.matches_check.isChecked() else "false")

    # ------------------------------------------------------------------ checked values
    def options(self) -> JobOptions:
        """The engine's options (InputError naming what is missing or wrong)."""
        radius = float(self.radius_spin.value())
        try:
            return JobOptions(
                **self._model_and_weights(),
                search_radius_m=radius if radius > 0 else None,
                device=self.device,
                precision=str(self.precision_combo.currentData()),
                solver=str(self.solver_combo.currentData()),
                include_matches=self.matches_check.isChecked(),
            )
        except OptionsError as exc:
            raise InputError(str(exc)) from None

    def _model_and_weights(self) -> dict:
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

    def depth_file(self) -> str | None:
        """The chosen depth map file, None for flat ground (InputError when chosen but missing)."""
        if self.depth_combo.currentIndex() != DEPTH_FILE:
            return None
        path = self.depth_widget.filePath().strip()
        if not path or not Path(path).is_file():
            raise InputError(f"Choose the photo's depth map file (not found: {path or 'none chosen'}).")
        return path

    def output_path(self, photo: str) -> str:
        """A new GeoPackage in the results folder, named after the photo and the time."""
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
