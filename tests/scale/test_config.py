"""PYLIGHTNIX_EXECUTOR, the missing [dask] extra, and resources."""
from __future__ import annotations

import os
import sys

import pytest

from scale_stages import builds, leaf, total
from pylightnix import ClosureError, ExecutorError, PylightnixError, instantiate, realize, rref2path
from pylightnix.scale.executors import Dask, Processes, Sequential, default_executor, parse_executor


@pytest.mark.parametrize("value,kind,n", [("sequential", Sequential, None), ("processes:3", Processes, 3),
                                          (" Processes:1 ", Processes, 1), ("processes", Processes, os.cpu_count())])
def test_parse_good(value, kind, n):
    ex = parse_executor(value)
    assert type(ex) is kind
    if n is not None:
        assert ex.n == n


def test_parse_dask_address():
    ex = parse_executor("dask:tcp://127.0.0.1:8786")
    assert type(ex) is Dask and ex.address == "tcp://127.0.0.1:8786"


@pytest.mark.parametrize("value", ["processes:0", "processes:-2", "processes:two", "dask:", "threads", "seq",
                                   "sequential:4", "processes:"])
def test_parse_bad(value):
    with pytest.raises(ExecutorError) as ei:
        parse_executor(value)
    assert isinstance(ei.value, PylightnixError)
    assert repr(value) in str(ei.value) and "processes:N" in str(ei.value) or "needs" in str(ei.value)


def test_env_sets_default(store, tmp_path, monkeypatch):
    log = str(tmp_path / "log")
    monkeypatch.setenv("PYLIGHTNIX_EXECUTOR", "processes:2")
    ex = default_executor()
    assert type(ex) is Processes and ex.n == 2 and default_executor() is ex  # made once per value
    try:
        rref = realize(instantiate(lambda m: total(m, log, "sum", [leaf(m, log, "a", 1), leaf(m, log, "b", 2)])))
    finally:
        ex.close()
    assert open(os.path.join(rref2path(rref), "out.txt")).read() == "3"
    assert all(pids[0] != os.getpid() for pids in builds(log).values())
    monkeypatch.setenv("PYLIGHTNIX_EXECUTOR", "processes:many")
    with pytest.raises(ExecutorError, match="processes:many"):
        realize(instantiate(lambda m: leaf(m, log, "c", 3)))
    monkeypatch.setenv("PYLIGHTNIX_EXECUTOR", "sequential")
    rref = realize(instantiate(lambda m: leaf(m, log, "d", 4)))
    assert builds(log)["d"] == [os.getpid()]


def test_missing_distributed(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # what an install without the [dask] extra sees
    with pytest.raises(ExecutorError, match=r"-m pip install 'distributed>=2023.6' \(or the '\[dask\]' extra"):
        Dask(address="tcp://127.0.0.1:8786")


def test_cloudpickle_is_a_core_dependency(monkeypatch):
    """Processes works after any install: cloudpickle is in the core dependencies, distributed
    only in the dask extra; a broken install without it is told what to install."""
    import re
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    text = open(os.path.join(repo, "pyproject.toml"), encoding="utf-8").read()
    core = re.search(r"^dependencies = \[(.*?)\]", text, re.S | re.M).group(1)
    dask = re.search(r"^dask = \[(.*?)\]", text, re.S | re.M).group(1)
    assert '"cloudpickle>=' in core and "distributed" not in core
    assert '"distributed>=' in dask
    monkeypatch.setitem(sys.modules, "cloudpickle", None)
    with pytest.raises(ExecutorError, match=r"-m pip install 'cloudpickle>=2.2'"):
        Processes(1)


def test_bad_processes_argument():
    with pytest.raises(ExecutorError, match="positive"):
        Processes(0)


@pytest.mark.parametrize("res", [{"GPU": -1}, {"GPU": "one"}, ["GPU"], {1: 1}])
def test_bad_resources(store, tmp_path, res):
    with pytest.raises(ClosureError, match="resources"):
        instantiate(lambda m: leaf(m, str(tmp_path / "log"), "g", 1, resources=res))


def test_resources_ignored_by_processes(store, tmp_path, pool):
    log = str(tmp_path / "log")
    rref = realize(instantiate(lambda m: leaf(m, log, "g", 1, resources={"GPU": 1})), executor=pool)
    assert open(os.path.join(rref2path(rref), "out.txt")).read() == "1"


@pytest.fixture(scope="module")
def gpu_client():  # type: ignore[no-untyped-def]
    """Two workers with two threads each, and one GPU each."""
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=2, resources={"GPU": 1},
                      dashboard_address=":0", silence_logs=40) as c, Client(c) as client:
        yield client


