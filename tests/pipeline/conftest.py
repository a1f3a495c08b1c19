"""The scene of the pipeline tests (``tests/pipeline_scene.py``), written once per module."""

from __future__ import annotations

import pytest
from pipeline_scene import make_scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_scene(tmp_path_factory.mktemp("scene"))
