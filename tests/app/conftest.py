"""Fixtures for tests that run the real QGIS desktop and qgis_process (see harness.py).

Every test under tests/app gets the ``app`` marker (``pytest -m app`` / ``-m "not app"``). Standard library and
pytest only: these tests also run where the plugin's engine packages are not importable.

Costs (Debian 12, QGIS 3.22, 2 cores): one desktop start to exit is about 2.5 s (QGIS ready for the script
after about 2 s); the plugin zip is built and installed once per session, and each test gets a copy of that
installed profile.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from harness import (
    ARTIFACTS,
    HarnessError,
    build_plugin_zip,
    copy_profile,
    find_qgis,
    find_qgis_process,
    install_plugin_from_zip,
    make_profile,
    run_qgis_process,
    run_qgis_script,
    start_xvfb,
)

_HERE = Path(__file__).resolve().parent


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "app: runs the real QGIS desktop under Xvfb or qgis_process (needs QGIS installed)"
    )


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.app)


@pytest.fixture(scope="session")
def x_display():
    """The X display for the desktop: $DISPLAY (e.g. under ``xvfb-run -a``), else a private Xvfb."""
    if find_qgis() is None:
        pytest.skip("the QGIS desktop (qgis) is not installed")
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        pytest.skip("no DISPLAY and Xvfb is not installed (Debian: apt install xvfb)")
    server = start_xvfb()
    try:
        yield server.display
    finally:
        server.stop()


@pytest.fixture(scope="session")
def plugin_zip(tmp_path_factory) -> Path:
    """The plugin zip under test: ``LOC2_APP_PLUGIN_ZIP``, else dist/loc2.zip built now (once per session)
    and copied aside, so a concurrent ``make package`` cannot change it under the tests."""
    given = os.environ.get("LOC2_APP_PLUGIN_ZIP")
    if given:
        return Path(given).resolve()
    try:
        built = build_plugin_zip()
    except HarnessError as exc:
        pytest.fail(str(exc))
    copy = tmp_path_factory.mktemp("plugin-zip") / built.name
    shutil.copyfile(built, copy)
    return copy


@pytest.fixture
def app_artifacts(request) -> Path:
    """This test's folder under tests/artifacts/app (scripts, reports, logs and screenshots stay there)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    return ARTIFACTS / name


@pytest.fixture
def profile(tmp_path) -> Path:
    """A fresh, quiet QGIS profiles root without the plugin."""
    return make_profile(tmp_path)


@pytest.fixture(scope="session")
def installed_profile_template(tmp_path_factory, plugin_zip, x_display) -> Path:
    """A profile where the plugin zip was installed by QGIS's own installer (once per session)."""
    root = make_profile(tmp_path_factory.mktemp("installed"))
    run = install_plugin_from_zip(
        root, plugin_zip, display=x_display, artifacts_dir=ARTIFACTS / "session_install_from_zip"
    )
    if not run.ok:
        pytest.fail("installing the plugin zip in QGIS failed:\n" + run.describe())
    return root


@pytest.fixture
def installed_profile(installed_profile_template, tmp_path) -> Path:
    """A private copy of the installed-plugin profile (tests may change it freely)."""
    return copy_profile(installed_profile_template, tmp_path)


@pytest.fixture
def qgis_app(installed_profile, x_display, app_artifacts):
    """``qgis_app(script, **kwargs) -> QgisRun``: run a script in the desktop on this test's installed
    profile; successive calls get folders ``<test>/run1``, ``run2``, ..."""
    count = [0]

    def run(script, **kwargs):
        count[0] += 1
        kwargs.setdefault("artifacts_dir", app_artifacts / f"run{count[0]}")
        kwargs.setdefault("display", x_display)
        return run_qgis_script(script, installed_profile, **kwargs)

    return run


@pytest.fixture
def qgis_process(installed_profile, app_artifacts):
    """``qgis_process(args, **kwargs) -> ProcessRun`` on this test's installed profile."""
    if find_qgis_process() is None:
        pytest.skip("qgis_process is not installed")
    count = [0]

    def run(args, **kwargs):
        count[0] += 1
        kwargs.setdefault("artifacts_dir", app_artifacts / f"qgis_process{count[0]}")
        return run_qgis_process(args, installed_profile, **kwargs)

    return run
