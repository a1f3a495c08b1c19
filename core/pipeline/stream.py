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
import logging
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
    photo_generator,
    read_stage,
    solve_stage,
)

_LOG = logging.getLogger("loc2")
# Photos read ahead of the networks, in batches.
READ_AHEAD_BATCHES = 2


def localize_stream(
    items: Sequence[PhotoItem],
    ortho: Orthophoto,
    localizer: Localizer,
    options: JobOptions,
    batch: int,
    emit: Callable[[int, PhotoResult], None],
    is_canceled: Callable[[], bool] | None = None,
    on_stage: Callable[[int, str, float], None] | None = None,
) -> None:
    """Localize ``items`` ``batch`` photos at a time, calling ``emit(index, result)`` in order.

    ``is_canceled()`` is asked on this thread between batches: once it is true no new photo starts, the
    solves under way finish and are emitted (a result computed is never lost), and the call returns.
    ``on_stage(index, stage, fraction)``: ``backbone`` as a photo's batch enters the networks, ``solve`` as
    it is handed to the solver. An exception from ``emit`` (the writer failing) stops everything and rises.
    """
    _Stream(items, ortho, localizer, options, batch, on_stage).run(emit, is_canceled or (lambda: False))


class _Stream:
    """One :func:`localize_stream` call: its two threads, the photos read ahead (``reads``, by index) and the
    results not yet emitted (``pending``, in order: a result, or the solver's future of one)."""

    def __init__(self, items, ortho, localizer, options, batch, on_stage):
        self.items = items
        self.ortho = ortho
        self.localizer = localizer
        self.options = options
        self.batch = batch
        self.on_stage = on_stage or (lambda index, stage, fraction: None)
        self.crs_wkt = ortho.crs.to_wkt()
        self.stop = threading.Event()
        self.reader = ThreadPoolExecutor(1, thread_name_prefix="loc2-read")
        self.solver = ThreadPoolExecutor(1, thread_name_prefix="loc2-solve")
        self.handoff = _CudaHandoff(localizer.device)
        self.reads: dict[int, Future] = {}
        self.next_read = 0  # the first index not yet taken from ``reads``
        self.pending: deque[tuple[int, Future | PhotoResult]] = deque()

    def run(self, emit: Callable[[int, PhotoResult], None], is_canceled: Callable[[], bool]) -> None:
        try:
            for start in range(0, len(self.items), self.batch):
                if is_canceled():
                    break
                stop_at = min(start + self.batch, len(self.items))
                self.read_ahead(start + self.batch * (READ_AHEAD_BATCHES + 1))
                taken = [(index, self.reads.pop(index).result()) for index in range(start, stop_at)]
                self.next_read = stop_at
                self.to_solver(taken)
                _emit_done(self.pending, emit, keep=self.batch)  # at most one batch waits for the solver
        finally:
            self.stop.set()
            self.reader.shutdown(wait=True, cancel_futures=True)
            try:
                _emit_done(self.pending, emit, keep=0)  # computed results are kept, even on cancel or error
            finally:
                self.solver.shutdown(wait=True, cancel_futures=True)

    def read_ahead(self, until: int) -> None:
        """Hand the reader every photo up to index ``until`` (excluded) not yet handed to it."""
        for index in range(self.next_read + len(self.reads), min(until, len(self.items))):
            self.reads[index] = self.reader.submit(self.read, index)

    def read(self, index: int) -> ReadyPhoto | PhotoResult:
        """(reader thread) A photo read, or its ``failed`` result."""

        def check(stage: str, _fraction: float) -> None:
            if self.stop.is_set():
                raise Cancelled(stage)

        t0 = time.perf_counter()
        item = self.items[index]
        try:
            return read_stage(item, self.ortho, self.localizer.preset, self.options, check)
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - a photo's failure must never stop the batch
            return failed_result(item, exc, self.crs_wkt, self.options, time.perf_counter() - t0)

    def to_solver(self, taken: list[tuple[int, ReadyPhoto | PhotoResult]]) -> None:
        """The networks on the photos read, then each one's solve handed to the solver, in order."""
        group = [(index, ready) for index, ready in taken if isinstance(ready, ReadyPhoto)]
        for index, _ in group:
            self.on_stage(index, "backbone", 0.1)
        outcomes = _networks(
            self.localizer, [ready for _, ready in group], self.batch, self.crs_wkt, self.options
        )
        matched = dict(zip((index for index, _ in group), outcomes, strict=True))
        for index, ready in taken:  # in the photos' order
            outcome = matched.get(index, ready)
            if isinstance(outcome, PhotoResult):  # failed reading it, or in the networks
                self.pending.append((index, outcome))
                continue
            self.on_stage(index, "solve", 0.8)
            self.pending.append((index, self.solver.submit(self.solve, ready, outcome, self.handoff.send())))

    def solve(self, ready: ReadyPhoto, matched: MatchedPhoto, made: object) -> PhotoResult:
        """(solver thread) The photo's result, or its ``failed`` result."""
        try:
            with self.handoff.receive(made, matched.matches.probs()):
                generator = photo_generator(self.options, self.localizer.device)
                return solve_stage(self.localizer, ready, matched, self.options, generator)
        except Exception as exc:  # noqa: BLE001 - a photo's failure must never stop the batch
            runtime_s = time.perf_counter() - ready.started_s
            return failed_result(ready.item, exc, self.crs_wkt, self.options, runtime_s)


def _networks(
    localizer: Localizer, photos: list[ReadyPhoto], batch: int, crs_wkt: str, options: JobOptions
) -> list[MatchedPhoto | PhotoResult]:
    """``network_stage`` on the whole group; when it fails (one odd photo, memory), on each photo alone, so
    that only the photos that fail alone get ``failed`` results."""
    if not photos:
        return []
    if len(photos) > 1:
        try:
            return network_stage(localizer, photos, batch)
        except Exception as exc:  # noqa: BLE001 - retried photo by photo below
            _LOG.info(
                "a batch of %d photos failed in the networks (%s); each is retried alone", len(photos), exc
            )
    return [_one_network(localizer, ready, crs_wkt, options) for ready in photos]


def _one_network(
    localizer: Localizer, ready: ReadyPhoto, crs_wkt: str, options: JobOptions
) -> MatchedPhoto | PhotoResult:
    """``network_stage`` on one photo, or its ``failed`` result."""
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
