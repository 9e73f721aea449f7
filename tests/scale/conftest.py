"""Fixtures for the scale-out tests: a real Dask LocalCluster with two worker
processes (started once per session), a process pool, and store snapshots."""
from __future__ import annotations

import os
import sys
from typing import Iterator

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def cluster() -> Iterator[object]:
    """LocalCluster(n_workers=2, processes=True, threads_per_worker=1)."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0",
                      silence_logs=40) as c:
        yield c


@pytest.fixture(scope="session")
def client(cluster):  # type: ignore[no-untyped-def]
    from distributed import Client
    with Client(cluster) as c:
        yield c


@pytest.fixture
def pool() -> Iterator[object]:
    from pylightnix.scale.executors import Processes
    with Processes(2) as p:
        yield p
