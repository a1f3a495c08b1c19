"""A web-service orthophoto in the QGIS that analysts run (issue: "Orthophotos from wherever analysts have
them"): the loopback WMTS of ``tests/servers.py`` added as a layer of the desktop's project (provider
``wms``), and Processing's ``loc2:localizeimages`` run on it from the desktop with the installed plugin and
its engine. The windows around the photos are read through QGIS's provider; every photo is localized."""

from __future__ import annotations

import subprocess  # nosec B404 - the engine's Python with a fixed argument list
from pathlib import Path

import pytest
from engine_fixtures import EngineMissing, engine_python
from harness import REPO_ROOT
from servers import LoopbackServer, qgis_wmts_uri

# run by the engine's Python, which may not hold ``loc2``: the repository registered as it, as core/__main__.py does
MAKE_SITE = """
import importlib.util, sys
from pathlib import Path
root = Path(sys.argv[1])
spec = importlib.util.spec_from_file_location("loc2", root / "__init__.py", submodule_search_locations=[str(root)])
package = importlib.util.module_from_spec(spec)
sys.modules["loc2"] = package
spec.loader.exec_module(package)
sys.path.insert(0, str(root / "tests"))
import servers
servers.make_city_site(Path(sys.argv[2]))
"""

PROCESSING_ON_WMTS = """
import processing
from qgis.core import QgsProject, QgsRasterLayer
layer = QgsRasterLayer({uri!r}, "Loopback WMTS", "wms")
results["valid"] = layer.isValid()
QgsProject.instance().addMapLayer(layer)
out = processing.run("loc2:localizeimages", {{
    "ORTHOPHOTO": layer, "PHOTOS": {photos!r}, "DEVICE": 2, "POSES": "TEMPORARY_OUTPUT",
}})
results["localized"] = out["LOCALIZED_COUNT"]
results["poses"] = [[f["photo"], f["status"], f["lon"], f["lat"], f["message"]] for f in out["POSES"].getFeatures()]
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    try:
        engine = engine_python()
    except EngineMissing as exc:
        pytest.fail(str(exc))
    root = tmp_path_factory.mktemp("web-ortho")
    done = subprocess.run(  # nosec B603 - the engine's Python, fixed arguments
        [engine, "-I", "-c", MAKE_SITE, str(REPO_ROOT), str(root)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.mark.slow
def test_processing_in_the_desktop_localizes_photos_on_a_wmts_layer(site, qgis_app):
    with LoopbackServer(site / "site") as server:
        run = qgis_app(
            PROCESSING_ON_WMTS.format(uri=qgis_wmts_uri(server), photos=str(site / "city" / "photos")),
            env={"LOC2_ENGINE_PYTHON": engine_python(), "OMP_NUM_THREADS": "2"},
            timeout=600,
        )
        tiles, _ = server.fetched("/xyz/")
    run.check()
    r = run.results
    assert r["valid"] and r["localized"] == 3, r["poses"]
    assert sorted(Path(p[0]).name for p in r["poses"]) == ["pano_000.jpg", "pano_001.jpg", "pano_002.jpg"]
    assert all(p[1] == "ok" for p in r["poses"]), r["poses"]
    assert 0 < tiles < 200  # only the tiles around the photos
