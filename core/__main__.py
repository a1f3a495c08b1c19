"""The ``loc2`` command line run from a plugin folder: ``python -I <plugin folder>/core/__main__.py COMMAND``.

The QGIS plugin starts the engine's Python on this file (``… worker``), so the engine always runs the code
of the plugin folder it belongs to, whatever ``loc2`` the engine's environment may also hold, and without
putting QGIS's whole plugins folder on ``sys.path``. Run by path, it first registers the plugin folder as
the package ``loc2``. Use ``-I``: without it the script's folder comes first on ``sys.path``, where
``types.py`` would shadow the standard library's ``types``. ``python -m loc2.core`` works too.
"""

import importlib.util
import sys
from pathlib import Path

if __package__ in (None, ""):  # run by path: make the plugin folder importable as ``loc2``
    _ROOT = Path(__file__).resolve().parents[1]
    _spec = importlib.util.spec_from_file_location(
        "loc2", _ROOT / "__init__.py", submodule_search_locations=[str(_ROOT)]
    )
    _package = importlib.util.module_from_spec(_spec)
    sys.modules["loc2"] = _package
    _spec.loader.exec_module(_package)

from loc2.core.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
