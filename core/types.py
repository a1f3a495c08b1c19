"""The engine's boundary types, free of torch, numpy and GDAL: options, photo items, statuses, the names
of the result layers and their values.

Everything here imports only the standard library, so the QGIS side (``ui/``) builds the same typed
options the command line does and sends them to the engine's worker (``core/worker``) as JSON, and reads
the result layers with the same names.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Loc2Error
from .solver.config import DEFAULT_SOLVER, SOLVERS

# Model names every part of the project knows (a checkpoint file path is the other kind of model).
MODEL_DEMO = "demo"
MODEL_VIGOR = "vigor"  # panoramas (the published VIGOR weights)
MODEL_KITTI = "kitti"  # pinhole photos (the published KITTI weights)
PUBLISHED_MODELS = (MODEL_VIGOR, MODEL_KITTI)
MODELS = (MODEL_DEMO, *PUBLISHED_MODELS)

# KITTI's aerial images: zoom-18 tiles at latitude 49.015°, 2x scale, 512 px cropped (resized to 504 px).
KITTI_METRES_PER_PIXEL_512 = 156543.03392 * math.cos(math.radians(49.015)) / 2**18 / 2
# Each named model's aerial crop: (ground footprint in metres, pixels across); the presets are built on it,
# and the plugin sizes the orthophoto windows it reads from web services with it.
AERIAL_CROPS: dict[str, tuple[float, int]] = {
    MODEL_DEMO: (72.0, 256),
    MODEL_VIGOR: (72.0, 630),
    MODEL_KITTI: (512 * KITTI_METRES_PER_PIXEL_512, 504),
}


def aerial_crop(model: str) -> tuple[float, float]:
    """(footprint in ground metres, ground metres per crop pixel) of a named model; for a checkpoint file
    (unknown here) the largest footprint and the finest pixel of the named models."""
    if model in AERIAL_CROPS:
        footprint_m, size_px = AERIAL_CROPS[model]
        return footprint_m, footprint_m / size_px
    return max(f for f, _ in AERIAL_CROPS.values()), min(f / n for f, n in AERIAL_CROPS.values())


# The demo model shipped with the plugin (trained on synthetic cities only).
DEMO_CHECKPOINT = Path(__file__).resolve().parent.parent / "resources" / "models" / "loc2_demo.pt"
DEVICES = ("auto", "cuda", "mps", "cpu")
# The backbone's arithmetic (JobOptions.precision; model/runtime.py resolve_precision). ``auto``: float32 on the
# CPU (the same poses at any thread count), float16 on a GPU as the release runs it. ``bfloat16``: on a GPU,
# or on a CPU with bf16 instructions (AMX or AVX512-BF16), about 3× faster there; the poses then depend on
# the machine and the thread count, as on a GPU.
PRECISION_AUTO, PRECISION_FLOAT32, PRECISION_BFLOAT16 = "auto", "float32", "bfloat16"
PRECISIONS = (PRECISION_AUTO, PRECISION_FLOAT32, PRECISION_BFLOAT16)
DEPTH_FLAT = "flat"
# Files taken for photos (and depth-model inputs) when a folder is given, by suffix (lower case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp")

# A photo's outcome (``PhotoResult.status``).
STATUS_OK = "ok"
STATUS_NO_VALID_DEPTH = "no_valid_depth"
STATUS_NO_POSE = "no_pose"
STATUS_FAILED = "failed"
STATUSES = (STATUS_OK, STATUS_FAILED, STATUS_NO_VALID_DEPTH, STATUS_NO_POSE)

# A pose's confidence class (``PhotoResult.confidence``; ``none`` without a pose): from its inlier ratio
# and the model's thresholds (``solver/confidence.py``).
CONFIDENCE_HIGH = "high"
CONFIDENCE_MEDIUM = "medium"
CONFIDENCE_LOW = "low"
CONFIDENCE_NONE = "none"

# The result layers (``output/tables.py`` gives their schemas) and where a poses row's point comes from.
LAYER_POSES = "poses"
LAYER_PRIORS = "priors"
LAYER_INLIERS = "inliers"
LAYER_OUTLINES = "outlines"
LAYER_SHIFTS = "shifts"
LAYER_MATCHES = "matches"
# in their usual order; the matches, which a job writes only when asked to, last
LAYERS = (LAYER_POSES, LAYER_PRIORS, LAYER_INLIERS, LAYER_OUTLINES, LAYER_SHIFTS, LAYER_MATCHES)
GEOM_CORRECTED = "corrected"
GEOM_PRIOR = "prior"
GEOM_NONE = "none"

# Output formats and what to do with an output that already holds results.
FORMAT_GPKG, FORMAT_SHP, FORMAT_GEOJSON, FORMAT_CSV = "gpkg", "shp", "geojson", "csv"
FORMATS = (FORMAT_GPKG, FORMAT_SHP, FORMAT_GEOJSON, FORMAT_CSV)
MODE_REFUSE = "refuse"
MODE_APPEND = "append"
MODE_OVERWRITE = "overwrite"
MODES = (MODE_REFUSE, MODE_APPEND, MODE_OVERWRITE)

DEFAULT_SEARCH_RADIUS_M = 10.0


def search_radius_m(option_m: float | None, uncertainty_m: float | None) -> float:
    """The radius searched around a prior, metres: the option, else the photo's EXIF accuracy, else
    ``DEFAULT_SEARCH_RADIUS_M``."""
    return float(option_m or uncertainty_m or DEFAULT_SEARCH_RADIUS_M)


MAX_SEARCH_RADIUS_M = 500.0
# Photos per backbone pass on a GPU when the options do not say (JobOptions.batch_size), and the most allowed.
DEFAULT_GPU_BATCH = 8
MAX_BATCH_SIZE = 256


class OptionsError(Loc2Error, ValueError):
    """Options that cannot be used (an unknown name, a value out of range); the message names it."""


@dataclass
class JobOptions:
    """Everything a localization job needs besides the photos and the orthophoto.

    Attributes:
        model: ``demo``, a published preset (``vigor``, ``kitti``) or the path of a Loc2 checkpoint.
        weights: (backbone, matcher) weight files (or ``loc2 models`` names) for a published preset.
        depth: ``flat`` (flat-ground depth, no weights) or a folder of depth maps named like the photos.
        search_radius_m: prior uncertainty to search, metres; None = the photo's EXIF horizontal error,
            else ``DEFAULT_SEARCH_RADIUS_M``.
        device: ``auto``, ``cuda``, ``mps`` or ``cpu``.
        precision: the backbone's arithmetic, ``auto``, ``float32`` or ``bfloat16`` (``PRECISIONS``).
        figures_dir: where to write one match figure PNG per photo (None: no figures).
        hfov_deg: horizontal field of view of pinhole photos whose EXIF has no focal length, degrees.
        camera_height_m: camera height above the ground for flat-ground depth, metres.
        use_ransac: False for one weighted solve (faster, less robust).
        solver: ``precise`` (default) or ``published`` (the paper's protocol exactly); ``solver/config.py``.
        seed: RANSAC seed (the same photo, options and seed give the same pose).
        include_matches: also produce the ``matches`` layer.
        batch_size: photos per backbone pass, with reading and solving on their own threads beside the
            networks (``pipeline/stream.py``); None = ``DEFAULT_GPU_BATCH`` on a GPU, 1 (one photo after the
            other, no threads) on the CPU, where batching gains nothing. The poses do not depend on it on the CPU.
    """

    model: str = MODEL_DEMO
    weights: tuple[str, str] | None = None
    depth: str = DEPTH_FLAT
    search_radius_m: float | None = None
    device: str = "auto"
    figures_dir: Path | None = None
    hfov_deg: float | None = None
    camera_height_m: float = 1.6
    use_ransac: bool = True
    solver: str = DEFAULT_SOLVER
    seed: int = 0
    include_matches: bool = False
    batch_size: int | None = None
    precision: str = PRECISION_AUTO

    def __post_init__(self) -> None:
        self.model = str(self.model)
        if self.weights is not None:
            if not isinstance(self.weights, tuple | list) or len(self.weights) != 2:
                raise OptionsError(f"weights must be two files (backbone, matcher), got {self.weights!r}")
            self.weights = (str(self.weights[0]), str(self.weights[1]))
        if self.figures_dir is not None:
            if not isinstance(self.figures_dir, str | os.PathLike):
                raise OptionsError(f"figures_dir must be a folder path, got {self.figures_dir!r}")
            self.figures_dir = Path(self.figures_dir)
        if not isinstance(self.depth, str):
            raise OptionsError(f"depth must be 'flat' or a folder path, got {self.depth!r}")
        if self.device not in DEVICES:
            raise OptionsError(f"unknown device {self.device!r} (use one of {', '.join(DEVICES)})")
        if self.precision not in PRECISIONS:
            raise OptionsError(f"unknown precision {self.precision!r} (use one of {', '.join(PRECISIONS)})")
        if self.solver not in SOLVERS:
            raise OptionsError(f"unknown solver {self.solver!r} (use one of {', '.join(SOLVERS)})")
        _check_range("search radius", self.search_radius_m, 0.0, MAX_SEARCH_RADIUS_M, "m", optional=True)
        _check_range("field of view", self.hfov_deg, 0.0, 180.0, "°", optional=True, open_low=True)
        _check_range("camera height", self.camera_height_m, 0.0, 100.0, "m", open_low=True)
        self.seed = _integer("seed", self.seed)
        if self.batch_size is not None:
            self.batch_size = _integer("batch size", self.batch_size)
            _check_range("batch size", self.batch_size, 1, MAX_BATCH_SIZE, "photos")

    @property
    def model_name(self) -> str:
        """The model's short name: ``demo``, ``vigor``, ``kitti`` or a checkpoint file's stem."""
        return self.model if self.model in MODELS else Path(self.model).stem

    def result_labels(self, precision: str | None = None) -> dict[str, str]:
        """What every result row of a job records of how it was made: the model's short name, the solver
        and the precision: ``precision``, the one the backbone ran in, for a located photo; else as asked."""
        return {"model": self.model_name, "solver": self.solver, "precision": precision or self.precision}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (paths as strings)."""
        out = dataclasses.asdict(self)
        out["figures_dir"] = None if self.figures_dir is None else str(self.figures_dir)
        out["weights"] = None if self.weights is None else list(self.weights)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> JobOptions:
        """Options from :meth:`to_dict`'s form; unknown names raise OptionsError (never silently ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise OptionsError(f"unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        values = dict(values)
        if isinstance(values.get("weights"), list):
            values["weights"] = tuple(values["weights"])
        return _build(cls, values, "options")


def _build(cls: type, values: Any, what: str) -> Any:
    """``cls(**values)`` for a ``from_dict``: values of the wrong type raise OptionsError naming ``what``."""
    if not isinstance(values, dict):
        raise OptionsError(f"the {what} must be an object, got {values!r}")
    try:
        return cls(**values)
    except (TypeError, ValueError, AttributeError) as exc:
        raise OptionsError(f"bad {what}: {exc}") from None


def _path_text(what: str, value: Any) -> str:
    """A file path given as text; OptionsError for anything else (a number, a list, ...)."""
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise OptionsError(f"the {what} must be a file path, got {value!r}")
    return str(value)


def _integer(what: str, value: Any) -> int:
    """``value`` as an int (a whole float is fine); OptionsError naming ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise OptionsError(f"the {what} must be a whole number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise OptionsError(f"the {what} must be a whole number, got {value!r}") from None
    if not math.isfinite(number) or number != int(number) or abs(number) >= 2**63:
        raise OptionsError(f"the {what} must be a whole number below 2^63 in size, got {value!r}")
    return int(value) if isinstance(value, int) else int(number)


def _check_range(
    what: str,
    value: float | None,
    low: float,
    high: float,
    unit: str,
    optional: bool = False,
    open_low: bool = False,
) -> None:
    """Raise OptionsError unless ``value`` is a finite number in [low, high] (or (low, high])."""
    if value is None and optional:
        return
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise OptionsError(f"the {what} must be a number, got {value!r}") from None
    too_low = number <= low if open_low else number < low
    if not math.isfinite(number) or too_low or number > high:
        bracket = "(" if open_low else "["
        raise OptionsError(f"the {what} {value!r} {unit} is out of range {bracket}{low:g}, {high:g}] {unit}")


@dataclass
class PhotoItem:
    """One photo to localize and its prior.

    Attributes:
        path: the photo file.
        lon, lat: prior position, WGS84 degrees, or ``None`` when unknown.
        heading_deg: prior heading, degrees clockwise from north in [0, 360), or ``None``.
        uncertainty_m: prior horizontal uncertainty in metres (e.g. GPSHPositioningError), or ``None``.
        heading_ref: ``'T'`` (true north), ``'M'`` (magnetic north: EXIF GPSImgDirectionRef M; the
            declination is NOT corrected, so widen the heading tolerance) or ``None`` (not stated; taken
            as true north).
    """

    path: Path
    lon: float | None
    lat: float | None
    heading_deg: float | None = None
    uncertainty_m: float | None = None
    heading_ref: str | None = None

    def __post_init__(self) -> None:
        self.path = Path(self.path)

    @property
    def has_position(self) -> bool:
        return self.lon is not None and self.lat is not None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "path": str(self.path)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PhotoItem:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown or "path" not in values:
            raise OptionsError(f"a photo item needs 'path' and only {', '.join(sorted(known))}: got {values}")
        return _build(cls, values, "photo item")


@dataclass
class PhotoSource:
    """Where a job's photos and priors come from: exactly one of the three.

    Attributes:
        images: photo files or folders (priors from EXIF GPS).
        priors_file: a CSV (``photo,lon,lat[,heading][,crs]``) or a point layer file with a photo field.
        items: photos with their priors given explicitly (the dialog's clicked or typed prior).
        photo_field, heading_field: the point layer's fields (``priors_file`` only).
        base_dir: the folder relative photo paths of ``priors_file`` are resolved against (default: the
            file's own folder).
        recursive: descend into sub-folders of ``images``.
    """

    images: list[str] = field(default_factory=list)
    priors_file: str | None = None
    items: list[PhotoItem] = field(default_factory=list)
    photo_field: str = "photo"
    heading_field: str | None = "direction"
    base_dir: str | None = None
    recursive: bool = False

    def __post_init__(self) -> None:
        given = [bool(self.images), self.priors_file is not None, bool(self.items)]
        if sum(given) != 1:
            raise OptionsError(
                "give the photos one way: image files/folders, a priors file or explicit items"
            )
        for name in ("images", "items"):
            if not isinstance(getattr(self, name), list | tuple):
                raise OptionsError(f"the photo source's {name} must be a list, got {getattr(self, name)!r}")
        self.images = [_path_text("photo", p) for p in self.images]
        if self.priors_file is not None:
            self.priors_file = _path_text("priors file", self.priors_file)
        self.items = [i if isinstance(i, PhotoItem) else PhotoItem.from_dict(i) for i in self.items]

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "items": [i.to_dict() for i in self.items]}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PhotoSource:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise OptionsError(f"unknown photo source field(s) {', '.join(unknown)}")
        return _build(cls, values, "photo source")


@dataclass
class OutputSpec:
    """Where a job's results go, photo by photo.

    Attributes:
        path: the output file (``.gpkg``, ``.shp``, ``.geojson`` or ``.csv``).
        format: one of ``FORMATS``, or None to infer it from the suffix.
        mode: ``refuse`` an output that already holds results, ``append`` (resume: photos already in it
            are skipped) or ``overwrite`` it.
    """

    path: str
    format: str | None = None
    mode: str = MODE_REFUSE

    def __post_init__(self) -> None:
        self.path = _path_text("output", self.path)
        if self.mode not in MODES:
            raise OptionsError(f"unknown output mode {self.mode!r} (use one of {', '.join(MODES)})")
        if self.format is not None and self.format not in FORMATS:
            raise OptionsError(f"unknown output format {self.format!r} (use one of {', '.join(FORMATS)})")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> OutputSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown or "path" not in values:
            raise OptionsError(f"an output needs 'path' and only {', '.join(sorted(known))}: got {values}")
        return _build(cls, values, "output")


@dataclass
class LocalizeRequest:
    """One localization job: photos, orthophoto, options and output (the CLI's and the worker's input)."""

    ortho: str
    photos: PhotoSource
    output: OutputSpec
    options: JobOptions = field(default_factory=JobOptions)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ortho": str(self.ortho),
            "photos": self.photos.to_dict(),
            "output": self.output.to_dict(),
            "options": self.options.to_dict(),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LocalizeRequest:
        missing = [k for k in ("ortho", "photos", "output") if k not in values]
        if missing:
            raise OptionsError(f"a localize request needs {', '.join(missing)}")
        unknown = sorted(set(values) - {"ortho", "photos", "output", "options"})
        if unknown:
            raise OptionsError(f"unknown request field(s) {', '.join(unknown)}")
        for key in ("photos", "output", "options"):
            if key in values and not isinstance(values[key], dict):
                raise OptionsError(f"{key!r} must be an object, got {type(values[key]).__name__}")
        return cls(
            ortho=_path_text("orthophoto", values["ortho"]),
            photos=PhotoSource.from_dict(values["photos"]),
            output=OutputSpec.from_dict(values["output"]),
            options=JobOptions.from_dict(values.get("options", {})),
        )
