"""Parallel realizations give what a sequential one gives, on a process pool and
on a real Dask LocalCluster; progress says where builds ran."""
from __future__ import annotations

import os

import pytest

from scale_support import snapshot, use_store
from scale_stages import builds, dag, leaf, total
from pylightnix import Frontend, add_frontend, instantiate, realize, realizeMany, remove_frontend, rref2path, store_verify
from pylightnix.executors import Dask, Processes, Sequential


def _sequential_then(executor, store, tmp_path, monkeypatch, buildtime):  # type: ignore[no-untyped-def]
    log = str(tmp_path / "log")
    c1 = instantiate(dag, log, buildtime)
    r1 = realize(c1, executor=Sequential())
    s1 = snapshot(c1, with_rrefs=not buildtime)
    use_store(monkeypatch, str(tmp_path / "other-root"))
    os.remove(log)
    c2 = instantiate(dag, log, buildtime)
    r2 = realize(c2, executor=executor)
    assert snapshot(c2, with_rrefs=not buildtime) == s1
    assert open(os.path.join(rref2path(r2), "out.txt")).read() == "15 [6, 7]"
    assert store_verify() == []
    b = builds(log)
    assert sorted(b) == ["leaf0", "leaf0-end", "leaf1", "leaf1-end", "leaf2", "leaf2-end", "leaf3", "leaf3-end",
                         "pair", "root", "sumA", "sumB"]
    assert all(len(p) == 1 for p in b.values()), b  # each stage built once
    assert all(p[0] != os.getpid() for p in b.values()), b  # ... and not in the driver
    # warm: nothing is built again, and the same RRef comes back
    assert realize(instantiate(dag, log, buildtime), executor=executor) == r2
    assert builds(log) == b
    return r1, r2


@pytest.mark.parametrize("buildtime", [False, True], ids=["no-buildtime", "buildtime"])
def test_processes_equal_sequential(store, tmp_path, monkeypatch, pool, buildtime):
    r1, r2 = _sequential_then(pool, store, tmp_path, monkeypatch, buildtime)
    assert r1 == r2  # build times are metadata (not hashed): identical builds, identical RRefs


@pytest.mark.parametrize("buildtime", [False, True], ids=["no-buildtime", "buildtime"])
def test_dask_equal_sequential(store, tmp_path, monkeypatch, client, buildtime):
    r1, r2 = _sequential_then(Dask(client), store, tmp_path, monkeypatch, buildtime)
    assert r1 == r2  # build times are metadata (not hashed): identical builds, identical RRefs


def test_independent_builds_overlap(store, tmp_path, pool):
    """Two leaves on two processes run at the same time: each waits until the other has started
    (a rendezvous, not a clock: a serial executor fails it after 60 s whatever the load)."""
    log = str(tmp_path / "log")

    def two(m):  # type: ignore[no-untyped-def]
        from scale_stages import total
        return total(m, log, "sum", [leaf(m, log, "a", 1, meet="b"), leaf(m, log, "b", 2, meet="a")])
    rref = realize(instantiate(two), executor=pool)
    assert open(os.path.join(rref2path(rref), "out.txt")).read() == "3"
    pids = {line.split()[0]: line.split()[1] for line in open(log).read().splitlines()}
    assert pids["a"] != pids["b"], pids


class Recorder(Frontend):
    def __init__(self) -> None:
        self.progress = []
        self.built = []

    def on_progress(self, *, index, total, dref, name, where="driver", **kw):  # type: ignore[no-untyped-def]
        self.progress.append((name, where))

    def on_built(self, *, dref, name, rrefs, **kw):  # type: ignore[no-untyped-def]
        self.built.append((name, list(rrefs)))


def test_progress_says_where(store, tmp_path, client, pool):
    rec = add_frontend(Recorder())
    try:
        rrefs = realizeMany(instantiate(dag, str(tmp_path / "log")), executor=Dask(client))
    finally:
        remove_frontend(rec)
    assert sorted(n for n, _ in rec.progress) == ["leaf0", "leaf1", "leaf2", "leaf3", "pair", "root", "sumA", "sumB"]
    workers = set(client.scheduler_info()["workers"])
    assert {w for _, w in rec.progress} <= workers and len(rec.progress) == 8  # the worker each build ran on
    assert sorted(n for n, _ in rec.built) == sorted(n for n, _ in rec.progress)
    assert dict(rec.built)["root"] == rrefs
    rec = add_frontend(Recorder())
    try:
        realizeMany(instantiate(dag, str(tmp_path / "log2")), executor=pool)
    finally:
        remove_frontend(rec)
    assert {w for _, w in rec.progress} == {"process pool"} and len(rec.progress) == 8


class OldRecorder(Frontend):
    """A frontend written before ``where`` existed: its hook takes no such keyword."""

    def __init__(self) -> None:
        self.names = []

    def on_progress(self, index, total, dref, name):  # type: ignore[no-untyped-def]
        self.names.append(name)


def test_progress_reaches_frontends_without_where(store, tmp_path, pool):
    rec = add_frontend(OldRecorder())
    try:
        realizeMany(instantiate(dag, str(tmp_path / "log")), executor=pool)
    finally:
        remove_frontend(rec)
    assert sorted(rec.names) == ["leaf0", "leaf1", "leaf2", "leaf3", "pair", "root", "sumA", "sumB"]


def test_breakpoint_builds_in_driver(store, tmp_path, pool):
    """A frontend without on_remote_pause (written before pauses on workers) gets its pauses in the
    driver: the derivation with a build breakpoint is built there; others go to workers."""
    from pylightnix import set_build_breakpoints

    class Continue(Frontend):
        def __init__(self) -> None:
            self.paused = []

        def on_pause(self, *, pause, **kw):  # type: ignore[no-untyped-def]
            self.paused.append(pause.name)  # leave it pending: build as usual

    fe = add_frontend(Continue())
    set_build_breakpoints(["sumB"])
    log = str(tmp_path / "log")
    try:
        realize(instantiate(dag, log), executor=pool)
    finally:
        remove_frontend(fe)
    assert fe.paused == ["sumB"]
    b = builds(log)
    assert b["sumB"] == [os.getpid()]
    assert b["sumA"] != [os.getpid()]


def test_break_on_failure_builds_in_driver(store, tmp_path, pool, capfd):
    """For such a frontend, while break-on-failure is on, builds still run on workers; one that
    fails there is built again in the driver, where its failure pauses, and the progress
    display says so (it used to pull every build into the driver in case it failed)."""
    from pylightnix import set_break_on_failure
    from scale_stages import StageFailed

    class Failures(Frontend):
        def __init__(self) -> None:
            self.failed = []

        def on_failure(self, *, pause, **kw):  # type: ignore[no-untyped-def]
            self.failed.append((pause.name, type(pause.exception).__name__))  # pending: the error propagates

    fe = add_frontend(Failures())
    set_break_on_failure(True)
    log = str(tmp_path / "log")
    try:
        with pytest.raises(StageFailed):
            realize(instantiate(lambda m: total(m, log, "sum", [leaf(m, log, "ok", 1), leaf(m, log, "bad", 2,
                                                                                            fail=True)])),
                    executor=pool)
    finally:
        remove_frontend(fe)
    assert fe.failed == [("bad", "StageFailed")]
    assert builds(log)["ok"] != [os.getpid()]
    away, here = builds(log)["bad"]
    assert away != os.getpid() and here == os.getpid()
    assert "[pylightnix] bad failed on its worker and builds again in the driver, where its failure pauses: " \
           "the frontend in charge of pauses serves them only in the driver" in capfd.readouterr().err
