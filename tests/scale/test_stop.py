"""Stopping and faults: Ctrl-C in the driver stops the builds on the workers and
stores nothing; a worker killed in the middle of a build leaves nothing partial
and the build runs again. Exactly-once: two drivers, one cluster, one store."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scale_stages import builds, leaf, total
from pylightnix import instantiate, realize, rref2path, store_leftovers, store_rrefs_, store_verify
from pylightnix.scale.executors import Dask

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCRIPT = HERE / "driver_script.py"


def _env(root: str, executor: str):  # type: ignore[no-untyped-def]
    env = dict(os.environ)
    for k in ("PYLIGHTNIX_BREAK", "PYLIGHTNIX_BREAK_ON_FAILURE", "PYLIGHTNIX_TMP", "PYLIGHTNIX_STORE"):
        env.pop(k, None)
    env.update(PYLIGHTNIX_ROOT=root, PYLIGHTNIX_PROGRESS="0", PYLIGHTNIX_EXECUTOR=executor,
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def _driver(mode: str, log: Path, root: str, executor: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(SCRIPT), mode, str(log)], env=_env(root, executor),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _lines(log: Path):  # type: ignore[no-untyped-def]
    return log.read_text().splitlines() if log.exists() else []


def _wait_for(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.time() + timeout
    while not cond():
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _realizations(root: str):  # type: ignore[no-untyped-def]
    store = Path(root) / "store-v0"
    return [p for p in store.glob("*/*") if p.is_dir() and len(p.name) == 32]


def _executor_value(kind: str, request) -> str:  # type: ignore[no-untyped-def]
    return "processes:2" if kind == "processes" else f"dask:{request.getfixturevalue('cluster').scheduler_address}"


@pytest.mark.parametrize("kind", ["processes", "dask"])
def test_ctrl_c_in_driver_cancels_builds(tmp_path, kind, request):
    root, log = str(tmp_path / "root"), tmp_path / "log"
    p = _driver("sleepers", log, root, _executor_value(kind, request))
    try:
        _wait_for(lambda: len(_lines(log)) >= 2, 60, "both sleepers to start")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode != 0 and "KeyboardInterrupt" in err, err
    assert "RREF" not in out
    # the builds on the workers were stopped and cleaned up after themselves
    _wait_for(lambda: not os.listdir(os.path.join(root, "tmp")), 10, "the builds' temporary folders to go")
    time.sleep(1.0)
    assert not any(line.split()[0].endswith("-end") for line in _lines(log)), _lines(log)
    assert _realizations(root) == []
    if kind == "processes":  # the pool processes are gone too
        for line in _lines(log):
            pid = int(line.split()[1])
            _wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
                      open(f"/proc/{pid}/stat").read().split()[2] == "Z", 10, f"worker {pid} to exit")


def test_main_exception_class_comes_back_unchanged(tmp_path):
    root, log = str(tmp_path / "root"), tmp_path / "log"
    p = _driver("fail", log, root, "processes:2")
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, err
    assert "CAUGHT MainError failed in bad" in out


def test_two_drivers_one_cluster_exactly_once(tmp_path, cluster):
    root, log = str(tmp_path / "root"), tmp_path / "log"
    executor = f"dask:{cluster.scheduler_address}"
    ps = [_driver("shared", log, root, executor) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in ps]
    for p, (out, err) in zip(ps, outs):
        assert p.returncode == 0, err
    rrefs = {out.split()[1] for out, _ in outs}
    assert len(rrefs) == 1, outs
    starts = [line.split()[0] for line in _lines(log) if not line.split()[0].endswith("-end")]
    assert sorted(starts) == ["leaf0", "leaf1", "leaf2", "leaf3", "sum"], starts  # each built exactly once
    assert len(_realizations(root)) == 5


def _kill_first_build(log: str, name: str, killed: list) -> None:  # type: ignore[type-arg]
    deadline = time.time() + 60
    while time.time() < deadline:
        b = builds(log)
        if name in b:
            pid = b[name][0]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.02)


def _killed_worker(executor, store, tmp_path):  # type: ignore[no-untyped-def]
    log = str(tmp_path / "log")

    def stage(m):  # type: ignore[no-untyped-def]
        return total(m, log, "root", [slow_once(m, log, str(tmp_path / "attempted")), leaf(m, log, "other", 7)])
    killed: list = []  # type: ignore[type-arg]
    t = threading.Thread(target=_kill_first_build, args=(log, "victim", killed))
    t.start()
    rref = realize(instantiate(stage), executor=executor)
    t.join()
    assert killed, "the victim build never started"
    b = builds(log)
    assert len(b["victim"]) == 2 and b["victim"][0] == killed[0] != b["victim"][1], b
    assert open(os.path.join(rref2path(rref), "out.txt")).read() == "12"
    assert store_verify() == []
    victim = [d for d in instantiate(stage).derivations if d.config.val["name"] == "victim"][0]
    assert len(store_rrefs_(victim.dref)) == 1
    # the killed attempt left only its temporary folder, which gc may remove (its lock died with it)
    assert all(p.startswith(os.path.join(store, "tmp")) for p in store_leftovers())


def slow_once(m, log: str, marker: str):  # type: ignore[no-untyped-def]
    """'victim' runs for 30 s on its first attempt (and gets killed), then at once."""
    from pylightnix import Build, build_cattrs, build_outpath, build_wrapper, match_only, mkconfig, mkdrv
    from scale_stages import _log

    def _realize(b: Build) -> None:
        c = build_cattrs(b)
        _log(c.log, "victim")
        if not os.path.exists(c.marker):
            open(c.marker, "w").close()
            deadline = time.time() + 30
            while time.time() < deadline:
                time.sleep(0.05)
        with open(os.path.join(build_outpath(b), "out.txt"), "w") as f:
            f.write("5")
    return mkdrv(m, mkconfig({"name": "victim", "log": log, "marker": marker}), match_only(), build_wrapper(_realize))


def test_killed_pool_process(store, tmp_path, pool):
    _killed_worker(pool, store, tmp_path)


def test_killed_dask_worker(store, tmp_path, client):
    try:
        _killed_worker(Dask(client), store, tmp_path)
    finally:
        client.wait_for_workers(2, timeout=60)
