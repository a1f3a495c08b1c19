"""One photo's run, as plain values: :class:`PhotoJob` (checked and copied on the main thread) and the
background task that sends it to the engine (:class:`LocalizePhotoTask`)."""

from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...core.errors import Loc2Error
from ...core.types import MODE_REFUSE, JobOptions, LocalizeRequest, OutputSpec, PhotoItem, PhotoSource
from ...core.worker import protocol
from ..engine.client import OUTCOME_FAILED, JobOutcome
from ..jobs import EngineTask
from ..ortho_window import LayerSnapshot, prior_of, write_windows

# where the prior position and heading come from (the dialog's combo boxes, in their order)
PRIOR_EXIF, PRIOR_CLICKED, PRIOR_TYPED = range(3)
HEADING_EXIF, HEADING_NONE, HEADING_TYPED = range(3)
DEPTH_FLAT, DEPTH_FILE = range(2)


class InputError(Loc2Error):
    """Something the user must choose or fix before a run."""


def no_gps_message(photo: str) -> str:
    return (
        f"{Path(photo).name} has no GPS position in its EXIF: click the camera's position on the map "
        "('Pick on map') or type it (Prior position: Typed)."
    )


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
    ortho_layer: LayerSnapshot | None = None  # a layer the engine cannot open: its window is read first
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
            raise InputError(no_gps_message(job.photo))
        heading = {HEADING_EXIF: info.get("heading_deg"), HEADING_NONE: None}.get(
            job.heading_mode, job.heading_deg
        )
        uncertainty = info.get("horizontal_error_m") if job.lonlat is None else None
        item = PhotoItem(Path(job.photo), float(lon), float(lat), heading, uncertainty)
        options = job.options
        if job.depth_file:
            options = JobOptions.from_dict({**options.to_dict(), "depth": str(self._depth_folder())})
        output = OutputSpec(job.output, "gpkg", MODE_REFUSE)
        ortho = job.ortho
        if job.ortho_layer is not None:  # the window around the prior, through the layer's provider
            prior = prior_of(item.lon, item.lat, options.search_radius_m, item.uncertainty_m)
            folder = Path(job.workdir) / "orthophoto"
            ortho = str(write_windows(job.ortho_layer, [prior], options.model_name, folder, self.isCanceled))
        return LocalizeRequest(ortho=ortho, photos=PhotoSource(items=[item]), output=output, options=options)

    def _depth_folder(self) -> Path:
        """A folder holding the chosen depth map under the photo's name (the engine finds maps by name)."""
        depth = Path(str(self.job.depth_file))
        if not depth.is_file():
            raise InputError(f"{depth}: depth map not found")
        folder = Path(self.job.workdir) / "depth"
        folder.mkdir(exist_ok=True)
        shutil.copyfile(depth, folder / f"{Path(self.job.photo).stem}{depth.suffix.lower()}")
        return folder
