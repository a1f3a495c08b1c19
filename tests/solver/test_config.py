"""The solvers and their settings (``core/solver/config.py``): the names the UI lists, the published and the
precise configuration option by option, and what applies to one photo."""

import dataclasses
import subprocess
import sys

import pytest

from loc2.core.solver.config import (
    DEFAULT_SOLVER,
    METRIC_SCALE_RANGE,
    NEAR_GROUND_M,
    POLISH_RADII_M,
    PRECISE,
    PUBLISHED,
    SOLVER_CONFIGS,
    SOLVER_LABELS,
    SOLVERS,
    SolverConfig,
    solver_config,
)


def test_the_published_protocol_is_the_default():
    assert SolverConfig() == PUBLISHED
    assert (PUBLISHED.rounds, PUBLISHED.samples_per_round, PUBLISHED.hypotheses_per_round) == (20, 8192, 100)
    assert (PUBLISHED.minimal_set, PUBLISHED.soft_threshold_m, PUBLISHED.inlier_threshold_m) == (3, 5.0, 2.5)
    assert PUBLISHED.refinements == 4 and PUBLISHED.with_scale and PUBLISHED.ransac
    assert PUBLISHED.direct_samples == 1024
    # none of the precise solver's additions
    assert not PUBLISHED.dense_grids and PUBLISHED.scale_range is None and PUBLISHED.choose_beyond_m is None
    assert PUBLISHED.polish_radii_m == () and not PUBLISHED.likelihood and not PUBLISHED.likelihood_unit_scale


def test_precise_adds_to_the_published_protocol_only():
    additions = {
        f.name
        for f in dataclasses.fields(SolverConfig)
        if getattr(PRECISE, f.name) != getattr(PUBLISHED, f.name)
    }
    assert additions == {
        "refinement", "dense_grids", "scale_range", "choose_beyond_m", "polish_radii_m", "likelihood", "likelihood_unit_scale",
    }  # fmt: skip
    assert PRECISE.scale_range == METRIC_SCALE_RANGE == (0.8, 1.25)
    assert PRECISE.polish_radii_m == POLISH_RADII_M and PRECISE.choose_beyond_m == NEAR_GROUND_M == 5.0


def test_solver_names_and_configs():
    assert SOLVERS == ("precise", "published") and DEFAULT_SOLVER == "precise"  # the UI lists these keys
    assert tuple(SOLVER_LABELS) == SOLVERS and tuple(SOLVER_CONFIGS) == SOLVERS
    assert solver_config("published") is PUBLISHED and solver_config("precise") is PRECISE
    with pytest.raises(ValueError, match="unknown solver 'fast'"):
        solver_config("fast")


def test_for_photo_keeps_what_applies():
    """The rules of the former ``solver_settings``: the scale gate needs metric depth; the choice without
    the near ground a metric-depth panorama; the unit-scale refinement a panorama on flat ground."""
    assert PUBLISHED.for_photo(metric_depth=True, panorama=True, flat_ground=True) == PUBLISHED
    depth_maps = PRECISE.for_photo(metric_depth=True, panorama=True, flat_ground=False)
    assert depth_maps.scale_range == METRIC_SCALE_RANGE and depth_maps.choose_beyond_m == NEAR_GROUND_M
    assert depth_maps.likelihood and depth_maps.polish_radii_m == POLISH_RADII_M
    assert depth_maps.likelihood_unit_scale is False  # depth maps: the refinement solves the scale
    flat = PRECISE.for_photo(metric_depth=True, panorama=True, flat_ground=True)
    assert flat.likelihood_unit_scale is True
    pinhole = PRECISE.for_photo(metric_depth=True, panorama=False, flat_ground=True)
    assert pinhole.choose_beyond_m is None and pinhole.likelihood_unit_scale is False
    relative = PRECISE.for_photo(metric_depth=False, panorama=True, flat_ground=False)
    assert relative.scale_range is None and relative.choose_beyond_m is None  # no metres to go by
    assert relative.dense_grids and relative.likelihood  # the rest applies to any photo


def test_configurations_are_values():
    with pytest.raises(dataclasses.FrozenInstanceError):
        PUBLISHED.rounds = 3  # type: ignore[misc]
    assert PUBLISHED.replace(rounds=3).rounds == 3 and PUBLISHED.rounds == 20


def test_the_solver_names_load_without_torch():
    """The QGIS side imports this module (and the package it is in) in a Python without torch."""
    code = "import sys, loc2.core.solver.config, loc2.core.types; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
