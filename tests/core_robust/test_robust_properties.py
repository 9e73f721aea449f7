"""Property tests (hypothesis) for hashing and realization determinism.

* A config's DRef (through ``mkconfig`` and ``instantiate``) does not depend on
  the key order of its dicts, at any depth; a changed value changes it.
* Random small DAGs (multi-output stages included) realize to the same RRefs in
  two fresh stores, even when the second store instantiates the derivations
  in a different (still topological) order; also when every build records its
  build time and other ``_`` metadata, which is stored but not hashed.
"""
from __future__ import annotations

import os
import random
import tempfile
import time
from contextlib import contextmanager
from os.path import join
from typing import Any, Dict, Iterator, List, Set, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pylightnix as P

RESERVED_PREFIXES = ("dref:", "rref:", P.PYLIGHTNIX_PROMISE_TAG, P.PYLIGHTNIX_CLAIM_TAG)


def _plain_text(**kw: Any) -> st.SearchStrategy[str]:
    return st.text(**kw).filter(lambda s: not s.startswith(RESERVED_PREFIXES))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**63) | _plain_text(max_size=10)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_plain_text(max_size=6), inner, max_size=4),
    max_leaves=15)
configs = st.dictionaries(_plain_text(min_size=1, max_size=8).filter(lambda k: k != "name"), json_values,
                          min_size=1, max_size=6)


def _shuffled(v: Any, rnd: random.Random) -> Any:
    """The same JSON value with every dict's key order permuted."""
    if isinstance(v, dict):
        items = list(v.items())
        rnd.shuffle(items)
        return {k: _shuffled(x, rnd) for k, x in items}
    if isinstance(v, list):
        return [_shuffled(x, rnd) for x in v]
    return v


@contextmanager
def fresh_store() -> Iterator[str]:
    """A new, initialized store; the previous store settings come back afterwards."""
    from pylightnix.core import store as store_mod
    saved = store_mod.use_store(None)
    with tempfile.TemporaryDirectory(prefix="plx-prop-") as d, pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYLIGHTNIX_ROOT", join(d, "root"))
        mp.delenv("PYLIGHTNIX_TMP", raising=False)
        mp.delenv("PYLIGHTNIX_STORE", raising=False)
        try:
            P.store_initialize()
            yield d
        finally:
            store_mod.use_store(saved)


def _no_op_realizer(b: P.Build) -> None:
    P.build_outpath(b)


def dref_of(cfg: Dict[str, Any]) -> str:
    def stage(m: P.Manager) -> P.DRef:
        return P.mkdrv(m, P.mkconfig(cfg), P.match_only(), P.build_wrapper(_no_op_realizer))
    return P.instantiate(stage).dref


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=configs, rnd=st.randoms(use_true_random=False))
def test_dref_invariant_under_key_order(cfg: Dict[str, Any], rnd: random.Random) -> None:
    a = dict(cfg, name="cfg")
    b = _shuffled(dict(cfg, name="cfg"), rnd)
    if list(b) == list(a):
        b = dict(reversed(list(b.items())))
    assert list(a) != list(b)  # at least the top level is reordered ("name" is last in a)
    with fresh_store():
        da, db = dref_of(a), dref_of(b)
        assert da == db
        changed = dict(a, extra_key_not_in_cfg=[1, {"x": 2}])
        assert dref_of(changed) != da


# -- random DAGs --------------------------------------------------------------------

# a node: (dependencies among earlier nodes, number of outputs, payload)
Node = Tuple[List[int], int, str]


@st.composite
def dags(draw: Any) -> List[Node]:
    n = draw(st.integers(1, 6))
    nodes: List[Node] = []
    for i in range(n):
        deps = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        nodes.append((sorted(deps), draw(st.integers(1, 2)), draw(_plain_text(max_size=8))))
    return nodes


def _topological(nodes: List[Node], rnd: random.Random) -> List[int]:
    """A random order in which every node comes after its dependencies."""
    done: Set[int] = set()
    order: List[int] = []
    while len(order) < len(nodes):
        ready = [i for i, (deps, _, _) in enumerate(nodes) if i not in done and set(deps) <= done]
        i = rnd.choice(ready)
        done.add(i)
        order.append(i)
    return order


def _realizer(b: P.Build) -> None:
    c = P.build_cattrs(b)
    if b.timeprefix is not None:  # metadata that differs on every build: a file and a folder
        for o in P.build_outpaths(b, nouts=c.nouts):
            os.makedirs(join(o, "_logs"))
            with open(join(o, "_logs", "run.txt"), "w") as f:
                f.write(f"{os.getpid()} {time.time_ns()}")
    inputs = []
    for dep in sorted(b.context):
        for r in P.build_deref_(b, dep):
            with open(join(P.rref2path(r), "data", "value.txt")) as f:
                inputs.append(f.read())
    for k, o in enumerate(P.build_outpaths(b, nouts=c.nouts)):
        os.makedirs(join(o, "data"))
        with open(join(o, "data", "value.txt"), "w") as f:
            f.write(f"{c.name}|{c.payload}|{k}|{'+'.join(inputs)}")
        with open(join(o, "z-first-in-listing-order.txt"), "w") as f:
            f.write(str(k))


