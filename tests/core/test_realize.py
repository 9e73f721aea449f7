"""Realization, caching, matchers, promises and the small built-in stages."""
import os
import re
from os.path import join

import pytest

from pylightnix import *  # the public API, as users import it
from pylightnix import BuildError, ClosureError, MatcherError, PromiseError

from core_stages import CALLS, chain, counting_stage


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()


def test_refs_have_the_documented_formats(store):
    clo = instantiate(counting_stage)
    assert re.match(r"^dref:[0-9a-f]{32}-leaf$", clo.dref)
    rref = realize(clo)
    assert re.match(r"^rref:[0-9a-f]{32}-[0-9a-f]{32}-leaf$", rref)
    d = store_dref2path(clo.dref)
    assert d == join(store, "store-v0", clo.dref[5:])
    assert os.path.isfile(join(d, "config.json"))
    assert os.path.isfile(join(rref2path(rref), "context.json"))
    assert open(join(rref2path(rref), "out.txt")).read() == "1"


def test_cached_stages_are_never_rebuilt(store):
    r1 = realize(instantiate(chain, 5))
    assert len(os.listdir(join(store, "store-v0"))) == 6  # 5 derivations + .locks
    built = set(os.listdir(join(store, "store-v0")))
    r2 = realize(instantiate(chain, 5))
    assert r1 == r2
    assert open(join(rref2path(r2), "out.txt")).read() == "4"
    assert set(os.listdir(join(store, "store-v0"))) == built


def test_force_rebuild_runs_the_target_again(store):
    counting_stage_b = lambda m: counting_stage(m, matcher=match_latest())
    realize(instantiate(counting_stage_b))
    realize(instantiate(counting_stage_b), force_rebuild=True)
    assert CALLS == ["leaf", "leaf"]
    realize(instantiate(counting_stage_b))
    assert CALLS == ["leaf", "leaf"]


def test_force_rebuild_list_rebuilds_only_those(store):
    def a_stage(m):  # not deterministic: every build writes a new number
        def _realize(b):
            CALLS.append("a")
            with open(join(build_outpath(b), "n.txt"), "w") as f:
                f.write(os.urandom(8).hex())
        return mkdrv(m, mkconfig({"name": "a"}), match_latest(), build_wrapper(_realize))

    def two(m):
        a = a_stage(m)
        return mkdrv(m, mkconfig({"name": "b", "a": a}), match_latest(),
                     build_wrapper(lambda b: (CALLS.append("b"), build_outpath(b))))
    clo = instantiate(two)
    realize(clo)
    a = [d.dref for d in clo.derivations if d.dref.endswith("-a")][0]
    CALLS.clear()
    realize(clo, force_rebuild=[a])
    assert CALLS == ["a", "b"]  # b's context changed (a has a different realization), so b builds too


def test_force_rebuild_of_a_deterministic_stage_finds_the_same_realization(store):
    """Build times are metadata (``_`` names are not hashed): rebuilding gives the same RRef, stored once."""
    def two(m):
        a = counting_stage(m, "a", matcher=match_latest())
        return mkdrv(m, mkconfig({"name": "b", "a": a}), match_latest(),
                     build_wrapper(lambda b: (CALLS.append("b"), build_outpath(b))))
    clo = instantiate(two)
    r1 = realize(clo)
    a = [d.dref for d in clo.derivations if d.dref.endswith("-a")][0]
    (ra,) = store_rrefs_(a)
    CALLS.clear()
    assert realize(clo, force_rebuild=[a]) == r1
    assert CALLS == ["a"]  # a's realization is the same one, so b's context is unchanged
    assert store_rrefs_(a) == [ra]
    assert os.path.exists(join(rref2path(ra), "__buildtime__.txt"))
    assert store_verify() == []
    assert os.listdir(join(store, "tmp")) == []  # the discarded duplicate and its build folder are gone


def test_realize_many_and_match_n(store):
    import random

    def multi(m):
        def _realize(b):
            for o in build_outpaths(b, nouts=3):
                with open(join(o, "x"), "w") as f:
                    f.write(str(random.random()))
        return mkdrv(m, mkconfig({"name": "multi"}), match_n(3), build_wrapper(_realize))
    rrefs = realizeMany(instantiate(multi))
    assert len(rrefs) == 3 and len(set(rrefs)) == 3
    with pytest.raises(ClosureError, match="3 matched realizations"):
        realize(instantiate(multi))
    assert realizeMany(instantiate(multi)) == rrefs


