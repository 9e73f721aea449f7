"""Shared fixtures: every test gets its own store."""
import http.server
import os
import sys
import threading
from functools import partial

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
    from pylightnix import repl
    from pylightnix.engine import breakpoints
    repl.PYLIGHTNIX_REPL_HELPER = None
    breakpoints.set_build_breakpoints([])
    breakpoints.set_break_on_failure(False)


@pytest.fixture
def http_dir(tmp_path):
    """Serve tmp_path/www over HTTP on 127.0.0.1; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):
            pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(www)))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield www, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
