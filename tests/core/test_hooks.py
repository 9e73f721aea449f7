"""The engine's hook API: frontends pause before builds and step in on failures."""
import os
import subprocess
import sys
import textwrap
from os.path import join

import pytest

from pylightnix import *
from pylightnix import BuildCancelled, events
from pylightnix.breakpoints import match_breakpoint
from core_stages import CALLS, chain, counting_stage, trained_stage


class Recorder(Frontend):
    def __init__(self, on_pause=None, on_failure=None):
        self.events = []
        self._p, self._f = on_pause, on_failure

    def on_instantiate(self, *, derivations, **kw):
        self.events.append(("instantiate", [n for _, n in derivations]))

    def on_pause(self, *, pause, **kw):
        self.events.append(("pause", pause.name, pause.dref, dict(pause.config)))
        if self._p:
            self._p(pause)

    def on_failure(self, *, pause, **kw):
        self.events.append(("failure", pause.name, type(pause.exception).__name__))
        if self._f:
            self._f(pause)

    def on_built(self, *, dref, name, rrefs, **kw):
        self.events.append(("built", name))


@pytest.fixture
def frontend():
    made = []

    def make(**kw):
        f = add_frontend(Recorder(**kw))
        made.append(f)
        return f
    yield make
    for f in made:
        remove_frontend(f)


@pytest.fixture(autouse=True)
def _clear():
    CALLS.clear()


def test_breakpoint_pauses_only_builds_and_reports_name_dref_config(store, frontend):
    f = frontend()
    set_build_breakpoints(["s2"])
    clo = instantiate(chain, 3)
    realize(clo)
    pauses = [e for e in f.events if e[0] == "pause"]
    assert len(pauses) == 1 and pauses[0][1] == "s2" and pauses[0][2] == clo.dref
    assert pauses[0][3]["name"] == "s2"
    assert ("instantiate", ["s0", "s1", "s2"]) in f.events
    f.events.clear()
    realize(clo)  # cached: no pause
    assert [e for e in f.events if e[0] == "pause"] == []


def test_globs(store):
    set_build_breakpoints(["convnn_*", "exact"])
    assert match_breakpoint("convnn_mnist") == "convnn_*"
    assert match_breakpoint("exact") == "exact"
    assert match_breakpoint("exactly") is None


def test_commit_by_hand_inside_a_hook_with_repl_functions(store, frontend):
    def by_hand(pause):
        b = Build(repl_buildargs())
        open(join(build_outpath(b), "out.txt"), "w").write("hand")
        rref = repl_continueBuild(b)
        assert rref2dref(rref) == pause.dref
    frontend(on_pause=by_hand)
    set_build_breakpoints(["leaf"])
    rref = realize(instantiate(counting_stage))
    assert CALLS == []
    assert open(join(rref2path(rref), "out.txt")).read() == "hand"


def test_cancel_inside_a_hook(store, frontend):
    frontend(on_pause=lambda p: repl_cancel())
    set_build_breakpoints(["leaf"])
    clo = instantiate(counting_stage)
    with pytest.raises(BuildCancelled, match="cancelled"):
        realize(clo)
    assert store_rrefs_(clo.dref) == [] and os.listdir(join(store, "tmp")) == []


def test_failure_hook_fix_and_continue_without_retraining(store, frontend, tmp_path):
    log = tmp_path / "train.log"

    def fix(pause):
        b = pause.build
        assert b.weights == [1, 2, 3]  # the in-memory state of the failed build is alive
        with open(join(build_outpath(b), "score.txt"), "w") as fh:
            fh.write(str(sum(b.weights)))
        repl_continueBuild(b)
    f = frontend(on_failure=fix)
    set_break_on_failure(True)
    rref = realize(instantiate(trained_stage, str(log)))
    assert open(join(rref2path(rref), "score.txt")).read() == "6"
    assert log.read_text() == "train\n"
    assert ("failure", "trained", "AttributeError") in f.events


def test_failure_hook_pending_reraises_original(store, frontend, tmp_path):
    frontend()
    set_break_on_failure(True)
    clo = instantiate(trained_stage, str(tmp_path / "log"))
    with pytest.raises(AttributeError, match="'list' object has no attribute 'load'"):
        realize(clo)
    assert store_rrefs_(clo.dref) == [] and os.listdir(join(store, "tmp")) == []


def test_failure_without_break_on_failure_does_not_call_the_hook(store, frontend, tmp_path):
    f = frontend()
    with pytest.raises(AttributeError):
        realize(instantiate(trained_stage, str(tmp_path / "log")))
    assert [e for e in f.events if e[0] == "failure"] == []


def test_PYLIGHTNIX_BREAK_from_the_environment(store, tmp_path):
    script = tmp_path / "s.py"
    script.write_text(textwrap.dedent("""
        import sys; sys.path.insert(0, %r)
        from pylightnix import *
        from core_stages import chain
        class F(Frontend):
            def on_pause(self, p):  # written the old way (positional, another name): still called
                print("PAUSED", p.name, p.breakpoint)
        add_frontend(F())
        print(realize(instantiate(chain, 4)))
    """ % os.path.dirname(__file__)))
    env = dict(os.environ, PYLIGHTNIX_BREAK="s1, s3", PYLIGHTNIX_ROOT=str(tmp_path / "root"))
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, check=True).stdout
    assert "PAUSED s1 s1" in out and "PAUSED s3 s3" in out and "PAUSED s2" not in out
