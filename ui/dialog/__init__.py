"""The single-photo dialog (toolbar button): :class:`Loc2Dialog` in ``window.py``, built from the boxes in
``inputs_box.py``, ``model_box.py`` and ``engine_box.py``; one photo's run is ``job.py``."""

from .job import DEPTH_FILE, HEADING_TYPED, PRIOR_CLICKED, PRIOR_TYPED, InputError, parse_lonlat
from .window import Loc2Dialog

__all__ = [
    "DEPTH_FILE",
    "HEADING_TYPED",
    "PRIOR_CLICKED",
    "PRIOR_TYPED",
    "InputError",
    "Loc2Dialog",
    "parse_lonlat",
]