def test_match_best_picks_the_largest_number(store):
    scores = iter(["0.5", "0.9", "0.7"])

    def scored(m):
        def _realize(b):
            with open(join(build_outpath(b), "score.txt"), "w") as f:
                f.write(next(scores))
        return mkdrv(m, mkconfig({"name": "scored"}), match_best("score.txt"), build_wrapper(_realize))
    clo = instantiate(scored)
    for _ in range(3):
        realize(clo, force_rebuild=True)
    best = realize(clo)
    assert open(join(rref2path(best), "score.txt")).read() == "0.9"
    assert len(store_rrefs_(clo.dref)) == 3


def test_match_some_all_latest_and_only(store):
    import time

    def st(m, matcher, name, nouts=1):
        def _realize(b):
            for o in build_outpaths(b, nouts=nouts):
                with open(join(o, "t"), "w") as f:
                    f.write(repr(time.time()))
        return mkdrv(m, mkconfig({"name": name}), matcher, build_wrapper(_realize))
    assert realizeMany(instantiate(st, match_all(), "all")) == []  # match_all never asks for a build
    some = instantiate(st, match_some(2), "some", 2)
    assert len(realizeMany(some)) == 2
    latest_clo = instantiate(st, match_latest(), "lat")
    realize(latest_clo)
    newest = realize(latest_clo, force_rebuild=True)
    assert realize(latest_clo) == newest
    only = instantiate(st, match_only(), "only")
    realize(only)
    with pytest.raises(MatcherError, match="at most 1"):
        realize(only, force_rebuild=True)  # a second realization breaks match_only
    assert len(store_rrefs_(only.dref)) == 1, "the failed build left its realization behind"


def test_matcher_that_never_matches_is_an_error_and_stores_nothing(store):
    def never(m):
        return mkdrv(m, mkconfig({"name": "never"}), lambda dref, ctx: None,
                     build_wrapper(lambda b: build_outpath(b)))
    clo = instantiate(never)
    with pytest.raises(MatcherError, match="still asks for a build"):
        realize(clo)
    assert store_rrefs_(clo.dref) == []
    assert os.listdir(join(store, "tmp")) == []


def test_exception_in_matcher_propagates_and_stores_nothing(store):
    def bad_matcher(dref, ctx):
        if store_rrefs_(dref):
            raise ZeroDivisionError("matcher bug")
        return None

    def st(m):
        return mkdrv(m, mkconfig({"name": "badm"}), bad_matcher, build_wrapper(lambda b: build_outpath(b)))
    clo = instantiate(st)
    with pytest.raises(ZeroDivisionError, match="matcher bug"):
        realize(clo)
    assert store_rrefs_(clo.dref) == []
    assert os.listdir(join(store, "tmp")) == []


def test_user_exception_propagates_unchanged_and_cleans_tmp(store):
    with pytest.raises(KeyError) as ei:
        realize(instantiate(counting_stage, "f", 1, True))
    assert type(ei.value) is KeyError and ei.value.args == ("boom in f",)
    assert os.listdir(join(store, "tmp")) == []
    assert store_rrefs_(instantiate(counting_stage, "f", 1, True).dref) == []


def test_raw_realizer_with_two_or_three_arguments(store):
    def two_args(dref, context):
        b = mkbuild(dref, context)
        open(join(build_outpath(b), "f"), "w").write("2")
        return [build_outpath(b)]

    def three_args(dref, context, rarg):
        b = mkbuild(dref, context)
        open(join(build_outpath(b), "f"), "w").write(str(rarg.get("k", 3)))
        return [build_outpath(b)]
    r2 = realize(instantiate(lambda m: mkdrv(m, mkconfig({"name": "two"}), match_only(), two_args)))
    r3 = realize(instantiate(lambda m: mkdrv(m, mkconfig({"name": "three"}), match_only(), three_args)))
    assert open(join(rref2path(r2), "f")).read() == "2"
    assert open(join(rref2path(r3), "f")).read() == "3"


