"""The ``two_hosts`` fixture: a Dask scheduler here and a GPU worker on a second "host"
(its own network and mount namespaces), checked for isolation before any test runs."""
from __future__ import annotations

import os
import sys
from typing import Any, Iterator

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multihost_support import TwoHosts, Unavailable, unavailable  # noqa: E402


def _started(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, name: str,
             **kw: Any) -> TwoHosts:
    why = unavailable()
    if why:
        pytest.skip(why)
    hosts = TwoHosts(tmp_path_factory.mktemp(name), **kw)
    request.addfinalizer(hosts.close)  # before anything exists: a set-up failing halfway is undone too
    try:
        hosts.start()
    except Unavailable as e:
        hosts.close()
        pytest.skip(f"cannot make a second host here: {e}")
    except BaseException:
        hosts.close()
        raise
    return hosts


@pytest.fixture(scope="module")
def two_hosts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoHosts]:
    """A :class:`TwoHosts` (GPU worker there, CPU worker here), started once per module (gone
    before the suite's other folders run), torn down on every exit path."""
    yield _started(request, tmp_path_factory, "multihost")


@pytest.fixture(scope="module")
def dap_hosts(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoHosts]:
    """A :class:`TwoHosts` of its own for the VS Code tests, whose GPU worker starts fresh
    (one of them attaches a pause in the terminal first, then a child session)."""
    yield _started(request, tmp_path_factory, "multihost-dap", tag=f"{os.getpid()}d")


@pytest.fixture
def tunneled_host(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoHosts]:
    """A second harness whose only worker (on the other host) Dask knows as
    ``tcp://127.0.0.1:PORT``, through a forwarder, as a worker reached by ``ssh -L``
    (for one test: gone when it ends)."""
    yield _started(request, tmp_path_factory, "tunneled", tag=f"{os.getpid()}t", tunnel=True)