def _stage_upto(m: P.Manager, nodes: List[Node], order: List[int], target: int, buildtime: bool = False) -> P.DRef:
    """Register every node in ``order``; the closure's target is node ``target``."""
    drefs: Dict[int, P.DRef] = {}
    for i in order:
        deps, nouts, payload = nodes[i]
        cfg = P.mkconfig({"name": f"n{i}", "deps": [drefs[d] for d in deps], "nouts": nouts, "payload": payload})
        matcher = P.match_only() if nouts == 1 else P.match_n(nouts, [P.texthash()])
        drefs[i] = P.mkdrv(m, cfg, matcher, P.build_wrapper(_realizer, buildtime=buildtime))
    return drefs[target]


def realize_dag(nodes: List[Node], order: List[int], buildtime: bool = False) -> List[str]:
    """Realize every sink of the DAG instantiated in ``order``; return all RRefs in the store."""
    used = {d for deps, _, _ in nodes for d in deps}
    for i in range(len(nodes)):
        if i not in used:
            P.realizeMany(P.instantiate(_stage_upto, nodes, order, i, buildtime))
    return sorted(r for d in P.store_drefs() for r in P.store_rrefs_(d))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=dags(), rnd=st.randoms(use_true_random=False))
def test_random_dags_realize_identically_in_two_fresh_stores(nodes: List[Node], rnd: random.Random) -> None:
    first = list(range(len(nodes)))
    second = _topological(nodes, rnd)
    with fresh_store():
        a = realize_dag(nodes, first)
    with fresh_store():
        b = realize_dag(nodes, second)
    assert a == b
    assert len(a) == sum(nouts for _, nouts, _ in nodes)  # every node realized, multi-outputs distinct


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=dags(), rnd=st.randoms(use_true_random=False))
def test_random_dags_with_build_times_realize_identically_in_two_fresh_stores(nodes: List[Node],
                                                                             rnd: random.Random) -> None:
    """``buildtime=True`` and ``_`` metadata do not change RRefs; rebuilding finds the same realizations."""
    order = _topological(nodes, rnd)
    with fresh_store():
        a = realize_dag(nodes, order, buildtime=True)
        times_a = {r: P.store_buildtime(r) for r in a}
    with fresh_store():
        b = realize_dag(nodes, order, buildtime=True)
        times_b = {r: P.store_buildtime(r) for r in b}
        assert a == b
        assert all(times_a[r] is not None and times_a[r] != times_b[r] for r in a)  # the metadata did differ
        sink = next(i for i in range(len(nodes)) if i not in {d for deps, _, _ in nodes for d in deps})
        clo = P.instantiate(_stage_upto, nodes, order, sink, True)
        P.realizeMany(clo, force_rebuild=True)
        assert sorted(r for d in P.store_drefs() for r in P.store_rrefs_(d)) == b  # no second copy
        assert P.store_verify() == []


# -- realization hashes: file names count, creation order does not --------------------

_fname = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789_-.", min_size=1, max_size=10).filter(
    lambda s: s not in (".", "..", "context.json", "__buildtime__.txt"))
file_trees = st.dictionaries(st.tuples(st.sampled_from(["", "sub", "sub/deeper", "other"]), _fname),
                             st.binary(max_size=64), min_size=1, max_size=8)


def _realize_files(files: Dict[Tuple[str, str], bytes], order: List[Tuple[str, str]]) -> str:
    def write(b: P.Build) -> None:
        o = P.build_outpath(b)
        for d, name in order:
            os.makedirs(join(o, d), exist_ok=True)
            with open(join(o, d, name), "wb") as f:
                f.write(files[(d, name)])

    def stage(m: P.Manager) -> P.DRef:
        return P.mkdrv(m, P.mkconfig({"name": "files"}), P.match_only(), P.build_wrapper(write, buildtime=False))
    return P.realize(P.instantiate(stage))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=file_trees, rnd=st.randoms(use_true_random=False))
def test_realization_hash_covers_names_not_creation_order(files: Dict[Tuple[str, str], bytes],
                                                          rnd: random.Random) -> None:
    # folders named like files would make the tree depend on order; keep names apart
    dirs = {"sub", "deeper", "other"}
    files = {k: v for k, v in files.items() if k[1] not in dirs}
    if not files:
        return
    order = sorted(files)
    shuffled = list(order)
    rnd.shuffle(shuffled)
    with fresh_store():
        a = _realize_files(files, order)
    with fresh_store():
        b = _realize_files(files, shuffled)
    assert a == b
    (d, name), data = next(iter(files.items()))
    renamed = {k: v for k, v in files.items() if k != (d, name)}
    renamed[(d, name + "x")] = data
    if (d, name + "x") not in files:
        with fresh_store():
            c = _realize_files(renamed, sorted(renamed))
        if name.startswith("_"):
            assert c == a  # metadata (a name starting with _) is stored, not hashed
        else:
            assert c != a  # same bytes under another name is another realization
