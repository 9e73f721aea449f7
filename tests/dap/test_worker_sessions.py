"""Build breakpoints that follow the build to its worker, over DAP.

The program (tests/scale/remote_pipeline.py) realizes with ``Processes(2)`` or
on a real Dask ``LocalCluster`` of 2 worker processes. A build pause on a
worker reaches the parent session's client as the reverse request
``startDebugging``; the test then opens the child session as VS Code does: a
second adapter process, ``initialize``, ``attach`` with that configuration,
``configurationDone``, and works in the child's Debug Console."""
from __future__ import annotations

import glob
import os
import re
import subprocess
import sys
import time
from typing import Any, Dict, Iterator, List

import pytest

from pylightnix.wire.channel import ChannelError, connect

from dap_testlib import INIT_ARGS, REPO, SchemaChecker, launch, repl, spawn_pipes, top_frame

pytestmark = pytest.mark.timeout(180)

PIPELINE = os.path.join(REPO, "tests", "scale", "remote_pipeline.py")


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0",
                      silence_logs=40) as c:
        yield c.scheduler_address


@pytest.fixture(params=["processes", "dask"])
def executor(request: pytest.FixtureRequest) -> str:
    if request.param == "processes":
        return "processes:2"
    return "dask:" + request.getfixturevalue("dask_address")


@pytest.fixture
def debug_dir(tmp_path, monkeypatch) -> str:
    """One attach-file directory for the program and every adapter (as for one user)."""
    d = str(tmp_path / "debug")
    monkeypatch.setenv("PYLIGHTNIX_DEBUG_DIR", d)
    return d


class Parent:
    """The parent session: launches the pipeline and records startDebugging requests."""

    def __init__(self, tmp_path, executor: str, breaks: List[str], filters=("uncaught",),
                 env: Dict[str, str] = None) -> None:
        self.c = spawn_pipes(SchemaChecker())
        self.children: List[Any] = []
        self.starts: List[Dict[str, Any]] = []
        self.c.reverse_handler = self._reverse
        self.log = str(tmp_path / "runs.log")
        self.root = str(tmp_path / "root")
        launch(self.c, self.root, program=PIPELINE, function_breakpoints=breaks, filters=list(filters),
               extra={"args": [executor, self.log]}, env=dict(env or {}),
               init={"supportsStartDebuggingRequest": True})

    def _reverse(self, msg: Dict[str, Any]) -> Any:
        if msg["command"] == "startDebugging":
            self.starts.append(msg["arguments"])
            return {}
        return None

    def wait_starts(self, n: int, timeout: float = 60) -> List[Dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.starts) < n:
            assert time.monotonic() < deadline, f"{len(self.starts)} startDebugging, wanted {n}: {self.c.received[-5:]}"
            time.sleep(0.05)
        return self.starts[:n]

    def child(self, start: Dict[str, Any]) -> Any:
        """Open a child session as VS Code does for ``startDebugging``."""
        assert start["request"] == "attach"
        child = spawn_pipes(SchemaChecker())
        self.children.append(child)
        child.request("initialize", INIT_ARGS)
        seq = child.send_request("attach", start["configuration"])
        child.event("initialized", timeout=30)
        name = start["configuration"]["pylightnixPause"]["name"]  # VS Code sends every session its breakpoints
        got = child.request("setFunctionBreakpoints", {"breakpoints": [{"name": name}]})["body"]["breakpoints"]
        assert got[0]["verified"] and "message" not in got[0], got  # the paused derivation is instantiated
        child.request("setExceptionBreakpoints", {"filters": ["uncaught"]})
        child.request("configurationDone")
        resp = child.response(seq, timeout=30)
        assert resp["success"], resp
        return child

    def output(self) -> str:
        return self.c.output_text()

    def exit_code(self, timeout: float = 60) -> int:
        return int(self.c.event("exited", timeout=timeout)["body"]["exitCode"])

    def runs(self) -> List[str]:
        return [ln.split()[0] for ln in open(self.log)] if os.path.exists(self.log) else []

    def weights(self, name: str) -> List[str]:
        return glob.glob(os.path.join(self.root, "store-v0", f"*-{name}", "*", "weights.txt"))

    def close(self) -> None:
        for ch in self.children:
            try:
                ch.close()
            except Exception:
                pass
        try:
            self.c.request("disconnect", {"terminateDebuggee": True}, timeout=10, ok=False)
        except Exception:
            pass
        self.c.close()
        errors = self.c.check_errors + [e for ch in self.children for e in ch.check_errors]
        assert not errors, errors


