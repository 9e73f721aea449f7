"""repl_realize and friends: pause, build by hand, continue, cancel."""
import os
from os.path import join

import pytest

from pylightnix import *
from pylightnix import ReplError
from core_stages import CALLS, chain, counting_stage


@pytest.fixture(autouse=True)
def _clear():
    CALLS.clear()


def test_pause_build_by_hand_and_continue(store):
    clo = instantiate(counting_stage)
    rh = repl_realize(clo)
    assert isinstance(rh, ReplHelper) and rh.dref == clo.dref
    assert CALLS == []
    b = Build(repl_buildargs())
    with open(join(build_outpath(b), "out.txt"), "w") as f:
        f.write("by hand")
    rref = repl_continueBuild(b)
    assert rref is not None and rref2dref(rref) == clo.dref
    assert open(join(rref2path(rref), "out.txt")).read() == "by hand"
    assert CALLS == []
    assert realize(clo) == rref
    assert os.listdir(join(store, "tmp")) == []


def test_continue_without_outputs_runs_the_realizer(store):
    rh = repl_realize(instantiate(counting_stage))
    rref = repl_continue()
    assert CALLS == ["leaf"]
    assert rref == repl_rref(rh)


def test_cancel_leaves_the_store_as_it_was(store):
    clo = instantiate(counting_stage)
    repl_realize(clo)
    b = repl_build()
    open(join(build_outpath(b), "out.txt"), "w").write("x")
    repl_cancel()
    assert store_rrefs_(clo.dref) == []
    assert os.listdir(join(store, "tmp")) == []
    # not wedged: a new session works
    repl_realize(clo)
    assert repl_continue() is not None


def test_second_repl_realize_names_the_paused_derivation(store):
    clo = instantiate(counting_stage)
    repl_realize(clo)
    with pytest.raises(ReplError, match=r"already paused before building leaf \(dref:"):
        repl_realize(instantiate(counting_stage, "other"))
    assert repl_continue() is not None  # the first one still works
    assert repl_realize(instantiate(counting_stage, "other")) is not None
    repl_cancel()


def test_force_interrupt_list_pauses_at_each(store):
    clo = instantiate(chain, 3)
    drefs = [d.dref for d in clo.derivations]
    rh = repl_realize(clo, force_interrupt=[drefs[0], drefs[2]])
    assert rh.dref == drefs[0]
    assert repl_continue() is None  # paused again, at s2
    assert rh.dref == drefs[2]
    b = repl_build()
    open(join(build_outpath(b), "out.txt"), "w").write("42")
    rref = repl_continueBuild(b)
    assert open(join(rref2path(rref), "out.txt")).read() == "42"


def test_force_interrupt_false_runs_through(store):
    rh = repl_realize(instantiate(counting_stage), force_interrupt=False)
    assert rh.pause is None and len(repl_rrefs(rh)) == 1


def test_explicit_helper_argument(store):
    rh = repl_realize(instantiate(counting_stage))
    b = Build(repl_buildargs(rh))
    open(join(build_outpath(b), "out.txt"), "w").write("h")
    assert repl_continueBuild(b, rh) is not None


def test_repl_continue_build_without_outputs(store):
    repl_realize(instantiate(counting_stage))
    b = repl_build()
    with pytest.raises(ReplError, match="no output folder"):
        repl_continueBuild(b)
    repl_cancel()


def test_realize_seq_low_level_interface(store):
    clo = instantiate(counting_stage)
    gen = realizeSeq(clo, force_interrupt=True)
    dref, ctx, drv, rarg = next(gen)
    assert dref == clo.dref and ctx == {}
    with pytest.raises(StopIteration) as si:
        gen.send((None, False))
    assert len(si.value.value) == 1 and CALLS == ["leaf"]
