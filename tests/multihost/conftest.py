"""The ``two_hosts`` fixture: a Dask scheduler here and a GPU worker on a second "host"
(its own network and mount namespaces), checked for isolation before any test runs."""
from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multihost_support import TwoHosts, unavailable  # noqa: E402


@pytest.fixture(scope="session")
def two_hosts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoHosts]:
    """A :class:`TwoHosts`, started once per session, torn down on every exit path."""
    why = unavailable()
    if why:
        pytest.skip(why)
    hosts = TwoHosts(tmp_path_factory.mktemp("multihost"))
    request.addfinalizer(hosts.close)  # before anything exists: a set-up failing halfway is undone too
    try:
        hosts.start()
    except BaseException:
        hosts.close()
        raise
    yield hosts