@pytest.fixture
def parent_factory(tmp_path, debug_dir) -> Iterator:
    made: List[Parent] = []

    def make(*a: Any, **kw: Any) -> Parent:
        p = Parent(tmp_path, *a, **kw)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


def stopped_frame(child: Any) -> Dict[str, Any]:
    st = child.event("stopped", timeout=60)["body"]
    return {"stopped": st, "frame": top_frame(child, st["threadId"])}


def test_pause_on_worker_becomes_a_child_session_commit_and_continue(parent_factory, executor) -> None:
    p = parent_factory(executor, ["beta"])
    start = p.wait_starts(1)[0]
    cfg = start["configuration"]
    assert cfg["type"] == "pylightnix" and cfg["pylightnixPause"]["name"] == "beta"
    assert cfg["name"].startswith("Paused before building beta (worker ")
    child = p.child(start)
    s = stopped_frame(child)
    assert s["stopped"]["description"] == "Paused before building beta"
    assert s["frame"]["name"] == "beta"
    fid = s["frame"]["id"]
    worker_pid = int(repl(child, fid, "os.getpid()") if False else repl(child, fid, "__import__('os').getpid()"))
    assert worker_pid == cfg["pylightnixPause"]["pid"]
    repl(child, fid, "b = Model(repl_buildargs()); train(b)")
    rref = repl(child, fid, "repl_continueBuild(b)")
    assert re.fullmatch(r"'rref:[0-9a-f]{32}-[0-9a-f]{32}-beta'", rref), rref
    child.request("continue", {"threadId": s["stopped"]["threadId"]})
    child.event("terminated", timeout=30)  # the build went on: the child session ends
    assert p.exit_code() == 0
    assert "RESULT rref:" in p.output()
    files = p.weights("beta")
    assert len(files) == 1 and open(files[0]).read() == f"beta trained in {worker_pid}\n"
    assert sorted(p.runs()) == ["alpha", "top"]  # beta was built by hand, once, on its worker
    builds = [e["body"]["builds"] for e in p.c.events("pylightnixBuilds")]
    paused = [b for table in builds for b in table if b["name"] == "beta" and b["state"] == "paused"]
    assert paused and paused[0]["pauseId"] == cfg["pylightnixPause"]["id"]
    assert {b["name"]: b["state"] for b in builds[-1]}["beta"] == "done"


def test_failed_build_on_worker_fixed_in_console_trains_once(parent_factory, executor) -> None:
    p = parent_factory(executor, [], filters=("uncaught", "pylightnix-build-failure"), env={"FAIL_BETA": "1"})
    start = p.wait_starts(1)[0]
    assert start["configuration"]["name"].startswith("Build of beta failed (worker ")
    child = p.child(start)
    s = stopped_frame(child)
    assert s["stopped"]["description"] == "Build of beta failed: ValueError: beta diverged"
    fid = s["frame"]["id"]
    assert repl(child, fid, "type(exc).__name__") == "'ValueError'"
    repl(child, fid, "train(b)")
    repl(child, fid, "repl_continueBuild(b)")
    child.request("continue", {"threadId": s["stopped"]["threadId"]})
    assert p.exit_code() == 0
    assert p.runs().count("beta") == 1 and len(p.weights("beta")) == 1


def test_two_workers_paused_at_once(parent_factory) -> None:
    p = parent_factory("processes:2", ["alpha", "beta"])
    starts = p.wait_starts(2)
    kids = {s["configuration"]["pylightnixPause"]["name"]: p.child(s) for s in starts}
    assert set(kids) == {"alpha", "beta"}
    stops = {n: stopped_frame(c) for n, c in kids.items()}
    assert stops["alpha"]["stopped"]["description"] == "Paused before building alpha"
    kids["alpha"].request("continue", {"threadId": stops["alpha"]["stopped"]["threadId"]})
    kids["alpha"].event("terminated", timeout=30)
    # beta is still paused, undisturbed: its console works
    assert repl(kids["beta"], stops["beta"]["frame"]["id"], "name") == "'beta'"
    assert "beta" not in p.runs()
    kids["beta"].request("continue", {"threadId": stops["beta"]["stopped"]["threadId"]})
    assert p.exit_code() == 0
    assert sorted(p.runs()) == ["alpha", "beta", "top"]


