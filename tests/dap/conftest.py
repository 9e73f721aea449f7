"""Fixtures for the adapter tests: a schema-checked client over pipes or TCP, a store root."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dap_testlib import SchemaChecker, kill_quietly, spawn_pipes, spawn_tcp  # noqa: E402


@pytest.fixture
def root(tmp_path):
    """A fresh PYLIGHTNIX_ROOT for the debuggee (not initialized: the program does it)."""
    return str(tmp_path / "root")


def _client(kind):
    checker = SchemaChecker()
    c = spawn_pipes(checker) if kind == "pipes" else spawn_tcp(checker)
    c.checker = checker
    c.debuggee = None
    return c


def _finish(c):
    try:
        if not c.ep.closed:
            try:
                c.request("disconnect", {"terminateDebuggee": True}, timeout=10, ok=False)
            except Exception:
                pass
        c.close()
    finally:
        for m in c.events("process"):
            kill_quietly(m["body"].get("systemProcessId"))
    assert not c.check_errors, c.check_errors
    assert not c.bad, c.bad


@pytest.fixture(params=["pipes", "tcp"])
def client(request):
    """A client of a fresh adapter, over pipes and over TCP; every message it receives
    is validated against the DAP schema (asserted at teardown)."""
    c = _client(request.param)
    yield c
    _finish(c)


@pytest.fixture
def pipes_client():
    c = _client("pipes")
    yield c
    _finish(c)


@pytest.fixture
def tcp_client():
    c = _client("tcp")
    yield c
    _finish(c)
