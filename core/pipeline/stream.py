"""Photos in batches with the three stages at once: reading on one thread, the networks on the calling
thread, the solver on another.

While the device runs the backbone on batch k (``search.network_stage``: every photo of the batch in one
forward pass, their search crops ``batch`` at a time), the reader prepares the photos after it (decoding,
depth, orthophoto windows: ``search.read_stage``) and the solver works on batch k − 1
(``search.solve_stage``). Results reach ``emit`` on the calling thread in the photos' order, each as soon
as it and every photo before it are done. The orthophoto is read by the reader thread only (a GDAL dataset
is not shared between threads; the crops' PROJ transformers are, which pyproj ≥ 3.1 allows). On CUDA the
solver runs on a CUDA stream of its own (:class:`_CudaHandoff`), so its kernels overlap the backbone's. On the CPU every stage gives each photo the same bits as the one-photo
path (``Localizer.ground_views``), so the poses do not depend on the batch size.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import torch

from ..inputs.ortho import Orthophoto
from ..localizer import Localizer
from ..output.results import PhotoResult
from ..types import JobOptions, PhotoItem
from .search import (
    Cancelled,
    MatchedPhoto,
    ReadyPhoto,
    failed_result,
    network_stage,
    read_stage,
    solve_stage,
)

# Photos read ahead of the networks, in batches.
READ_AHEAD_BATCHES = 2


def localize_stream(
    items: Sequence[PhotoItem],
    ortho: Orthophoto,
    localizer: Localizer,
    options: JobOptions,
    batch: int,
    emit: Callable[[int, PhotoResult], None],
    is_canceled: Callable[[], bool] = lambda: False,
    on_stage: Callable[[int, str, float], None] | None = None,
) -> None:
    """Localize ``items`` ``batch`` photos at a time, calling ``emit(index, result)`` in order.

    ``is_canceled()`` is asked on this thread between batches: once it is true no new photo starts, the
    solves under way finish and are emitted (a result computed is never lost), and the call returns.
    ``on_stage(index, stage, fraction)``: ``backbone`` as a photo's batch enters the networks, ``solve`` as
    it is handed to the solver. An exception from ``emit`` (the writer failing) stops everything and rises.
    """
    crs_wkt = ortho.crs.to_wkt()
    stop = threading.Event()
    reader = ThreadPoolExecutor(1, thread_name_prefix="loc2-read")
    solver = ThreadPoolExecutor(1, thread_name_prefix="loc2-solve")
    reads: dict[int, Future] = {}
    pending: deque[tuple[int, Future | PhotoResult]] = deque()

    def read(index: int) -> ReadyPhoto | PhotoResult:
        def check(stage: str, _fraction: float) -> None:
            if stop.is_set():
                raise Cancelled(stage)

        t0 = time.perf_counter()
        try:
            return read_stage(items[index], ortho, localizer.preset, options, check)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - a photo's failure must never stop the batch
            return failed_result(items[index], exc, crs_wkt, options, time.perf_counter() - t0)

    handoff = _CudaHandoff(localizer.device)

    def solve(ready: ReadyPhoto, matched: MatchedPhoto, made: object) -> PhotoResult:
        try:
            with handoff.receive(made, matched.matches.probs()):
                generator = torch.Generator().manual_seed(options.seed)
                return solve_stage(localizer, ready, matched, options, generator)
        except Exception as exc:  # noqa: BLE001
            return failed_result(ready.item, exc, crs_wkt, options, time.perf_counter() - ready.started_s)

    def read_ahead(until: int) -> None:
        for index in range(len(reads) + next_read[0], min(until, len(items))):
            reads[index] = reader.submit(read, index)

    def to_solver(taken: list[tuple[int, ReadyPhoto | PhotoResult]]) -> None:
        group = [(index, ready) for index, ready in taken if isinstance(ready, ReadyPhoto)]
        if on_stage is not None:
            for index, _ in group:
                on_stage(index, "backbone", 0.1)
        matched = dict(
            zip((i for i, _ in group), _networks(localizer, group, batch, crs_wkt, options), strict=True)
        )
        for index, ready in taken:  # in the photos' order
            outcome = matched.get(index, ready)
            if isinstance(outcome, PhotoResult):  # failed reading it, or in the networks
                pending.append((index, outcome))
                continue
            if on_stage is not None:
                on_stage(index, "solve", 0.8)
            pending.append((index, solver.submit(solve, ready, outcome, handoff.send())))

    next_read = [0]  # the first index not yet taken from ``reads``
    try:
        for start in range(0, len(items), batch):
            if is_canceled():
                break
            stop_at = min(start + batch, len(items))
            read_ahead(start + batch * (READ_AHEAD_BATCHES + 1))
            taken = [(index, reads.pop(index).result()) for index in range(start, stop_at)]
            next_read[0] = stop_at
            to_solver(taken)
            _emit_done(pending, emit, keep=batch)  # at most one batch waits for the solver
    finally:
        stop.set()
        reader.shutdown(wait=True, cancel_futures=True)
        try:
            _emit_done(pending, emit, keep=0)  # computed results are kept, even on cancel or error
        finally:
            solver.shutdown(wait=True, cancel_futures=True)


def _networks(
    localizer: Localizer,
    group: list[tuple[int, ReadyPhoto]],
    batch: int,
    crs_wkt: str,
    options: JobOptions,
) -> list:
    """``network_stage`` on the whole group; when it fails (one odd photo, memory), on each photo alone, so
    that only the photos that fail alone get ``failed`` results."""
    photos = [ready for _, ready in group]
    if not photos:
        return []
    try:
        return network_stage(localizer, photos, batch)
    except Exception:  # noqa: BLE001 - retried photo by photo below
        if len(photos) == 1:
            return [_one_network(localizer, photos[0], crs_wkt, options)]
    return [_one_network(localizer, ready, crs_wkt, options) for ready in photos]


def _one_network(localizer: Localizer, ready: ReadyPhoto, crs_wkt: str, options: JobOptions):
    try:
        return network_stage(localizer, [ready], 1)[0]
    except Exception as exc:  # noqa: BLE001 - a photo's failure must never stop the batch
        return failed_result(ready.item, exc, crs_wkt, options, time.perf_counter() - ready.started_s)


def _emit_done(pending: deque, emit: Callable[[int, PhotoResult], None], keep: int) -> None:
    """Emit the results at the head of ``pending`` in order: those done, then wait on the oldest until at most
    ``keep`` solves remain in flight."""
    while pending:
        index, result = pending[0]
        if isinstance(result, Future):
            in_flight = sum(isinstance(r, Future) for _, r in pending)
            if not result.done() and in_flight <= keep:
                return
            result = result.result()
        pending.popleft()
        emit(index, result)


class _CudaHandoff:
    """On CUDA, lets the solver thread run on a stream of its own, beside the networks' kernels: ``send()``
    (networks' thread) marks the point after a photo's matches were made; ``receive(mark, tensors)`` (solver
    thread) makes the solver's stream wait for it and keeps the caching allocator from giving ``tensors``'
    memory to the networks before the solver's work on them is done. On other devices both do nothing."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.stream = torch.cuda.Stream(device) if self.cuda else None

    def send(self) -> object:
        if not self.cuda:
            return None
        event = torch.cuda.Event()
        event.record()
        return event

    @contextlib.contextmanager
    def receive(self, mark: object, tensors: list[torch.Tensor]):
        if not self.cuda:
            yield
            return
        with torch.cuda.stream(self.stream):
            self.stream.wait_event(mark)
            for tensor in tensors:
                tensor.record_stream(self.stream)
            yield
