"""Making Python work on QGIS's worker threads (QgsTask, Processing) safe for pyproj.

pyproj ≥ 3.7 keeps one PROJ context per OS thread: a pointer in thread-specific storage, freed by an object in
a ``threading.local``. A QGIS worker thread is not a Python thread: every task runs in a fresh Python thread
state that is deleted when the task ends, which frees the context while the thread-specific pointer still
points to it, so the next task on the same pooled thread crashes inside PROJ. :func:`finish_worker_job`
keeps each thread's context alive for the life of the process (one small context per worker thread) and
collects the job's garbage on the thread that made it.
"""

from __future__ import annotations

import gc
import sys
import threading

_lock = threading.Lock()
_proj_contexts: dict[int, object] = {}


def keep_proj_context() -> None:
    """Hold a reference to this thread's pyproj context manager so the context outlives the thread state."""
    if "pyproj" not in sys.modules:
        return
    try:
        from pyproj._context import get_context_manager
    except ImportError:  # another pyproj layout: nothing to keep
        return
    manager = get_context_manager()
    if manager is not None:
        with _lock:
            _proj_contexts[threading.get_ident()] = manager


def finish_worker_job() -> None:
    """Call at the end of every job on a worker thread (in a ``finally``): frees the job's garbage here,
    keeps the thread's PROJ context and returns cached GPU memory to the driver."""
    gc.collect()  # PROJ objects of this job are freed here, on the thread whose context they use
    keep_proj_context()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
