"""``loc2 localize --engine ray``: a job on a Ray cluster (or a local Ray instance), batch by batch.

The driver plans batches of photos on the same orthophoto tile (``plan.py``) and streams them through Ray
Data's ``map_batches`` with a pool of actors (:class:`LocalizeActor`): each actor loads the model once,
localizes a batch with the engine's own :func:`~loc2.core.pipeline.batch.localize_batch` (so each photo
gets exactly the single-process pose: a fresh generator seeded with the job's seed per photo) and writes
the batch's results as one GeoParquet part (``parts.py``) before it reports them. Ray restarts an actor
that dies and retries its batch (which rewrites the same part name); a killed driver loses at most the
batches in flight, and a rerun with ``--resume`` skips every photo already in a part.

With ``--gpus-per-worker 0.5`` two actors share each GPU, so one's solver (CPU) runs while the other's
backbone and matcher run on the GPU.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import Loc2Error
from ..inputs.ortho import Orthophoto
from ..output.results import PhotoResult
from ..types import JobOptions, LocalizeRequest, PhotoItem
from .parts import remove_stale_temporaries, write_part
from .plan import DEFAULT_BATCH_SIZE, DEFAULT_TILE_M, Batch, plan_batches

RAY_INSTALL_HINT = (
    "--engine ray needs Ray Data, an optional extra: pip install 'loc2[ray]' (or pip install 'ray[data]') "
    "into the Python that runs loc2"
)
WORKERS_DIR = "_workers"  # the parts folder's record of the actors' processes (host-pid files)


@dataclass
class RayConfig:
    """How a job runs on Ray.

    Attributes:
        address: the cluster (``auto``, ``ray://host:10001``, ...); None starts a local Ray instance.
        workers: actors in the pool (each holds the model once); None: one per GPU, or per CPU but one.
        gpus_per_worker: GPUs each actor reserves (0 on CPU; 0.5 puts two actors on a GPU).
        cpus_per_worker: CPUs each actor reserves.
        batch_size: photos per batch (one part, one retry unit).
        max_restarts: how often Ray restarts a dead actor and runs its batch again (-1: always, Ray Data's
            default; 0: a dead actor stops the job, and ``--resume`` goes on).
        tile_m: orthophoto tile side used to group photos, metres in the orthophoto CRS.
        parts_dir: where the GeoParquet parts go.
    """

    parts_dir: Path
    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    batch_size: int = DEFAULT_BATCH_SIZE
    tile_m: float = DEFAULT_TILE_M
    max_restarts: int = -1

    def __post_init__(self) -> None:
        self.parts_dir = Path(self.parts_dir)
        if self.workers is not None and self.workers < 1:
            raise Loc2Error(f"the number of Ray workers must be at least 1, got {self.workers}")
        if not (self.gpus_per_worker >= 0 and math.isfinite(self.gpus_per_worker)):
            raise Loc2Error(f"GPUs per worker must be ≥ 0, got {self.gpus_per_worker}")
        if self.batch_size < 1:
            raise Loc2Error(f"the batch size must be at least 1 photo, got {self.batch_size}")


@dataclass
class RayProgress:
    """Where a Ray job stands: photos done (localized or failed) of ``total``, its rate and time left."""

    done: int
    total: int
    failed: int
    seconds: float
    failures: list[str] = field(default_factory=list)

    @property
    def photos_per_s(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_s(self) -> float:
        rate = self.photos_per_s
        return (self.total - self.done) / rate if rate > 0 else math.nan

    def text(self) -> str:
        eta = f"{self.eta_s:.0f} s" if math.isfinite(self.eta_s) else "--"
        return (
            f"{self.done}/{self.total} photos, {self.photos_per_s:.2f} photos/s, ETA {eta}, "
            f"{self.failed} failed"
        )


def import_ray():
    """The ``ray`` module with Ray Data, or Loc2Error saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 - Ray Data is the part we need
    except ImportError as exc:
        raise Loc2Error(f"{RAY_INSTALL_HINT} ({exc})") from None
    return ray


# ------------------------------------------------------------------------------------ the actor
class LocalizeActor:
    """One Ray actor: the model loaded once, then one batch (a row: name and JSON items) per call."""

    def __init__(self, ortho: str, options: dict[str, Any], parts_dir: str) -> None:
        from ..model.runtime import make_cpu_reproducible

        make_cpu_reproducible()  # before any torch computation in this process
        from ..pipeline.batch import load_localizer

        self.ortho = ortho
        self.options = JobOptions.from_dict(options)
        self.parts_dir = Path(parts_dir)
        self.localizer = load_localizer(self.options)
        self.record = self.parts_dir / WORKERS_DIR / f"{socket.gethostname()}-{os.getpid()}.json"
        self.record.parent.mkdir(parents=True, exist_ok=True)
        host, pid = socket.gethostname(), os.getpid()
        self.work = {"host": host, "pid": pid, "started": time.time(), "batches": 0, "photos": 0}
        self._write_record()

    def _write_record(self) -> None:
        """This actor's process, work done and peak memory (``ru_maxrss``, MB) in the parts folder."""
        import resource

        self.work["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.work))
        os.replace(tmp, self.record)  # a reader never sees half a record

    def __call__(self, rows: dict[str, Any]) -> dict[str, list]:
        """Localize each batch of ``rows`` (columns ``name``, ``items``), write its part, return one row per
        photo (``photo``, ``status``, ``message``, ``part``)."""
        from ..pipeline.batch import localize_batch

        out: dict[str, list] = {"photo": [], "status": [], "message": [], "part": []}
        with Orthophoto.open(self.ortho) as ortho:
            crs_wkt = ortho.crs.to_wkt()
        for name, items_json in zip(rows["name"], rows["items"], strict=True):
            items = [PhotoItem.from_dict(d) for d in json.loads(items_json)]
            results = localize_batch(items, self.ortho, self.options, localizer=self.localizer)
            part = write_part(self.parts_dir, str(name), results, crs_wkt)
            for r in results:
                out["photo"].append(r.photo)
                out["status"].append(r.status)
                out["message"].append(r.message)
                out["part"].append(part.name)
            self.work["batches"] += 1
            self.work["photos"] += len(results)
        self._write_record()
        return out


def _batch_row(batch: Batch) -> dict[str, str]:
    return {"name": batch.name, "items": json.dumps([it.to_dict() for it in batch.items])}


def _default_workers(ray, gpus_per_worker: float) -> int:
    resources = ray.cluster_resources()
    if gpus_per_worker > 0:
        return max(1, int(resources.get("GPU", 0) / gpus_per_worker))
    return max(1, int(resources.get("CPU", 1)) - 1)


# ------------------------------------------------------------------------------------ the driver
def run_batches(
    request: LocalizeRequest,
    batches: list[Batch],
    config: RayConfig,
    on_photo: Callable[[str, str, str], None] | None = None,
) -> None:
    """Stream ``batches`` through a pool of :class:`LocalizeActor` on the Ray instance already
    initialised; ``on_photo(photo, status, message)`` as each photo's part is in place."""
    ray = import_ray()
    workers = config.workers or _default_workers(ray, config.gpus_per_worker)
    rows = [_batch_row(b) for b in batches]
    dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows)))
    restarts = {} if config.max_restarts < 0 else {"max_restarts": config.max_restarts}
    results = dataset.map_batches(
        LocalizeActor,
        fn_constructor_kwargs={
            "ortho": str(request.ortho),
            "options": request.options.to_dict(),
            "parts_dir": str(config.parts_dir.resolve()),
        },
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=config.cpus_per_worker,
        num_gpus=config.gpus_per_worker or None,
        **restarts,  # by default Ray Data's actor pool restarts a dead actor and runs its batch again
    )
    try:
        for row in results.iter_rows():
            if on_photo is not None:
                on_photo(str(row["photo"]), str(row["status"]), str(row["message"]))
    except Exception as exc:  # RayTaskError, ActorDiedError...: the parts written so far are kept
        raise Loc2Error(
            f"the Ray job stopped ({_reason(exc)}); the finished batches are kept in "
            f"{config.parts_dir}: run the same command with --resume to go on"
        ) from exc


