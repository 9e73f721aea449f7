"""Shared fixtures: every test gets its own store."""
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared")


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh, initialized store under tmp_path; yields its PYLIGHTNIX_ROOT."""
    import pylightnix
    root = tmp_path / "pylightnix-root"
    monkeypatch.setenv("PYLIGHTNIX_ROOT", str(root))
    monkeypatch.setenv("PYLIGHTNIX_PROGRESS", "0")
    monkeypatch.delenv("PYLIGHTNIX_TMP", raising=False)
    monkeypatch.delenv("PYLIGHTNIX_STORE", raising=False)
    pylightnix.store_initialize()
    yield str(root)
    from pylightnix import repl, breakpoints
    repl.PYLIGHTNIX_REPL_HELPER = None
    breakpoints.set_build_breakpoints([])
    breakpoints.set_break_on_failure(False)