def test_child_session_says_terminated_once(parent_factory) -> None:
    """The child session ends when its build goes on: the side channel closes (the adapter
    detaches the worker's pydevd) and debugpy says ``terminated`` too; the client hears it
    once (it was twice)."""
    p = parent_factory("processes:2", ["beta"])
    child = p.child(p.wait_starts(1)[0])
    s = stopped_frame(child)
    child.request("continue", {"threadId": s["stopped"]["threadId"]})
    child.event("terminated", timeout=30)
    assert p.exit_code() == 0
    time.sleep(1.0)  # a second one would come now
    child.request("disconnect", {}, timeout=20, ok=False)
    child.proc.wait(timeout=20)
    time.sleep(0.2)
    assert len(child.events("terminated")) == 1, child.events("terminated")


def exit_code_past_system_exit(p: Parent) -> int:
    """The program's exit code when it ends with ``sys.exit(1)`` under the "uncaught" filter.

    On Python 3.12+ debugpy (pydevd on ``sys.monitoring``) stops on a ``SystemExit`` with a
    nonzero code as an uncaught exception, for any program (3.11's tracer does not); the
    test then presses Continue, as a user would. docs/vscode.md says so."""
    m = p.c._wait(lambda m: m.get("type") == "event" and m.get("event") in ("exited", "stopped"), 60,
                  "exited, or stopped on SystemExit")
    if m["event"] == "stopped":
        assert sys.version_info >= (3, 12) and m["body"]["text"] == "SystemExit", m
        p.c.request("continue", {"threadId": m["body"]["threadId"]})
    return p.exit_code()


def test_stop_on_a_child_cancels_that_build(parent_factory, executor) -> None:
    p = parent_factory(executor, ["beta"])
    child = p.child(p.wait_starts(1)[0])
    s = stopped_frame(child)
    repl(child, s["frame"]["id"], "b = Model(repl_buildargs()); train(b)")
    child.request("disconnect", {"terminateDebuggee": True}, timeout=30)
    assert exit_code_past_system_exit(p) == 1
    assert "ERROR BuildCancelled" in p.output()
    assert p.weights("beta") == []
    assert len(p.starts) == 1 and "died" not in p.output()  # the worker itself was not terminated


def test_hub_refuses_wrong_secret_and_unknown_pause(parent_factory, debug_dir) -> None:
    import json
    p = parent_factory("processes:2", ["beta"])
    start = p.wait_starts(1)[0]
    port = start["configuration"]["connect"]["port"]
    for role in ("worker", "attach"):
        with pytest.raises(ChannelError):
            connect("127.0.0.1", port, "f" * 64, hello={"role": role, "pause": "beta", "service": "debug"})
    bad = json.loads(json.dumps(start["configuration"]))
    bad["pylightnixPause"]["id"] = "000000"
    other = spawn_pipes(SchemaChecker())
    try:
        other.request("initialize", INIT_ARGS)
        resp = other.response(other.send_request("attach", bad), timeout=30)
        assert not resp["success"] and "no build paused as '000000'" in resp["message"]
    finally:
        other.close()
    child = p.child(start)  # the real one still attaches
    s = stopped_frame(child)
    child.request("continue", {"threadId": s["stopped"]["threadId"]})
    assert p.exit_code() == 0
    assert "refused unauthenticated connection" in p.output()


def test_terminate_on_a_child_cancels_the_build_and_keeps_the_worker(parent_factory) -> None:
    """``terminate`` (what VS Code's Stop sends when the adapter supports it) on a child
    session cancels its build."""
    p = parent_factory("processes:2", ["beta"])
    child = p.child(p.wait_starts(1)[0])
    s = stopped_frame(child)
    assert s["stopped"]["threadId"]
    child.request("terminate", {}, timeout=30)
    child.event("terminated", timeout=30)
    assert exit_code_past_system_exit(p) == 1 and "ERROR BuildCancelled" in p.output()
    assert p.weights("beta") == [] and "beta" not in p.runs()
    # the worker was not killed: no restarted pool, no second pause of beta
    assert len(p.starts) == 1 and "died" not in p.output()


