"""Localize a batch of geotagged photos on an orthophoto: the model, then photo by photo (``search.py``).

The command line (``loc2 localize``), the QGIS dialog and the Processing algorithm all call
:func:`localize_batch` (through ``job.py``). A photo that fails becomes a :class:`PhotoResult` with status
``failed`` and a message; the batch goes on. Each result is handed to ``on_result`` as soon as it is computed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from ..errors import ModelNotFoundError
from ..inputs.ortho import Orthophoto
from ..localizer import Localizer
from ..model.presets import PRESETS
from ..model.runtime import resolve_device, resolve_precision
from ..output.results import PhotoResult
from ..types import DEFAULT_GPU_BATCH, MODEL_DEMO, MODELS, JobOptions, PhotoItem
from .search import Cancelled, failed_result, localize_item, photo_generator
from .stream import localize_stream


def _file_stamp(path: str) -> tuple:
    p = Path(path)
    try:
        stat = p.stat()
    except OSError:
        return (str(p), None)
    return (str(p.resolve()), stat.st_mtime_ns, stat.st_size)


def model_key(options: JobOptions) -> tuple:
    """What identifies the model ``options`` ask for (files by path, size and modification time, device and
    precision): two jobs with the same key can share one loaded Localizer."""
    weights = tuple(_file_stamp(w) for w in options.weights) if options.weights else None
    model = options.model if options.model in MODELS else _file_stamp(options.model)
    return (model, weights, options.device, options.precision)


def load_localizer(options: JobOptions) -> Localizer:
    """The Localizer the options ask for; ModelNotFoundError says which weights are missing and where, and
    Loc2Error a precision the device cannot run (before any weights are read)."""
    resolve_precision(options.precision, resolve_device(options.device))
    kwargs = {"device": options.device, "precision": options.precision}
    if options.model == MODEL_DEMO:
        return Localizer.demo(**kwargs)
    if options.model in PRESETS:
        if not options.weights:
            raise ModelNotFoundError(
                f"the {options.model} preset needs the published weights: pass the DINOv2 ViT-L/14 backbone "
                "(dinov2_vitl14_pretrain.pth) and the Loc2 matcher checkpoint (loc2 localize --weights "
                "BACKBONE MATCHER; `loc2 models list` shows where they come from)"
            )
        from ..model.weights import resolve_weights

        backbone, matcher = (resolve_weights(w) for w in options.weights)  # files or `loc2 models` names
        return Localizer.from_preset(options.model, backbone, matcher, **kwargs)
    return Localizer.from_checkpoint(options.model, **kwargs)


def batch_size_for(options: JobOptions, localizer: Localizer) -> int:
    """Photos per backbone pass: the options', else ``DEFAULT_GPU_BATCH`` on CUDA and 1 elsewhere."""
    if options.batch_size is not None:
        return options.batch_size
    return DEFAULT_GPU_BATCH if localizer.device.type == "cuda" else 1


def localize_batch(
    items: Iterable[PhotoItem],
    ortho_path: str | Path,
    options: JobOptions,
    *,
    on_result: Callable[[PhotoResult], None] | None = None,
    progress: Callable[[int, int, PhotoResult], None] | None = None,
    is_canceled: Callable[[], bool] | None = None,
    localizer: Localizer | None = None,
    on_stage: Callable[[int, str, float], None] | None = None,
) -> list[PhotoResult]:
    """Localize every item; a photo that fails yields a ``failed`` result and the batch goes on.

    ``on_result(result)`` is called as soon as each photo is done, in the items' order (write it there, so
    nothing is lost); ``progress(done, total, result)`` after each; ``on_stage(index, stage, fraction)`` as
    each photo's stages start (:func:`localize_item`); ``is_canceled()`` is checked before each photo and
    between its stages. With a batch size above 1 (:func:`batch_size_for`) the photos go through
    ``stream.py``'s three threads. Raises Loc2Error only when nothing can be done (unusable orthophoto,
    missing weights).
    """
    items = list(items)
    localizer = localizer or load_localizer(options)
    results: list[PhotoResult] = []

    def emit(index: int, result: PhotoResult) -> None:
        results.append(result)
        if on_result is not None:
            on_result(result)
        if progress is not None:
            progress(index + 1, len(items), result)

    batch = batch_size_for(options, localizer)
    with Orthophoto.open(ortho_path) as ortho:
        if batch > 1:
            localize_stream(items, ortho, localizer, options, batch, emit, is_canceled, on_stage)
            return results
        crs_wkt = ortho.crs.to_wkt()
        for i, item in enumerate(items):
            if is_canceled is not None and is_canceled():
                break
            generator = photo_generator(options, localizer.device)
            t0 = time.perf_counter()
            try:
                stage = None if on_stage is None else partial(on_stage, i)
                result = localize_item(item, ortho, localizer, options, generator, is_canceled, stage)
            except Cancelled:
                break
            except Exception as exc:  # noqa: BLE001 - a photo's failure must never stop the batch
                result = failed_result(item, exc, crs_wkt, options, time.perf_counter() - t0)
            emit(i, result)
    return results
