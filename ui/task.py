"""The background job of the single-photo dialog: a :class:`QgsTask` around ``core.pipeline.localize_batch``.

``run()`` executes on a worker thread: it reads only the plain values copied into :class:`JobSpec` on the
main thread (paths, lon/lat, CRS WKT, options) and never touches QgsProject, layers, iface or widgets. Every
exception is caught there and kept; ``finished()`` (main thread) reports it or adds the result layers to the
project as one group, all or nothing.
"""

from __future__ import annotations

import shutil
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qgis.core import Qgis, QgsMessageLog, QgsProject, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from ..core.errors import Loc2Error
from .dependencies import require
from .layers import add_result_group, crs_from_wkt, result_layers
from .models import cached_localizer
from .threads import finish_worker_job

LOG_TAG = "Loc2"


@dataclass
class JobSpec:
    """Everything the worker thread needs, as plain values.

    Attributes:
        ortho_path: orthophoto file (any raster GDAL reads, with a CRS).
        photo_path: the street-level photo.
        prior_lon, prior_lat: prior position, WGS84 degrees.
        prior_heading_deg: prior heading, degrees clockwise from true north, or None.
        uncertainty_m: the photo's EXIF horizontal error in metres, or None.
        options: keyword arguments of ``core.pipeline.JobOptions`` (model, weights, depth, search_radius_m,
            device, ...); ``figures_dir`` is set by the task.
        depth_file: a depth map for this photo (any name), or None for the ``options['depth']`` source.
        include_matches: also build the match-line layer.
        title: the layer group's name.
    """

    ortho_path: str
    photo_path: str
    prior_lon: float
    prior_lat: float
    prior_heading_deg: float | None = None
    uncertainty_m: float | None = None
    options: dict[str, Any] = field(default_factory=dict)
    depth_file: str | None = None
    include_matches: bool = False
    title: str = "Loc2"


class LocalizeTask(QgsTask):
    """Localize one photo in the background; add its styled layers to the project when done.

    After ``finished()``: ``result`` (PhotoResult or None), ``figure_path`` (match figure PNG or None),
    ``group`` (the added QgsLayerTreeGroup or None), ``layers`` (role → QgsVectorLayer), ``error``
    (message for people, or "" ), ``canceled`` (bool). ``localizer`` holds the model for reuse.
    The ``done`` signal carries ``ok`` (True when layers were added).
    """

    done = pyqtSignal(bool)

    def __init__(
        self,
        spec: JobSpec,
        localizer: Any = None,
        project: QgsProject | None = None,
        add_layers: bool = True,
    ) -> None:
        super().__init__(f"Loc2: localize {Path(spec.photo_path).name}", QgsTask.Flag.CanCancel)
        self.spec = spec
        self.localizer = localizer
        self.project = project
        self.add_layers = add_layers
        self.result = None
        self.tables: dict[str, Any] = {}
        self.figure_path: str | None = None
        self.group = None
        self.layers: dict[str, Any] = {}
        self.error = ""
        self.error_detail = ""
        self.canceled = False
        self._workdir = tempfile.mkdtemp(prefix="loc2_")

    # ------------------------------------------------------------------ worker thread
    def run(self) -> bool:
        """Worker thread: load the model, localize, build the layer tables. Never raises."""
        try:
            return self._run()
        except Loc2Error as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - an exception escaping run() can take QGIS down
            self.error = f"unexpected error: {type(exc).__name__}: {exc}"
            self.error_detail = traceback.format_exc()
        finally:
            finish_worker_job()
        return False

    def _run(self) -> bool:
        require()
        from ..core.pipeline import JobOptions, localize_batch
        from ..core.priors import PhotoItem
        from ..core.results import layer_tables

        spec = self.spec
        figures = Path(self._workdir) / "figures"
        options = JobOptions(**{**spec.options, "figures_dir": figures})
        photo = Path(spec.photo_path)
        if spec.depth_file:
            options.depth = str(self._depth_folder(photo, Path(spec.depth_file)))
        self.setProgress(2)
        if self.localizer is None:
            self.localizer = cached_localizer(options)
        if self.isCanceled():
            return False
        self.setProgress(20)
        item = PhotoItem(photo, spec.prior_lon, spec.prior_lat, spec.prior_heading_deg, spec.uncertainty_m)
        results = localize_batch(
            [item],
            spec.ortho_path,
            options,
            progress=lambda done, total, _res: self.setProgress(20 + 75 * done / max(total, 1)),
            is_canceled=self.isCanceled,
            localizer=self.localizer,
        )
        if self.isCanceled() or not results:
            return False
        self.result = results[0]
        if not self.result.ok:
            self.error = self.result.message or f"{photo.name}: no pose ({self.result.status})"
            return False
        self.tables = layer_tables(results, include_matches=spec.include_matches)
        figure = figures / f"{photo.stem}.png"
        self.figure_path = str(figure) if figure.is_file() else None
        self.setProgress(100)
        return True

    def _depth_folder(self, photo: Path, depth_file: Path) -> Path:
        """A folder holding ``depth_file`` under the photo's stem (the pipeline finds depth maps by name)."""
        if not depth_file.is_file():
            raise Loc2Error(f"{depth_file}: depth map not found")
        folder = Path(self._workdir) / "depth"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(depth_file, folder / f"{photo.stem}{depth_file.suffix.lower()}")
        return folder

    # ------------------------------------------------------------------ main thread
    def finished(self, ok: bool) -> None:  # noqa: FBT001 - QgsTask's signature
        """Main thread: log and keep the error, or add the result layers as one group."""
        self.canceled = self.isCanceled()
        if self.canceled:
            self.error = "cancelled"
            ok = False
        if ok and self.add_layers:
            try:
                self._add_layers()
            except Exception as exc:  # noqa: BLE001 - reported in the dialog, never a traceback window
                self.error = f"the result layers could not be added: {exc}"
                self.error_detail = traceback.format_exc()
                ok = False
        if self.error and not self.canceled:
            QgsMessageLog.logMessage(
                f"{self.description()}: {self.error}\n{self.error_detail}".strip(),
                LOG_TAG,
                Qgis.MessageLevel.Warning,
            )
        self.done.emit(bool(ok))

    def _add_layers(self) -> None:
        project = self.project or QgsProject.instance()
        crs = crs_from_wkt(self.result.crs_wkt)
        built = result_layers(self.tables, crs)
        self.group = add_result_group(project, self.spec.title, built)
        self.layers = {role: layer for role, _, layer in built}

    def cleanup(self) -> None:
        """Remove the temporary folder (figures, depth copy); call once the figure is no longer shown."""
        shutil.rmtree(self._workdir, ignore_errors=True)
