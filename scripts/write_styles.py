"""Regenerate resources/styles/*.qml from the styles written in code (ui/styles.py).

Run after changing a style: ``.venv/bin/python scripts/write_styles.py`` (QGIS offscreen; the layers are a
small result GeoPackage written by the engine, so every field a style refers to exists).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "ui")]

from qgis_helpers import qgis_app  # noqa: E402

qgis_app()

from qgis.core import QgsVectorLayer  # noqa: E402
from test_plugin_layers import _result  # noqa: E402

from loc2.core.output.export import write_results  # noqa: E402
from loc2.ui import styles  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        writer = write_results(Path(tmp) / "r.gpkg", [_result(), _result(ok=False)], include_matches=True)
        layers = {role: QgsVectorLayer(source, role, "ogr") for role, source in writer.sources().items()}
        for path in styles.write_style_files(styles.STYLES_DIR, layers):
            print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