def _spans(log: str):  # type: ignore[no-untyped-def]
    """name -> (pid, start, end) of each build."""
    t = {}
    for line in open(log).read().splitlines():
        name, pid, when = line.split()
        t.setdefault(name.replace("-end", ""), []).append((int(pid), float(when)))
    return {k: (v[0][0], v[0][1], v[1][1]) for k, v in t.items() if len(v) == 2}


def _overlaps_on_one_worker(spans) -> bool:  # type: ignore[no-untyped-def]
    s = list(spans.values())
    return any(a[0] == b[0] and a[1] < b[2] and b[1] < a[2] for i, a in enumerate(s) for b in s[i + 1:])


@pytest.mark.parametrize("gpu", [True, False], ids=["GPU-1", "no-resources"])
def test_resources_keep_gpu_builds_apart(store, tmp_path, gpu_client, gpu):
    log = str(tmp_path / "log")
    res = {"GPU": 1} if gpu else None

    def stage(m):  # type: ignore[no-untyped-def]
        return total(m, log, "sum", [leaf(m, log, f"train{i}", i, sleep=0.6, resources=res) for i in range(4)])
    rref = realize(instantiate(stage), executor=Dask(gpu_client))
    assert open(os.path.join(rref2path(rref), "out.txt")).read() == "6"
    spans = {k: v for k, v in _spans(log).items() if k.startswith("train")}
    assert len({pid for pid, _, _ in spans.values()}) == 2  # both workers were used
    # with a GPU each, a worker runs one training at a time although it has two threads
    assert _overlaps_on_one_worker(spans) != gpu, spans


@pytest.mark.parametrize("fork_server", ["default", "imports-main"])
def test_unguarded_script_gets_a_clear_error(tmp_path, fork_server):
    """Workers started by forkserver import __main__ again; an unguarded script gets told what to
    do, first and alone: no traceback of the workers, no leaked-semaphore warning, no probe file
    left in the store. ``imports-main``: the fork server imports the script too, as on Python
    3.14, where the failure arrives as ConnectionResetError (forkserver_imports_main.py)."""
    import subprocess
    script = tmp_path / "unguarded.py"
    preload = "import multiprocessing; multiprocessing.set_forkserver_preload(['forkserver_imports_main'])\n"
    script.write_text((preload if fork_server == "imports-main" else "") +
                      "from pylightnix import instantiate, realize, mkfile\n"
                      "print('RREF', realize(instantiate(mkfile, 'f', b'x')))\n")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYLIGHTNIX_ROOT=str(tmp_path / "root"), PYLIGHTNIX_EXECUTOR="processes:2",
               PYTHONPATH=os.pathsep.join([repo, os.path.dirname(os.path.abspath(__file__))]),
               PRELOAD_MAIN=str(script))
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "RREF" not in r.stdout
    assert "ExecutorError" in r.stderr and 'if __name__ == "__main__":' in r.stderr, r.stderr[-2000:]
    assert r.stderr.count("Traceback") == 1 and "RuntimeError" not in r.stderr, r.stderr  # the driver's only
    assert "leaked" not in r.stderr and r.stderr.strip().splitlines()[-1].startswith(
        "pylightnix.core.errors.ExecutorError"), r.stderr
    store = tmp_path / "root" / "store-v0"
    assert [p.name for p in store.iterdir() if p.name.startswith(".tmp")] == []
    assert [p.name for p in (tmp_path / "root" / "tmp").iterdir()] == []
    env["PYLIGHTNIX_EXECUTOR"] = "sequential"  # the same script is fine without workers
    assert "RREF" in subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                                    timeout=120).stdout