def _reason(exc: BaseException) -> str:
    """The engine's own message when a Loc2Error is behind Ray's wrappers, else the error's first line."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 10:
        if isinstance(current, Loc2Error):
            return str(current)
        seen.append(current)
        current = getattr(current, "cause", None) or current.__cause__
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def init_ray(address: str | None):
    """Connect to ``address`` (or start a local instance); returns (ray, whether we started it)."""
    ray = import_ray()
    if ray.is_initialized():
        return ray, False
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # ConnectionError, RuntimeError...: say which cluster
        raise Loc2Error(f"cannot start or reach Ray at {address or 'a local instance'}: {exc}") from exc
    return ray, True


def failed_results(
    unreadable: list[tuple[Path, str]], crs_wkt: str, options: JobOptions
) -> list[PhotoResult]:
    """``failed`` results for photos that could not even be read."""
    labels = options.result_labels()
    return [PhotoResult.failed(str(p), message, crs_wkt=crs_wkt, **labels) for p, message in unreadable]


def progress_printer(stream=None, every_s: float = 2.0) -> Callable[[RayProgress], None]:
    """A callback that prints :meth:`RayProgress.text` at most every ``every_s`` seconds (and the last)."""
    stream = stream or sys.stderr
    last = [-math.inf]

    def show(progress: RayProgress) -> None:
        now = time.perf_counter()
        if progress.done >= progress.total or now - last[0] >= every_s:
            last[0] = now
            print(progress.text(), file=stream, flush=True)

    return show


def plan_job(request: LocalizeRequest, config: RayConfig, done: set[str]):
    """(batches to run, unreadable photos to record, photos skipped as done, orthophoto CRS WKT)."""
    from ..inputs.priors import collect_items
    from .plan import is_parquet, items_from_parquet

    with Orthophoto.open(request.ortho) as ortho:  # fail early on an unusable orthophoto
        crs_wkt = ortho.crs.to_wkt()
    source = request.photos
    if source.priors_file is not None and is_parquet(source.priors_file):
        items, errors = (
            items_from_parquet(source.priors_file, source.photo_field, base_dir=source.base_dir),
            [],
        )
    else:
        items, errors = collect_items(source)
    unreadable = [(p, m) for p, m in errors if not p.is_dir()]
    if not items and not unreadable:
        raise Loc2Error("no photos to localize" + (f" ({errors[0][1]})" if errors else ""))
    before = len(items) + len(unreadable)
    items = [it for it in items if str(it.path) not in done]
    unreadable = [(p, m) for p, m in unreadable if str(p) not in done]
    skipped = before - len(items) - len(unreadable)
    return plan_batches(items, crs_wkt, config.batch_size, config.tile_m), unreadable, skipped, crs_wkt


def run_localize_ray(
    request: LocalizeRequest,
    config: RayConfig,
    on_progress: Callable[[RayProgress], None] | None = None,
) -> tuple[RayProgress, int]:
    """Run a job on Ray into ``config.parts_dir``; returns the final progress and the photos skipped as
    already done. The caller checks the parts folder's mode first (``parts.check_parts_dir``)."""
    from .parts import done_photos

    import_ray()  # say how to install it before anything else
    remove_stale_temporaries(config.parts_dir)
    batches, unreadable, skipped, crs_wkt = plan_job(request, config, done_photos(config.parts_dir))
    total = len(unreadable) + sum(len(b.items) for b in batches)
    t0 = time.perf_counter()
    progress = RayProgress(0, total, 0, 0.0)

    def count(photo: str, status: str, message: str) -> None:
        progress.done += 1
        if status != "ok":
            progress.failed += 1
            progress.failures.append(message or f"{Path(photo).name}: {status}")
        progress.seconds = time.perf_counter() - t0
        if on_progress is not None:
            on_progress(progress)

    if unreadable:
        from .parts import batch_id

        failed = failed_results(unreadable, crs_wkt, request.options)
        write_part(config.parts_dir, batch_id([r.photo for r in failed], "unreadable"), failed, crs_wkt)
        for r in failed:
            count(r.photo, r.status, r.message)
    if batches:
        ray, started = init_ray(config.address)
        try:
            run_batches(request, batches, config, on_photo=count)
        finally:
            if started:
                ray.shutdown()
    progress.seconds = time.perf_counter() - t0
    return progress, skipped
