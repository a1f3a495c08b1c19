"""The pytest fixtures of ``servers.py``'s loopback city site (apart from it: the engine's Python, which has no
pytest, imports ``servers.py`` to build a site)."""

from __future__ import annotations

from pathlib import Path

import pytest
from servers import LoopbackServer, make_city_site


@pytest.fixture(scope="module", name="city")
def city_fixture(tmp_path_factory) -> Path:
    """The city and its served files (:func:`make_city_site`), once per test module."""
    return make_city_site(tmp_path_factory.mktemp("city-site"))


@pytest.fixture(scope="module", name="server")
def server_fixture(city: Path):
    """A :class:`LoopbackServer` serving the city's site, once per test module."""
    with LoopbackServer(city / "site") as running:
        yield running
