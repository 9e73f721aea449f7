"""Failures: the first one stops new submissions and lets running builds finish;
keep_going builds everything that does not depend on it. The user's exception
comes back unchanged, with the worker's traceback attached."""
from __future__ import annotations

import os
import threading

import pytest

from scale_stages import StageFailed, builds, leaf, total
from pylightnix import (ExecutorError, build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv,
                        realize, store_rrefs_, store_verify)
from pylightnix.scale.executors import Dask, Sequential


def failing_dag(m, log):  # type: ignore[no-untyped-def]
    """bad fails at once while slow runs; later and later2 wait for a free process."""
    bad = leaf(m, log, "bad", 1, fail=True)
    slow = leaf(m, log, "slow", 2, sleep=1.0)
    later = leaf(m, log, "later", 3)
    later2 = leaf(m, log, "later2", 4)
    after_bad = total(m, log, "after_bad", [bad, later])
    ok = total(m, log, "ok", [slow, later2])
    return total(m, log, "root", [after_bad, ok])


def _store_has(c, name):  # type: ignore[no-untyped-def]
    d = [x for x in c.derivations if x.config.val["name"] == name][0]
    return len(store_rrefs_(d.dref)) == 1


@pytest.fixture(params=["processes", "dask"])
def executor(request, pool):  # type: ignore[no-untyped-def]
    if request.param == "processes":
        return pool
    return Dask(request.getfixturevalue("client"))


def test_first_failure_stops_submissions(store, tmp_path, executor):
    log = str(tmp_path / "log")
    c = instantiate(failing_dag, log)
    with pytest.raises(StageFailed) as ei:
        realize(c, executor=executor)
    assert type(ei.value) is StageFailed and ei.value.args == ("boom in bad",)
    assert "boom in bad" in ei.value.worker_traceback and "_realize" in ei.value.worker_traceback
    b = builds(log)
    assert "slow-end" in b and _store_has(c, "slow")  # the running build finished and was kept
    assert "later" not in b and "later2" not in b  # nothing new was started
    assert store_verify() == []


def test_keep_going(store, tmp_path, executor):
    log = str(tmp_path / "log")
    c = instantiate(failing_dag, log)
    with pytest.raises(StageFailed):
        realize(c, executor=executor, keep_going=True)
    b = builds(log)
    assert {"slow", "later", "later2", "ok"} <= set(b)
    assert "after_bad" not in b and "root" not in b
    assert all(_store_has(c, n) for n in ("slow", "later", "later2", "ok"))
    assert not _store_has(c, "after_bad")


def test_keep_going_sequential(store, tmp_path):
    log = str(tmp_path / "log")
    with pytest.raises(StageFailed):
        realize(instantiate(failing_dag, log), executor=Sequential(), keep_going=True)
    assert {"bad", "slow", "later", "later2", "ok"} == set(builds(log)) - {"slow-end", "later-end", "later2-end"}


def test_unpicklable_realizer(store, tmp_path, pool):
    lock = threading.Lock()

    def holds_lock(b):  # type: ignore[no-untyped-def]
        with lock:
            open(os.path.join(build_outpath(b), "x"), "w").write("x")

    def stage(m):  # type: ignore[no-untyped-def]
        return mkdrv(m, mkconfig({"name": "locked"}), match_only(), build_wrapper(holds_lock))
    c = instantiate(stage)
    with pytest.raises(ExecutorError) as ei:
        realize(c, executor=pool)
    msg = str(ei.value)
    assert c.dref in msg and "holds_lock" in msg and "lock" in msg, msg
    assert ei.value.dref == c.dref
    assert store_rrefs_(c.dref) == []
    assert os.listdir(os.path.join(store, "tmp")) == []


class Unsendable(Exception):
    """An exception holding a lock: it cannot be pickled back to the driver."""

    def __init__(self, what):  # type: ignore[no-untyped-def]
        super().__init__(what)
        self.lock = threading.Lock()


def test_unsendable_exception_becomes_build_error(store, tmp_path, pool):
    from pylightnix import BuildError

    def bad(b):  # type: ignore[no-untyped-def]
        raise Unsendable("1/2")

    def stage(m):  # type: ignore[no-untyped-def]
        return mkdrv(m, mkconfig({"name": "unsendable"}), match_only(), build_wrapper(bad))
    c = instantiate(stage)
    with pytest.raises(BuildError) as ei:
        realize(c, executor=pool)
    assert "Unsendable: 1/2" in str(ei.value) and c.dref in str(ei.value)
