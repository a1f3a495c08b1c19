"""One localization job end to end: photos → results written photo by photo → a summary.

The command line (``loc2 localize``) and the worker the QGIS plugin talks to (``core/worker``) both run
:func:`run_localize`, so the same request gives the same results, files and messages from either. A photo
that cannot be read, has no prior or cannot be localized is written to the output as a ``failed`` row with
its reason; nothing already written is lost when the job is cancelled or killed (``--resume`` goes on).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ExportError, Loc2Error
from ..inputs.ortho import Orthophoto
from ..inputs.priors import collect_items
from ..output.export import ResultWriter
from ..output.lock import output_lock
from ..output.results import PhotoResult
from ..types import MODE_APPEND, JobOptions, LocalizeRequest
from .batch import load_localizer, localize_batch

# Share of a job's progress bar taken by loading the model (the rest is shared by the photos).
MODEL_SHARE = 0.05


@dataclass
class Progress:
    """Where a job stands: ``stage`` is ``model``, one of ``search.STAGES`` or ``done``; ``fraction``
    the share of the whole job done, 0–1; ``photo`` the photo being worked on ('' for none)."""

    done: int
    total: int
    stage: str
    fraction: float
    photo: str = ""


@dataclass
class JobSummary:
    """What a job did. ``output`` is the file written (its suffix added where it had none); ``sources``
    the OGR data source of each layer (``results.gpkg|layername=poses``)."""

    output: str
    sources: dict[str, str]
    total: int = 0
    localized: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: bool = False
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def text(self) -> str:
        """One line for people: "7 of 8 photos localized, 1 failed (see status): results in X"."""
        parts = [f"{self.localized} of {self.total} photos localized"]
        if self.failed:
            parts.append(f"{self.failed} failed (see the status and message fields)")
        if self.skipped:
            parts.append(f"{self.skipped} already done")
        if self.cancelled:
            parts.append("cancelled")
        return ", ".join(parts) + f"; results in {self.output}"


def _write_failed_message(exc: ExportError, summary: JobSummary, output: Path) -> str:
    """What a failed write (disk full, file limit, removed drive) says: the cause, what is kept, what to do."""
    kept = summary.localized + summary.failed + summary.skipped
    return (
        f"{exc} (is the disk full or the file no longer writable?); the {kept} photo(s) written before "
        f"are kept in {output}: make room and run again with --resume (append) to go on"
    )


def _unreadable_result(path: Path, message: str, crs_wkt: str, options: JobOptions) -> PhotoResult:
    return PhotoResult.failed(str(path), message, crs_wkt=crs_wkt, **options.result_labels())


def run_localize(
    request: LocalizeRequest,
    *,
    on_result: Callable[[PhotoResult], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
    get_localizer: Callable = load_localizer,
) -> JobSummary:
    """Run a job: check the orthophoto and the output first, then write each photo's rows as soon as it is
    done (unreadable photos first, as ``failed`` rows). ``get_localizer(options)`` gives the model (the
    worker passes a cached one). Raises Loc2Error only when nothing can be done (unusable orthophoto or
    output, no photos, missing weights)."""
    t0 = time.perf_counter()
    options = request.options
    report = on_progress or (lambda _progress: None)
    with Orthophoto.open(request.ortho) as ortho:  # fail early on an unusable orthophoto
        crs_wkt = ortho.crs.to_wkt()
    items, errors = collect_items(request.photos)
    unreadable = [(p, m) for p, m in errors if not p.is_dir()]  # an empty folder is no photo
    if not items and not unreadable:
        detail = "; ".join(m for _, m in errors[:3])
        raise Loc2Error("no photos to localize" + (f" ({detail})" if detail else ""))
    out = request.output
    writer = ResultWriter(  # checks the output; its files are touched once the model is loaded
        out.path,
        out.format,
        crs=crs_wkt,
        include_matches=options.include_matches,
        mode=out.mode,
        defer_create=True,
    )
    with output_lock(writer.path):  # a second run into the same output is refused, never interleaved
        return _run_job(
            request, writer, items, unreadable, crs_wkt, t0, on_result, report, is_canceled, get_localizer
        )


def _run_job(
    request: LocalizeRequest,
    writer: ResultWriter,
    items: list,
    unreadable: list[tuple[Path, str]],
    crs_wkt: str,
    t0: float,
    on_result: Callable[[PhotoResult], None] | None,
    report: Callable[[Progress], None],
    is_canceled: Callable[[], bool] | None,
    get_localizer: Callable,
) -> JobSummary:
    """:func:`run_localize` once the inputs are read and the output is locked: the model, then the rows."""
    options, out = request.options, request.output
    summary = JobSummary(output=str(writer.path), sources=writer.sources())
    if out.mode == MODE_APPEND:
        done = writer.done_photos()
        before = len(items) + len(unreadable)
        items = [it for it in items if str(it.path) not in done]
        unreadable = [(p, m) for p, m in unreadable if str(p) not in done]
        summary.skipped = before - len(items) - len(unreadable)
    summary.total = len(items) + len(unreadable)

    def record(result: PhotoResult) -> None:
        try:
            writer.write(result)  # before anyone hears of it: a result reported is a result kept
        except ExportError as exc:
            raise ExportError(_write_failed_message(exc, summary, writer.path)) from None
        if result.ok:
            summary.localized += 1
        else:
            summary.failed += 1
            summary.failures.append(result.message or f"{Path(result.photo).name}: {result.status}")
        if on_result is not None:
            on_result(result)

    def share(done: float) -> float:  # of the whole job, once the model is loaded
        return MODEL_SHARE + (1 - MODEL_SHARE) * done / max(summary.total, 1)

    localizer = None
    if items:  # the model first: when it cannot be loaded, nothing is written
        report(Progress(0, summary.total, "model", 0.0))
        localizer = get_localizer(options)
    writer.create_layers()  # only now: a model that cannot be loaded leaves the output as it was
    for path, message in unreadable:
        record(_unreadable_result(path, message, crs_wkt, options))
    n_items = len(items)
    if items and not (is_canceled is not None and is_canceled()):
        offset = len(unreadable)

        def stage(index: int, name: str, fraction: float) -> None:
            report(
                Progress(
                    offset + index,
                    summary.total,
                    name,
                    share(offset + index + fraction),
                    str(items[index].path),
                )
            )

        results = localize_batch(
            items,
            request.ortho,
            options,
            on_result=record,
            is_canceled=is_canceled,
            localizer=localizer,
            on_stage=stage,
        )
        n_items -= len(results)
    summary.cancelled = n_items > 0  # photos never started (cancelled before them)
    summary.seconds = time.perf_counter() - t0
    report(Progress(summary.localized + summary.failed, summary.total, "done", 1.0))
    return summary