def test_promises_are_checked(store):
    def st(m, produce):
        def _realize(b):
            if produce:
                open(join(build_outpath(b), "model.bin"), "w").write("w")
            else:
                build_outpath(b)
        return mkdrv(m, mkconfig({"name": "prom", "produce": produce, "out": [promise, "model.bin"]}),
                     match_only(), build_wrapper(_realize))
    with pytest.raises(PromiseError, match="model.bin"):
        realize(instantiate(st, False))
    rref = realize(instantiate(st, True))
    c = store_config(rref)
    assert c.val["out"][0] == rref2dref(rref)  # promises read back as RefPaths of the derivation itself
    assert os.listdir(join(store, "tmp")) == []


def test_build_path_follows_refpaths_into_dependencies(store):
    def st(m):
        src = mkfile(m, "srcfile", b"hello", "greeting.txt")

        def _realize(b):
            c = build_cattrs(b)
            with open(build_path(b, c.src)) as f, open(join(build_outpath(b), "up.txt"), "w") as g:
                g.write(f.read().upper())
            assert build_deref(b, src) == b.context[src][0]
        return mkdrv(m, mkconfig({"name": "upper", "src": [src, "greeting.txt"]}), match_only(),
                     build_wrapper(_realize))
    rref = realize(instantiate(st))
    assert open(join(rref2path(rref), "up.txt")).read() == "HELLO"
    ctx = store_context(rref)
    assert len(ctx) == 1 and list(ctx.values())[0][0] == store_deref(rref, list(ctx)[0])


def test_mknode_and_fetchlocal(store, tmp_path):
    import hashlib
    import tarfile
    rref = realize(instantiate(mknode, {"param": 1}, {"a.txt": b"A", "b.bin": b"\x00\x01"}, "node"))
    assert open(join(rref2path(rref), "a.txt")).read() == "A"
    assert store_config(rref).val["param"] == 1
    src = tmp_path / "data"
    src.mkdir()
    (src / "inner.txt").write_text("inside")
    arch = tmp_path / "data.tar.gz"
    with tarfile.open(arch, "w:gz") as t:
        t.add(src, arcname="data")
    sha = hashlib.sha256(arch.read_bytes()).hexdigest()
    unpacked = realize(instantiate(fetchlocal, path=str(arch), sha256=sha, name="local"))
    assert open(join(rref2path(unpacked), "data", "inner.txt")).read() == "inside"
    assert not os.path.exists(join(rref2path(unpacked), "data.tar.gz"))  # 'unpack,remove'
    asis = realize(instantiate(fetchlocal, path=str(arch), sha256=sha, name="local2", mode="as-is"))
    assert os.path.isfile(join(rref2path(asis), "data.tar.gz"))


def test_contexts_do_not_depend_on_instantiation_order(store):
    def ab(m, first):
        x = counting_stage(m, "x", 1)
        y = counting_stage(m, "y", 2)
        if first == "y":
            y = counting_stage(m, "y", 2)
        return mkdrv(m, mkconfig({"name": "top", "deps": [x, y]}), match_only(),
                     build_wrapper(lambda b: build_outpath(b)))

    def ba(m):
        y = counting_stage(m, "y", 2)
        x = counting_stage(m, "x", 1)
        return mkdrv(m, mkconfig({"name": "top", "deps": [x, y]}), match_only(),
                     build_wrapper(lambda b: build_outpath(b)))
    r1 = realize(instantiate(ab, "x"))
    r2 = realize(instantiate(ba))
    assert r1 == r2


def test_a_realizer_that_writes_nothing_says_so(store):
    """build_wrapper(lambda b: None) never calls build_outpath(b): the error says that the
    realizer wrote nothing there, naming the derivation, and the store keeps nothing."""
    def empty(m):
        return mkdrv(m, mkconfig({"name": "empty"}), match_only(), build_wrapper(lambda b: None))
    clo = instantiate(empty)
    with pytest.raises(BuildError) as e:
        realize(clo)
    msg = str(e.value)
    assert clo.dref in msg and "wrote nothing to build_outpath(b)" in msg and "<lambda>" in msg, msg
    assert store_rrefs_(clo.dref) == []
