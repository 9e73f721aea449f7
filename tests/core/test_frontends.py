"""Frontends: a set per realize, keyword-only hooks that accept future keywords (and old
positional hooks still called), BuildPause's declared fields, and what importing pylightnix
registers (the progress display only; nothing in the debug adapter's process)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from pylightnix import (BuildPause, Frontend, FrontendError, add_frontend, events, instantiate, realize,
                        realizeMany, remove_frontend, set_build_breakpoints)
from pylightnix.executors import Processes
from core_stages import chain

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Keywords(Frontend):
    """Written the new way: keywords only, ``**kw`` for the future."""

    def __init__(self) -> None:
        self.seen = []

    def on_realize_start(self, *, target, total, **kw):
        self.seen.append(("start", total, sorted(kw)))

    def on_progress(self, *, index, total, dref, name, where="driver", **kw):
        self.seen.append(("progress", name, sorted(kw)))

    def on_built(self, *, dref, name, rrefs, **kw):
        self.seen.append(("built", name))

    def on_pause(self, *, pause, **kw):
        self.seen.append(("pause", pause.name))
        pause.cancel() if pause.name == "cancel_me" else None

    def on_notice(self, *, text, **kw):
        self.seen.append(("notice", text, kw))


class Positional(Frontend):
    """Written before hooks were keyword-only, with its own parameter names."""

    def __init__(self) -> None:
        self.seen = []

    def on_progress(self, i, n, d, nm):  # no ``where``: never given it
        self.seen.append(("progress", nm))

    def on_pause(self, p):
        self.seen.append(("pause", p.name))

    def on_notice(self, text):
        self.seen.append(("notice", text))


def test_realize_takes_its_own_frontends(store):
    glob = add_frontend(Keywords())
    try:
        mine, old = Keywords(), Positional()
        set_build_breakpoints(["s1"])
        realize(instantiate(chain, 3), frontends=[mine, old])
        # the realization's own frontends saw everything, the global one nothing; the last handles pauses
        assert ("pause", "s1") not in mine.seen and ("built", "s2") in mine.seen
        assert [e for e in mine.seen if e[0] == "progress"] == [("progress", f"s{i}", []) for i in range(3)]
        assert old.seen == [("progress", "s0"), ("pause", "s1"), ("progress", "s1"), ("progress", "s2")]
        assert glob.seen == [] and events.frontends()[-1] is glob  # the global set is as it was
        # without frontends=, the global set
        set_build_breakpoints(["s3"])
        realizeMany(instantiate(chain, 4))
        assert glob.seen == [("start", 4, []), ("pause", "s3"), ("progress", "s3", []), ("built", "s3")]
        assert ("built", "s3") not in mine.seen
    finally:
        remove_frontend(glob)


def test_own_frontends_on_the_parallel_driver(store):
    mine = Keywords()
    glob = add_frontend(Keywords())
    try:
        realize(instantiate(chain, 2), executor=Processes(2), frontends=[mine])
    finally:
        remove_frontend(glob)
    assert ("built", "s1") in mine.seen and glob.seen == []
    assert [e[1] for e in mine.seen if e[0] == "progress"] == ["s0", "s1"]


def test_future_keywords_reach_only_hooks_that_take_them(store):
    new, old = Keywords(), Positional()
    with events.using([new, old]):
        events.notify("on_notice", "moved", dref="dref:x", name="x", colour="blue")
        events.notify("on_progress", 0, 1, "dref:x", "x", where="tcp://w:1", shard=3)
    assert new.seen == [("notice", "moved", {"dref": "dref:x", "name": "x", "colour": "blue"}),
                        ("progress", "x", ["shard"])]
    assert old.seen == [("notice", "moved"), ("progress", "x")]


def test_a_hook_that_fits_neither_way_is_refused_by_name(store):
    class Bad(Frontend):
        def on_built(self, dref):  # one positional parameter where three are given
            pass

    with pytest.raises(FrontendError, match=r"Bad\.on_built\(dref\).*on_built\(self, \*, dref, name, rrefs, \*\*kw\)"):
        add_frontend(Bad())
    assert not any(isinstance(f, Bad) for f in events.frontends())
    with pytest.raises(FrontendError, match=r"Bad\.on_built"):
        realize(instantiate(chain, 1), frontends=[Bad()])


def test_build_pause_fields_are_declared(store):
    got = []

    class Grab(Frontend):
        def on_pause(self, *, pause, **kw):
            got.append(pause)

    set_build_breakpoints(["s0"])
    realize(instantiate(chain, 1), frontends=[Grab()])
    p = got[0]
    assert isinstance(p, BuildPause) and not hasattr(p, "__dict__")
    assert p.user_globals is None and p.remote_globals is None and p.name == "s0"
    with pytest.raises(AttributeError):
        p.something_new = 1  # type: ignore[attr-defined]
    assert set(BuildPause.__slots__) - {"_make_buildargs", "_commit_paths"} <= set(BuildPause.__annotations__)


def _python(code: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYLIGHTNIX_")}
    full.update(PYTHONPATH=REPO, HOME=str(tmp_path / "home"), PYLIGHTNIX_ROOT=str(tmp_path / "root"), **env)
    os.makedirs(tmp_path / "home", exist_ok=True)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full, capture_output=True, text=True,
                          timeout=120)


def test_importing_pylightnix_registers_the_progress_display_only(tmp_path):
    r = _python("""
        import atexit, os, signal, sys, threading
        import logging, concurrent.futures, multiprocessing.util, tempfile  # stdlib's own atexit hooks
        handlers = {s: signal.getsignal(s) for s in signal.valid_signals()}
        env, cwd, callbacks = dict(os.environ), os.getcwd(), atexit._ncallbacks()
        import pylightnix, pylightnix.core, pylightnix.stages, pylightnix.repl, pylightnix.utils
        from pylightnix import events
        from pylightnix.progress import ProgressFrontend
        fs = events.frontends()
        assert len(fs) == 1 and type(fs[0]) is ProgressFrontend, fs
        assert threading.active_count() == 1, threading.enumerate()
        assert dict(os.environ) == env and os.getcwd() == cwd
        assert {s: signal.getsignal(s) for s in handlers} == handlers
        assert sys.gettrace() is None and sys.getprofile() is None
        assert "pylightnix.terminal" not in sys.modules  # the terminal fallback is made at the first pause
        # the one atexit hook: executors drop their process pools (a no-op with none)
        assert atexit._ncallbacks() - callbacks <= 1
        print("ok")
        """, tmp_path)
    assert r.returncode == 0 and r.stdout == "ok\n" and r.stderr == "", r.stderr
    assert os.listdir(tmp_path / "home") == [] and not os.path.exists(tmp_path / "root")  # nothing written


def test_the_adapter_process_has_no_frontend(tmp_path):
    """The adapter imports pylightnix (channel, attach files) but realizes nothing: its process
    keeps no progress display and no terminal fallback. Run as ``python -m dap_adapter`` on
    stdio; its frontend set is reported when it exits."""
    code = """
        import atexit, os, runpy, sys
        from pylightnix import events
        assert len(events.frontends()) == 1  # the import registered the progress display
        def report():
            os.write(2, f"FRONTENDS {events.frontends()!r} FALLBACK {events.pause_handler()!r}\\n".encode())
        atexit.register(report)
        sys.argv = ["dap_adapter"]
        runpy.run_module("dap_adapter", run_name="__main__")
        """
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], input=b"", capture_output=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=REPO, HOME=str(tmp_path)))
    assert b"FRONTENDS [] FALLBACK None" in r.stderr, r.stderr.decode()
