"""Build breakpoints follow the build to its worker: the build pauses in a worker
process (Processes(2), a Dask LocalCluster of 2 worker processes), the driver says
how to attach, and ``pylightnix attach`` (a real subprocess, cells on stdin) runs
cells there through the driver's pause hub."""
from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from pylightnix.wire.channel import ChannelError, connect
from scale_support import OutputReader

HERE = Path(__file__).resolve().parent
PIPELINE = HERE / "remote_pipeline.py"
ATTACH_LINE = re.compile(r"pylightnix: (\w+) (?:failed and )?is paused on worker (.+?); attach with: "
                         r"pylightnix attach ([0-9a-f]{6})")


class Driver(OutputReader):
    """remote_pipeline.py as a real subprocess without a terminal, its output read as it comes."""

    def __init__(self, executor: str, tmp: Path, env: Dict[str, str]) -> None:
        self.log = tmp / "runs.log"
        self.env = env
        super().__init__([sys.executable, str(PIPELINE), executor, str(self.log)], env)

    def runs(self) -> List[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def attach(env: Dict[str, str], cells: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pylightnix", "attach", *args], input=cells, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def env(tmp_path: Path) -> Dict[str, str]:
    e = dict(os.environ)
    e.update(PYLIGHTNIX_ROOT=str(tmp_path / "store"), PYLIGHTNIX_DEBUG_DIR=str(tmp_path / "debug"),
             PYTHONUNBUFFERED="1")
    for k in ("PYLIGHTNIX_BREAK", "PYLIGHTNIX_BREAK_ON_FAILURE", "PYLIGHTNIX_NO_TTY", "FAIL_BETA",
              "PYLIGHTNIX_EXECUTOR", "PYLIGHTNIX_REMOTE_PAUSES"):
        e.pop(k, None)
    return e


@pytest.fixture(params=["processes", "dask"])
def executor(request: pytest.FixtureRequest) -> str:
    if request.param == "processes":
        return "processes:2"
    cluster = request.getfixturevalue("cluster")
    return f"dask:{cluster.scheduler_address}"


@pytest.fixture
def driver_factory(tmp_path: Path) -> Iterator:
    made: List[Driver] = []

    def make(executor: str, env: Dict[str, str]) -> Driver:
        d = Driver(executor, tmp_path, env)
        made.append(d)
        return d
    yield make
    for d in made:
        d.kill()


def realization(env: Dict[str, str], name: str) -> List[str]:
    """The weights files of ``name``'s realizations in the store."""
    return sorted(glob.glob(os.path.join(env["PYLIGHTNIX_ROOT"], "store-v0", f"*-{name}", "*", "weights.txt")))


def test_pause_before_build_on_worker_commit_by_hand(env, executor, driver_factory) -> None:
    env["PYLIGHTNIX_BREAK"] = "beta"
    d = driver_factory(executor, env)
    driver_pid = int(d.wait_for(re.compile(r"DRIVER (\d+)"))[0].group(1))
    m = d.wait_for(ATTACH_LINE)[0]
    name, where, pause_id = m.groups()
    assert name == "beta"
    listed = subprocess.run([sys.executable, "-m", "pylightnix", "attach", "--list"], env=env,
                            capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0 and f"{pause_id}  beta  before" in listed.stdout, listed
    assert re.search(rf"{pause_id}  beta  before  on worker [^,\s]+, pid \d+, driver pid {driver_pid}\n", listed.stdout), listed
    out = attach(env, "print('GLOBALS', THRESHOLD, 'BIG_TABLE' in globals())\n"
                      "import os; print('PID', os.getpid())\n"
                      "b = Model(repl_buildargs()); train(b)\n"
                      "repl_continueBuild(b)\n", pause_id)
    assert out.returncode == 0, out.stderr
    worker_pid = int(re.search(r"PID (\d+)", out.stdout).group(1))
    assert "GLOBALS 0.5 False" in out.stdout  # the driver's small globals came along, the big one did not
    assert worker_pid != driver_pid  # the cells ran on the worker, where the build is
    assert "rref:" in out.stdout and "detached from beta" in out.stdout
    text = d.finish()
    assert d.proc.returncode == 0, text
    assert f"beta ({pause_id}): committed by hand" in text
    files = realization(env, "beta")
    assert len(files) == 1 and Path(files[0]).read_text() == f"beta trained in {worker_pid}\n"
    # beta's realizer never ran: it was built by hand; alpha and top ran once each
    assert sorted(r.split()[0] for r in d.runs()) == ["alpha", "top"]
    assert re.search(r"realized top: 3 built, 0 cached", text), text


def test_failed_build_on_worker_fixed_in_console_trains_once(env, executor, driver_factory) -> None:
    env.update(PYLIGHTNIX_BREAK_ON_FAILURE="1", FAIL_BETA="1")
    d = driver_factory(executor, env)
    m = d.wait_for(ATTACH_LINE)[0]
    assert m.group(1) == "beta" and "failed and is paused" in m.group(0)
    out = attach(env, "print(type(exc).__name__, exc)\ntrain(b)\nrepl_continueBuild(b)\n", "beta")
    assert "ValueError beta diverged" in out.stdout, out.stdout
    text = d.finish()
    assert d.proc.returncode == 0 and "RESULT rref:" in text, text
    assert [r.split()[0] for r in d.runs()].count("beta") == 1  # trained once: the failed run, fixed by hand
    assert len(realization(env, "beta")) == 1


def test_cancel_from_console_cancels_the_realization(env, executor, driver_factory) -> None:
    env["PYLIGHTNIX_BREAK"] = "beta"
    d = driver_factory(executor, env)
    pause_id = d.wait_for(ATTACH_LINE)[0].group(3)
    out = attach(env, "b = Model(repl_buildargs()); train(b)\nrepl_cancel()\n", pause_id)
    assert out.returncode == 0, out.stderr
    text = d.finish()
    assert d.proc.returncode == 1 and "ERROR BuildCancelled" in text, text
    assert realization(env, "beta") == [] and not glob.glob(os.path.join(env["PYLIGHTNIX_ROOT"], "store-v0", "*-top", "*", "sum.txt"))


def test_two_pauses_at_once_continue_one_then_the_other(env, driver_factory) -> None:
    env["PYLIGHTNIX_BREAK"] = "alpha,beta"
    d = driver_factory("processes:2", env)
    hits = d.wait_for(ATTACH_LINE, count=2)
    ids = {m.group(1): m.group(3) for m in hits}
    assert set(ids) == {"alpha", "beta"}
    out = attach(env, "print('in', name)\n", ids["alpha"])  # leaving continues alpha: its realizer runs
    assert "in alpha" in out.stdout
    d.wait_for(re.compile(r"alpha \(\w+\): continuing on its worker"))
    time.sleep(0.5)
    # beta is still paused, undisturbed, and still attachable
    listed = subprocess.run([sys.executable, "-m", "pylightnix", "attach", "--list"], env=env,
                            capture_output=True, text=True, timeout=30).stdout
    assert ids["beta"] in listed and ids["alpha"] not in listed
    assert "beta" not in [r.split()[0] for r in d.runs()]
    out = attach(env, "b = Model(repl_buildargs()); train(b); repl_continueBuild(b)\n", ids["beta"])
    assert "detached from beta" in out.stdout
    text = d.finish()
    assert d.proc.returncode == 0, text
    assert sorted(r.split()[0] for r in d.runs()) == ["alpha", "top"]


def test_hub_refuses_a_wrong_secret_and_unknown_pauses(env, driver_factory) -> None:
    env["PYLIGHTNIX_BREAK"] = "beta"
    d = driver_factory("processes:2", env)
    d.wait_for(ATTACH_LINE)
    hubs = [json.load(open(p)) for p in glob.glob(os.path.join(env["PYLIGHTNIX_DEBUG_DIR"], "attach-*.json"))]
    hub = [h for h in hubs if h.get("role") == "hub"]
    assert len(hub) == 1
    path = os.path.join(env["PYLIGHTNIX_DEBUG_DIR"], f"attach-{hub[0]['port']}.json")
    assert os.stat(path).st_mode & 0o777 == 0o600 and hub[0]["pauses"][0]["name"] == "beta"
    for role in ("worker", "attach"):  # neither a worker agent nor an attacher gets in without the secret
        with pytest.raises(ChannelError, match="refused"):
            connect("127.0.0.1", hub[0]["port"], "0" * 64, hello={"role": role, "pause": "beta", "service": "console"})
    out = attach(env, "", "nosuchbuild")
    assert out.returncode == 2 and "no paused build is called 'nosuchbuild'" in out.stderr
    out = attach(env, "", "beta")  # Ctrl-D at once: beta's realizer runs
    text = d.finish()
    assert d.proc.returncode == 0, text
    assert "refused unauthenticated connection" in text
    assert sorted(r.split()[0] for r in d.runs()) == ["alpha", "beta", "top"]


def test_remote_pauses_off_builds_in_the_driver(env, driver_factory) -> None:
    env.update(PYLIGHTNIX_BREAK="beta", PYLIGHTNIX_REMOTE_PAUSES="0", PYLIGHTNIX_NO_TTY="continue")
    d = driver_factory("processes:2", env)
    driver_pid = int(d.wait_for(re.compile(r"DRIVER (\d+)"))[0].group(1))
    text = d.finish()
    assert d.proc.returncode == 0, text
    assert "attach with" not in text
    assert f"beta {driver_pid}" in d.runs()  # as before this feature: the paused build ran in the driver


def test_pause_on_an_in_thread_dask_worker_is_served_there(env, driver_factory) -> None:
    """LocalCluster(processes=False): the worker is a thread of the driver process; the
    build pauses in that thread (it used to be built in the driver without a word)."""
    env["PYLIGHTNIX_BREAK"] = "beta"
    d = driver_factory("dask-inthread", env)
    driver_pid = int(d.wait_for(re.compile(r"DRIVER (\d+)"))[0].group(1))
    m = d.wait_for(ATTACH_LINE)[0]
    assert m.group(2).startswith("inproc://"), m.group(0)
    out = attach(env, "import os, threading; print('IN', os.getpid(), threading.current_thread() is threading.main_thread())\n"
                      "b = Model(repl_buildargs()); train(b); repl_continueBuild(b)\n", m.group(3))
    assert f"IN {driver_pid} False" in out.stdout, out.stdout  # the worker's thread, in the driver process
    text = d.finish()
    assert d.proc.returncode == 0 and "committed by hand" in text, text
    assert sorted(r.split()[0] for r in d.runs()) == ["alpha", "top"]
    assert len(realization(env, "beta")) == 1
