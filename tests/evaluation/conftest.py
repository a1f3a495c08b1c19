"""The small VIGOR and KITTI layouts the evaluation tests read (written by ``test_datasets``)."""

import pytest
from test_datasets import write_kitti, write_vigor


@pytest.fixture(scope="module")
def vigor_root(tmp_path_factory):
    return write_vigor(tmp_path_factory.mktemp("vigor"))


@pytest.fixture(scope="module")
def kitti_root(tmp_path_factory):
    return write_kitti(tmp_path_factory.mktemp("kitti"))
