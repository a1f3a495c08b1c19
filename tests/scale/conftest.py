"""The scale tests' scene (``benchmarks/scale.py``): a random GeoTIFF orthophoto, 40 random JPEG photos with
EXIF GPS on two orthophoto tiles and a tiny random-weight checkpoint (fast on two cores)."""

from __future__ import annotations

import pytest
from scale_scene import N_PHOTOS

from loc2.benchmarks.scale import make_scene


@pytest.fixture(scope="session")
def scale_scene(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("scale"), N_PHOTOS)