def test_step_into_from_a_worker_pause_enters_the_realizer_there(parent_factory, executor) -> None:
    """Issue 16 §2: Step Into at a build paused on a worker enters the stage's realizer on that
    worker (the child session stays for the build); Continue then finishes the one build there."""
    p = parent_factory(executor, ["beta"])
    start = p.wait_starts(1)[0]
    child = p.child(start)
    s = stopped_frame(child)
    mark = child.mark()
    child.request("stepIn", {"threadId": s["stopped"]["threadId"]})
    st = child.event("stopped", timeout=60, after=mark)["body"]
    frame = top_frame(child, st["threadId"])
    assert frame["name"] == "realize_leaf" and frame["source"]["path"] == PIPELINE, frame
    assert int(repl(child, frame["id"], "__import__('os').getpid()")) == start["configuration"]["pylightnixPause"]["pid"]
    child.request("continue", {"threadId": st["threadId"]})
    child.event("terminated", timeout=60)
    assert p.exit_code() == 0, p.output()
    assert p.runs().count("beta") == 1


def test_a_quiet_child_session_keeps_its_debugger(parent_factory) -> None:
    """The worker's pydevd reaches the child's debugpy through a hub stream: a user who
    reads the code for a while (no DAP traffic for 12 s) can still evaluate and continue
    (the stream's local end once timed out after 10 s of silence, ending the session)."""
    p = parent_factory("processes:2", ["beta"])
    child = p.child(p.wait_starts(1)[0])
    s = stopped_frame(child)
    time.sleep(12)
    assert repl(child, s["frame"]["id"], "1 + 1") == "2"
    child.request("continue", {"threadId": s["stopped"]["threadId"]})
    child.event("terminated", timeout=30)
    assert p.exit_code() == 0


@pytest.fixture(scope="module")
def one_worker() -> Iterator[str]:
    """A cluster of one worker process, so that two runs' pauses land in the same process."""
    from distributed import LocalCluster
    with LocalCluster(n_workers=1, processes=True, threads_per_worker=2, dashboard_address=":0",
                      silence_logs=40) as c:
        yield c.scheduler_address


def test_a_child_session_on_a_worker_that_served_a_terminal_console(parent_factory, one_worker, tmp_path) -> None:
    """A build paused on a worker is attached in the terminal (``pylightnix attach``, a cell,
    ``exit``); a later run's pause on that same worker process comes up as a child session.

    The terminal console once withdrew its unused interrupt with
    ``PyThreadState_SetAsyncExc(tid, NULL)``, which on Python 3.11 leaves the interpreter's
    async-exception flag set: the worker's next traced thread (importing pydevd) spun forever
    and the child session never got ``initialized``."""
    env = dict(os.environ, PYLIGHTNIX_ROOT=str(tmp_path / "terminal-store"), PYLIGHTNIX_BREAK="beta",
               PYTHONUNBUFFERED="1")
    d = subprocess.Popen([sys.executable, PIPELINE, "dask:" + one_worker, str(tmp_path / "terminal.log")], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        out, m = "", None
        while m is None:
            line = d.stdout.readline()
            assert line, f"no pause announced:\n{out}"
            out += line
            m = re.search(r"is paused on worker .*attach with: pylightnix attach ([0-9a-f]{6})", line)
        a = subprocess.run([sys.executable, "-m", "pylightnix", "attach", m.group(1)], input="import os; os.getpid()\nexit\n",
                           env=env, capture_output=True, text=True, timeout=60)
        assert a.returncode == 0 and "detached from beta" in a.stdout, a
        worker_pid = int(re.search(r"Out\[1\]: (\d+)", a.stdout).group(1))
        rest, _ = d.communicate(timeout=60)
        assert d.returncode == 0, out + rest
    finally:
        d.kill()
    p = parent_factory("dask:" + one_worker, ["beta"])
    child = p.child(p.wait_starts(1)[0])  # waits for the child's initialized and its attach response
    s = stopped_frame(child)
    assert repl(child, s["frame"]["id"], "__import__('os').getpid()") == str(worker_pid)  # the same process
    child.request("continue", {"threadId": s["stopped"]["threadId"]})
    assert p.exit_code() == 0
