"""Builds across two hosts (issue 16 §4): a Dask scheduler here, a ``--resources GPU=1``
worker on a second host (its own network and mount namespaces, so its own loopback and
its own store) and a CPU worker here. The driver is a real subprocess
(``mh_pipeline.py``, executor from ``PYLIGHTNIX_EXECUTOR``).

Builds paused on the other host are served there, through Dask's own connections
(:mod:`pylightnix.scale.tunnel`).
"""
from __future__ import annotations

import glob
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from multihost_support import REPO, TwoHosts, is_loopback, listeners, ns_inode, remove_stale, unavailable

sys.path.insert(0, str(REPO / "tests" / "security"))
sys.path.insert(0, str(REPO / "tests" / "terminal"))
sys.path.insert(0, str(REPO / "tests" / "dap"))
from adapter_probes import process_tree  # noqa: E402
from terminal_support import PROMPT  # noqa: E402

sys.path.insert(0, str(REPO / "tests" / "scale"))
from scale_support import OutputReader  # noqa: E402

WHY = unavailable()
pytestmark = [pytest.mark.skipif(WHY is not None, reason=WHY or ""), pytest.mark.timeout(180)]

PIPELINE = str(Path(__file__).resolve().parent / "mh_pipeline.py")
#: the driver's line for a build paused on a worker (docs/scale-out.md, "Pauses on workers")
ATTACH_LINE = re.compile(r"pylightnix: (\w+) (?:failed and )?is paused on worker (.+?); attach with: "
                         r"pylightnix attach ([0-9a-f]{6})")
DRIVER_PAUSE = re.compile(r"paused before building (\w+)")


def salt() -> str:
    return secrets.token_hex(4)


class Driver(OutputReader):
    """mh_pipeline.py as a subprocess without a terminal; its output read as it comes."""

    def __init__(self, args: List[str], env: Dict[str, str]) -> None:
        super().__init__([sys.executable, *args], env)

    def wait_for(self, pattern: "re.Pattern[str]", timeout: float = 60) -> "re.Match[str]":  # type: ignore[override]
        """The first line matching ``pattern``."""
        return super().wait_for(pattern, 1, timeout)[0]

    def result(self) -> dict:
        return result_of("\n".join(self.lines))


@pytest.fixture
def drivers() -> Iterator:
    made: List[Driver] = []

    def make(args: List[str], env: Dict[str, str]) -> Driver:
        d = Driver(args, env)
        made.append(d)
        return d
    yield make
    for d in made:
        d.kill()


def run_pipeline(hosts: TwoHosts, store: str, s: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, PIPELINE, s], env=hosts.driver_env(store, **extra),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def result_of(out: str) -> dict:
    m = re.search(r"^RESULT (.*)$", out, re.M)
    assert m, f"the driver printed no RESULT:\n{out}"
    return json.loads(m.group(1))


def attach(hosts: TwoHosts, store: str, cells: str, pause_id: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pylightnix", "attach", pause_id], input=cells,
                          env=hosts.driver_env(store), capture_output=True, text=True, timeout=60)


def worker_realizations(hosts: TwoHosts, s: str, name: str) -> List[str]:
    """Realizations of this test's ``name`` in the GPU worker's own store (seen on the worker host)."""
    out = hosts.worker_python("import glob, sys; print('\\n'.join(glob.glob(sys.argv[1])))",
                              f"{hosts.worker_store}/store-v0/*-{name}/*/weights.txt")
    paths = [p for p in out.splitlines() if p]
    # the salt is in the config, so only this test's derivation has it
    return [p for p in paths if s in hosts.worker_python("import sys; print(open(sys.argv[1]).read())",
                                                         os.path.join(os.path.dirname(os.path.dirname(p)),
                                                                      "config.json"))]


# ------------------------------------------------------------------ the harness itself

def test_harness_is_isolated(two_hosts: TwoHosts) -> None:
    """The worker host cannot reach our loopback or see our store, and we reach it only at its
    veth address (checked again, as the fixture did before yielding; with positive controls)."""
    two_hosts.check_isolation()
    assert two_hosts.setup_seconds < 60, two_hosts.setup_seconds  # the target is 15 s on an idle machine


def test_harness_undoes_a_setup_failing_halfway(two_hosts: TwoHosts, tmp_path: Path) -> None:
    """A set-up that fails after the namespace, the link and the scheduler exist leaves none
    of them behind. (A second harness next to the session's, which must stay untouched.)"""

    class Failing(TwoHosts):
        def _spawn(self, name, args, env):  # type: ignore[no-untyped-def]
            if name == "worker":
                raise RuntimeError("the worker cannot start (on purpose)")
            return super()._spawn(name, args, env)

    hosts = Failing(tmp_path / "base", tag=f"{os.getpid()}f")
    try:
        with pytest.raises(RuntimeError, match="on purpose"):
            hosts.start()
        scheduler = hosts.scheduler_pid
        assert scheduler and hosts.ns in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                        text=True).stdout
    finally:
        hosts.close()
    assert hosts.ns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert subprocess.run(["ip", "link", "show", hosts.host_if], capture_output=True).returncode != 0
    assert not os.path.exists(f"/proc/{scheduler}")
    two_hosts.check_isolation()  # the session's harness is unaffected


def test_harness_removes_what_a_killed_run_left(two_hosts: TwoHosts) -> None:
    """A namespace (with a process in it) and a link named for a test process that is gone,
    as a SIGKILLed pytest leaves them, are removed by the next set-up; a live run's stay."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    ns, link = f"plxmh{gone.pid}", f"pmh{gone.pid}h"
    netns = lambda: subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()  # noqa: E731
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "link", "add", link, "type", "veth", "peer", "name", f"pmh{gone.pid}w"], check=True)
    left = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "60"])
    try:
        time.sleep(0.2)
        remove_stale()
        assert left.wait(10) == -9
        assert ns not in netns() and subprocess.run(["ip", "link", "show", link], capture_output=True).returncode
        assert two_hosts.ns in netns()
    finally:
        left.kill()
        subprocess.run(["ip", "link", "del", link], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# ------------------------------------------------------------------ plain distributed realize

def test_distributed_realize_across_two_hosts(two_hosts: TwoHosts) -> None:
    """Copy mode moves the realizations back, the RRefs equal a sequential run's in a fresh
    store, and both GPU stages train on the second host (the CPU worker here stays idle for
    them), once each."""
    s = salt()
    store = two_hosts.driver_store(f"plain-{s}")
    run = run_pipeline(two_hosts, store, s)
    assert run.returncode == 0, run.stdout + run.stderr
    driver_pid = int(re.search(r"^DRIVER (\d+)", run.stdout, re.M).group(1))
    got = result_of(run.stdout)
    worker = {"pid": two_hosts.worker_pid, "netns": ns_inode(two_hosts.worker_pid, "net"),
              "mntns": ns_inode(two_hosts.worker_pid, "mnt"), "store": two_hosts.worker_store}
    for name in ("train", "finetune"):
        (where,) = got[name]["where"]
        assert {k: where[k] for k in worker} == worker, (name, where)
        assert len(worker_realizations(two_hosts, s, name)) == 1  # built in the worker's own store, then copied
        assert two_hosts.worker_log().count(f"MH-FIT {s} {name} ") == 1  # trained once
    for name in ("dataset", "evaluate"):
        (where,) = got[name]["where"]
        assert where["pid"] in (two_hosts.worker_pid, two_hosts.cpu_worker_pid) and where["pid"] != driver_pid
    for name, r in got.items():  # every realization is in the driver's store, with its files
        (rref,) = r["rrefs"]
        folder = glob.glob(os.path.join(store, "store-v0", f"*-{name}", rref.split(":")[1].split("-")[0]))
        assert len(folder) == 1 and os.listdir(folder[0]), (name, rref)
    assert f"on {two_hosts.worker_address} (copy)" in run.stderr  # where the progress says it built

    sequential = run_pipeline(two_hosts, two_hosts.driver_store(f"sequential-{s}"), s,
                              PYLIGHTNIX_EXECUTOR="sequential")
    assert sequential.returncode == 0, sequential.stdout + sequential.stderr
    seq = result_of(sequential.stdout)
    assert {n: r["rrefs"] for n, r in got.items()} == {n: r["rrefs"] for n, r in seq.items()}
    seq_pid = int(re.search(r"^DRIVER (\d+)", sequential.stdout, re.M).group(1))
    assert all(r["where"][0]["pid"] == seq_pid for r in seq.values())  # the comparison is with a real local run


# ------------------------------------------------------------------ no listener reachable from the other host

def check_listeners(hosts: TwoHosts, frontends: Dict[str, List[int]]) -> None:
    """Every listening socket of ``frontends`` (name: pids), the scheduler and both workers,
    found through /proc: those on other than a loopback address are Dask's own ports, and
    every other one is refused (or unanswered) from the other host."""
    ours = {**frontends, "scheduler": [hosts.scheduler_pid], "gpu worker": [hosts.worker_pid],
            "cpu worker": [hosts.cpu_worker_pid]}
    found = {who: listeners(pids) for who, pids in ours.items()}
    for who in ("scheduler", "gpu worker", "cpu worker"):
        assert found[who], f"no listener found for the {who}: the /proc lookup is broken"
    for who, socks in found.items():
        for ip, port, pid in socks:
            if (ip, port) in hosts.dask_ports:
                continue
            assert is_loopback(ip), f"the {who} (pid {pid}) listens on {ip}:{port}, which is not one of Dask's ports"
            if who == "gpu worker":
                got = hosts.probe_from_host(hosts.worker_ip, port)
            else:
                got = hosts.probe_from_worker(hosts.host_ip, port)
            assert got.startswith(("REFUSED", "ERROR")), \
                f"the {who}'s {ip}:{port} (pid {pid}) is reachable from the other host: {got}"


def test_no_non_dask_listener_reachable_from_the_worker_host(two_hosts: TwoHosts, tmp_path: Path) -> None:
    """While a realize is held at a build breakpoint on the GPU stage, every listening socket
    of the driver, the scheduler and both workers is found through /proc: those on other
    than a loopback address are Dask's own ports, and each non-Dask one is refused from the
    other side."""
    import pexpect
    s = salt()
    store = two_hosts.driver_store(f"listen-{s}")
    env = two_hosts.driver_env(store, PROMPT_TOOLKIT_NO_CPR="1", TERM="xterm-256color",
                               IPYTHONDIR=str(tmp_path / "ipython"))
    child = pexpect.spawn(sys.executable, ["-m", "pylightnix", "debug", "--break", "train", PIPELINE, s], env=env,
                          encoding="utf-8", codec_errors="replace", timeout=60, dimensions=(50, 200))
    try:
        which = child.expect([r"paused before building train", ATTACH_LINE])
        attach_id = child.match.group(3) if which == 1 else None
        check_listeners(two_hosts, {"driver": process_tree(child.pid)})  # the realize is held: look now
        # release the pause: leave the shell in the driver, or continue the build on its worker
        if attach_id is None:
            child.expect(PROMPT)
            child.sendcontrol("d")
        else:
            child.sendline("n")  # not in place ("attach here? [Y/n]"): from another terminal
            attach(two_hosts, store, "", attach_id)
        child.expect(pexpect.EOF, timeout=90)
        child.close()
        assert child.exitstatus == 0 and "RESULT" in child.before, child.before
    finally:
        if child.isalive():
            child.kill(9)


# ------------------------------------------------------------------ build breakpoints on the other host

def test_breakpoint_on_a_stage_of_the_other_host_is_not_skipped(two_hosts: TwoHosts, drivers) -> None:
    """``PYLIGHTNIX_BREAK=train`` without a terminal: the breakpoint is reached on train's worker
    on the other host, where the build stays paused until attached (no pull-back into the
    driver); Ctrl-D there runs the realizer on that worker, exactly once."""
    s = salt()
    store = two_hosts.driver_store(f"break-{s}")
    d = drivers([PIPELINE, s], two_hosts.driver_env(store, PYLIGHTNIX_BREAK="train"))
    pause_id = _paused_on_the_worker(two_hosts, d)
    time.sleep(1.0)
    assert f"MH-FIT {s} train " not in two_hosts.worker_log()  # it waits for someone to attach
    attach(two_hosts, store, "", pause_id)  # Ctrl-D at once: the realizer runs on the worker
    text = d.finish()
    assert d.proc.returncode == 0, text
    assert not DRIVER_PAUSE.search(text), text
    fits = re.findall(rf"^MH-FIT {s} train (\d+) ", text + "\n" + two_hosts.worker_log(), re.M)
    assert fits == [str(two_hosts.worker_pid)], fits
    assert len(d.result()["train"]["rrefs"]) == 1


def test_fallback_to_the_driver_is_announced(two_hosts: TwoHosts, drivers) -> None:
    """A pause that is not served on the GPU stage's worker (here: pauses on workers switched
    off, ``PYLIGHTNIX_REMOTE_PAUSES=0``) is built in the driver only with a word that says so
    and why (issue 16: "a breakpoint is never skipped silently")."""
    s = salt()
    store = two_hosts.driver_store(f"announce-{s}")
    d = drivers([PIPELINE, s], two_hosts.driver_env(store, PYLIGHTNIX_BREAK="train", PYLIGHTNIX_NO_TTY="continue",
                                                    PYLIGHTNIX_REMOTE_PAUSES="0"))
    text = d.finish()
    assert not ATTACH_LINE.search(text), text
    said = [line for line in text.splitlines()  # the frontends' lines, not the program's own output
            if line.startswith(("pylightnix", "[pylightnix]")) and "train" in line and re.search(r"\bdriver\b", line) and re.search(r"\bworker\b|\bhost\b", line)]
    assert said, f"no line says that train's pause is served in the driver and why:\n{text}"


def test_break_on_failure_keeps_builds_that_do_not_fail_on_their_worker(two_hosts: TwoHosts) -> None:
    """``PYLIGHTNIX_BREAK_ON_FAILURE`` while pauses cannot be served on the other host: the GPU
    stages still train on their worker (they used to be pulled into the driver, all of them,
    in case they failed), once each, and nothing is announced, since nothing failed."""
    s = salt()
    run = run_pipeline(two_hosts, two_hosts.driver_store(f"bof-{s}"), s, PYLIGHTNIX_BREAK_ON_FAILURE="1",
                       PYLIGHTNIX_NO_TTY="continue")
    assert run.returncode == 0, run.stdout + run.stderr
    got = result_of(run.stdout)
    for name in ("train", "finetune"):
        (where,) = got[name]["where"]
        assert where["netns"] == ns_inode(two_hosts.worker_pid, "net"), (name, where)
        assert two_hosts.worker_log().count(f"MH-FIT {s} {name} ") == 1
    assert "builds again in the driver" not in run.stderr


def test_break_on_failure_pauses_a_failed_stage_on_its_worker_on_the_other_host(two_hosts: TwoHosts) -> None:
    """train fails on its worker with ``PYLIGHTNIX_BREAK_ON_FAILURE`` on: its failure pauses
    there, on the other host (no terminal: the driver says so, and continues it, so the
    failure is raised as it would be), and it is never built again in the driver."""
    s = salt()
    run = run_pipeline(two_hosts, two_hosts.driver_store(f"bof-fail-{s}"), s, PYLIGHTNIX_BREAK_ON_FAILURE="1",
                       PYLIGHTNIX_NO_TTY="continue", MH_FAIL="train")
    text = run.stdout + run.stderr
    m = ATTACH_LINE.search(run.stderr)
    assert m and m.group(1) == "train" and "failed and is paused" in m.group(0), text
    assert m.group(2).startswith(two_hosts.worker_address), m.group(0)
    assert "builds again in the driver" not in text
    assert re.search(r"^ERROR ValueError: train diverged", run.stdout, re.M), text
    fits = re.findall(rf"^MH-FIT {s} train (\d+) ", text + "\n" + two_hosts.worker_log(), re.M)
    assert fits == [str(two_hosts.worker_pid)], fits  # on its worker only


def _paused_on_the_worker(two_hosts: TwoHosts, d: Driver) -> str:
    """Wait for the driver's line for train paused on the GPU worker; return the pause's id."""
    m = d.wait_for(ATTACH_LINE)
    assert m.group(1) == "train" and m.group(2).startswith(two_hosts.worker_address), m.group(0)
    return m.group(3)


def test_pause_stays_on_its_worker_commit_by_hand(two_hosts: TwoHosts, drivers) -> None:
    """Issue 16 "done when", in the terminal: the GPU stage pauses on its worker on the other
    host, ``pylightnix attach`` reaches it there, the user trains and commits by hand, the
    run finishes, and the store holds exactly one realization, trained once, on that worker."""
    s = salt()
    store = two_hosts.driver_store(f"commit-{s}")
    d = drivers([PIPELINE, s], two_hosts.driver_env(store, PYLIGHTNIX_BREAK="train"))
    pause_id = _paused_on_the_worker(two_hosts, d)
    out = attach(two_hosts, store, "import os; print('NETNS', os.stat('/proc/self/ns/net').st_ino)\n"
                                   "b = Model(repl_buildargs()); fit(b)\n"
                                   "repl_continueBuild(b)\n", pause_id)
    assert out.returncode == 0, out.stderr
    assert f"NETNS {ns_inode(two_hosts.worker_pid, 'net')}" in out.stdout  # the cells ran on the other host
    text = d.finish()
    assert d.proc.returncode == 0, text
    (where,) = d.result()["train"]["where"]
    assert where["pid"] == two_hosts.worker_pid and where["store"] == two_hosts.worker_store
    # the console's lines start with its prompt ("In [2]: MH-FIT ...")
    fits = re.findall(rf"MH-FIT {s} train (\d+) ", text + "\n" + out.stdout + "\n" + two_hosts.worker_log())
    assert fits and {int(pid) for pid in fits} == {two_hosts.worker_pid}, out.stdout  # never in the driver
    assert len(worker_realizations(two_hosts, s, "train")) == 1


def test_failed_build_on_its_worker_fixed_in_console_trains_once(two_hosts: TwoHosts, drivers) -> None:
    """``--break-on-failure``: train fails on the GPU worker after training, pauses there, the
    console commits the model trained a moment ago; it trained once, on that worker."""
    s = salt()
    store = two_hosts.driver_store(f"failure-{s}")
    d = drivers([PIPELINE, s], two_hosts.driver_env(store, PYLIGHTNIX_BREAK_ON_FAILURE="1", MH_FAIL="train"))
    pause_id = _paused_on_the_worker(two_hosts, d)
    out = attach(two_hosts, store, "print(type(exc).__name__, exc)\nrepl_continueBuild(b)\n", pause_id)
    assert "ValueError train diverged" in out.stdout, out.stdout + out.stderr
    text = d.finish()
    assert d.proc.returncode == 0, text
    (where,) = d.result()["train"]["where"]
    assert where["pid"] == two_hosts.worker_pid
    fits = [line for line in (text + "\n" + two_hosts.worker_log()).splitlines()
            if line.startswith(f"MH-FIT {s} train ")]
    assert len(fits) == 1, fits  # the failed run's training, committed: no second training


def test_cancel_from_console_on_the_other_host(two_hosts: TwoHosts, drivers) -> None:
    """``repl_cancel()`` at train's pause on its worker: the driver's realize raises
    BuildCancelled, and neither store holds a realization of train."""
    s = salt()
    store = two_hosts.driver_store(f"cancel-{s}")
    d = drivers([PIPELINE, s], two_hosts.driver_env(store, PYLIGHTNIX_BREAK="train"))
    pause_id = _paused_on_the_worker(two_hosts, d)
    out = attach(two_hosts, store, "repl_cancel()\n", pause_id)
    assert out.returncode == 0, out.stderr
    text = d.finish()
    assert d.proc.returncode == 1 and "ERROR BuildCancelled" in text, text
    assert not glob.glob(os.path.join(store, "store-v0", "*-train", "*", "weights.txt"))
    assert worker_realizations(two_hosts, s, "train") == []


def test_breakpoint_on_a_worker_wrongly_believed_local_is_not_skipped_silently(tunneled_host: TwoHosts,
                                                                               drivers) -> None:
    """The GPU worker's Dask address is on our 127.0.0.1 (a tunnel), so the driver takes it for
    a local worker, but it runs on the other host and cannot reach the driver's loopback. The
    breakpoint on train must still be served there, or the driver must say that it is not,
    and why (issue 16: "a breakpoint is never skipped silently")."""
    hosts = tunneled_host
    s = salt()
    store = hosts.driver_store(f"tunnel-{s}")
    d = drivers([PIPELINE, s], hosts.driver_env(store, PYLIGHTNIX_BREAK="train"))
    try:
        m = d.wait_for(ATTACH_LINE, timeout=60)
    except AssertionError:  # the run ended without the pause on the worker: it must have said why
        text = d.finish()
        said = [line for line in text.splitlines()
                if line.startswith(("pylightnix", "[pylightnix]")) and "train" in line
                and re.search(r"cannot|can't|could not|unreachable|not reach", line)]
        assert said, f"train's breakpoint was skipped without a word in the driver:\n{text}\n" \
                     f"worker log:\n{hosts.worker_log()[-1500:]}"
        return
    out = attach(hosts, store, "import os; print('NETNS', os.stat('/proc/self/ns/net').st_ino)\n", m.group(3))
    assert f"NETNS {ns_inode(hosts.worker_pid, 'net')}" in out.stdout, out.stdout + out.stderr
    assert d.finish() and d.proc.returncode == 0


# ------------------------------------------------------------------ VS Code (DAP) across two hosts

#: the line of ``fit`` in mh_pipeline.py where a line breakpoint goes (writing the weights)
FIT_LINE = next(i for i, line in enumerate(Path(PIPELINE).read_text().splitlines(), 1)
                if "weights {total * c.scale}" in line)


class Session:
    """A DAP parent session (the adapter as VS Code runs it) launching mh_pipeline.py as the
    driver, with a function breakpoint on train; records ``startDebugging`` requests."""

    def __init__(self, hosts: TwoHosts, store: str, s: str, line_breakpoints: Dict[str, List[int]]) -> None:
        from dap_testlib import SchemaChecker, launch, spawn_pipes
        self.starts: List[dict] = []
        self.children: list = []
        self.line_breakpoints = line_breakpoints
        self.c = spawn_pipes(SchemaChecker())
        self.c.reverse_handler = self._reverse
        env = hosts.driver_env(store)
        launch(self.c, store, program=PIPELINE, function_breakpoints=["train"], extra={"args": [s]},
               env={k: env[k] for k in ("PYLIGHTNIX_EXECUTOR", "PYLIGHTNIX_DEBUG_DIR")},
               line_breakpoints=line_breakpoints, init={"supportsStartDebuggingRequest": True})

    def _reverse(self, msg: dict) -> object:
        if msg["command"] == "startDebugging":
            self.starts.append(msg["arguments"])
            return {}
        return None

    def first_stop(self, timeout: float = 60) -> str:
        """"child" once a child session is asked for, "main" if the main session stops instead."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.starts:
                return "child"
            if self.c.events("stopped"):
                return "main"
            time.sleep(0.05)
        raise AssertionError(f"neither a child session nor a stop: {self.c.received[-5:]}")

    def child(self) -> object:
        """Open the child session as VS Code does for ``startDebugging`` (which sends every
        session the breakpoints the user set, between ``initialized`` and ``configurationDone``)."""
        from dap_testlib import INIT_ARGS, SchemaChecker, spawn_pipes
        child = spawn_pipes(SchemaChecker())
        self.children.append(child)
        child.request("initialize", INIT_ARGS)
        seq = child.send_request("attach", self.starts[0]["configuration"])
        child.event("initialized", timeout=30)
        for path, lines in self.line_breakpoints.items():
            child.request("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": n} for n in lines]})
        child.request("configurationDone")
        assert child.response(seq, timeout=30)["success"]
        return child

    def close(self) -> None:
        for ch in self.children:
            ch.close()
        try:
            self.c.request("disconnect", {"terminateDebuggee": True}, timeout=10, ok=False)
        finally:
            self.c.close()



@pytest.fixture
def sessions(dap_hosts: TwoHosts, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    made: List[Session] = []
    # the adapters find the program's attach files in the driver's private debug folder
    monkeypatch.setenv("PYLIGHTNIX_DEBUG_DIR", dap_hosts.driver_env("")["PYLIGHTNIX_DEBUG_DIR"])

    def make(*a: object, **kw: object) -> Session:
        sess = Session(dap_hosts, *a, **kw)  # type: ignore[arg-type]
        made.append(sess)
        return sess
    yield make
    for sess in made:
        sess.close()


def test_vscode_breakpoint_on_a_stage_of_the_other_host_stops_somewhere(dap_hosts: TwoHosts, sessions) -> None:
    """Under the adapter, the function breakpoint on train is reached (today: the main session
    stops in the driver, as issue 16 describes; with issue 16: a child session on the worker),
    the session's listeners (side channel, debugpy's) are out of the other host's reach, and
    Continue finishes the run."""
    two_hosts = dap_hosts
    from dap_testlib import top_frame
    s = salt()
    sess = sessions(two_hosts.driver_store(f"dap-{s}"), s, {})
    where = sess.first_stop()
    adapters = process_tree(sess.c.proc.pid)  # the adapter, debugpy's adapter, the program and its children
    assert len(adapters) > 2, adapters
    check_listeners(two_hosts, {"VS Code session": adapters})
    if where == "main":
        st = sess.c.event("stopped", timeout=10)["body"]
        assert top_frame(sess.c, st["threadId"])["name"] == "train"
        sess.c.request("continue", {"threadId": st["threadId"]})
    else:
        child = sess.child()
        st = child.event("stopped", timeout=60)["body"]
        child.request("continue", {"threadId": st["threadId"]})
    assert int(sess.c.event("exited", timeout=90)["body"]["exitCode"]) == 0


def test_vscode_child_session_on_the_other_host_console_and_commit(dap_hosts: TwoHosts, sessions) -> None:
    """Issue 16 §1, in VS Code: train pauses on its worker on the other host as a child session
    (its pydevd and its agent reach the child's adapter through Dask); its Debug Console runs
    there, commits a model trained by hand, and Continue finishes the run with the one
    realization, trained once on that worker."""
    two_hosts = dap_hosts
    from dap_testlib import repl, top_frame
    s = salt()
    store = two_hosts.driver_store(f"dapcommit-{s}")
    sess = sessions(store, s, {})
    assert sess.first_stop() == "child", "the main session stopped in the driver: train left its worker"
    assert sess.starts[0]["configuration"]["pylightnixPause"]["pid"] == two_hosts.worker_pid
    child = sess.child()
    st = child.event("stopped", timeout=60)["body"]
    frame = top_frame(child, st["threadId"])
    assert frame["name"] == "train", frame
    assert repl(child, frame["id"], "__import__('os').stat('/proc/self/ns/net').st_ino") == \
        str(ns_inode(two_hosts.worker_pid, "net"))  # the paused build is on the other host
    repl(child, frame["id"], "b = Model(repl_buildargs()); fit(b)")
    repl(child, frame["id"], "repl_continueBuild(b)")
    child.request("continue", {"threadId": st["threadId"]})
    assert int(sess.c.event("exited", timeout=90)["body"]["exitCode"]) == 0
    (where,) = result_of(sess.c.output_text())["train"]["where"]  # what fit() recorded, in the driver's store
    assert where["pid"] == two_hosts.worker_pid and where["store"] == two_hosts.worker_store, where
    assert f"MH-FIT {s} train " not in two_hosts.worker_log()  # the realizer never ran: trained once, by hand
    assert len(worker_realizations(two_hosts, s, "train")) == 1


def test_vscode_child_session_on_the_other_host_step_into_and_line_breakpoint(dap_hosts: TwoHosts,
                                                                              sessions) -> None:
    """Issue 16 "done when", in VS Code: train pauses on its worker on the other host as a child
    session; Step Into enters the stage's ``fit`` there, a line breakpoint inside it stops, and
    Continue commits the one realization, trained on that worker."""
    two_hosts = dap_hosts
    from dap_testlib import repl, top_frame
    s = salt()
    store = two_hosts.driver_store(f"dapchild-{s}")
    sess = sessions(store, s, {PIPELINE: [FIT_LINE]})
    assert sess.first_stop() == "child", "the main session stopped in the driver: train left its worker"
    child = sess.child()
    st = child.event("stopped", timeout=60)["body"]
    fid = top_frame(child, st["threadId"])["id"]
    assert repl(child, fid, "__import__('os').stat('/proc/self/ns/net').st_ino") == \
        str(ns_inode(two_hosts.worker_pid, "net"))  # the paused build is on the other host
    mark = child.mark()
    child.request("stepIn", {"threadId": st["threadId"]})
    st = child.event("stopped", timeout=60, after=mark)["body"]
    frame = top_frame(child, st["threadId"])
    assert frame["name"] == "fit" and frame["source"]["path"] == PIPELINE, frame
    mark = child.mark()
    child.request("continue", {"threadId": st["threadId"]})
    st = child.event("stopped", timeout=60, after=mark)["body"]
    frame = top_frame(child, st["threadId"])
    assert (frame["name"], frame["line"]) == ("fit", FIT_LINE), frame
    child.request("continue", {"threadId": st["threadId"]})
    assert int(sess.c.event("exited", timeout=90)["body"]["exitCode"]) == 0
    fits = [line for line in two_hosts.worker_log().splitlines() if line.startswith(f"MH-FIT {s} train ")]
    assert len(fits) == 1 and int(fits[0].split()[3]) == two_hosts.worker_pid, fits
    assert len(worker_realizations(two_hosts, s, "train")) == 1


def test_vscode_child_session_after_a_terminal_attach_on_the_same_worker(two_hosts: TwoHosts, sessions,
                                                                           dap_hosts: TwoHosts) -> None:
    """On the GPU worker of the DAP harness: a pause attached from the terminal, then a
    pause served to a VS Code child session stops there."""
    s = salt()
    store = dap_hosts.driver_store(f"console-then-dap-{s}")
    d = Driver([PIPELINE, s], dap_hosts.driver_env(store, PYLIGHTNIX_BREAK="train"))
    try:
        pause_id = _paused_on_the_worker(dap_hosts, d)
        out = attach(dap_hosts, store, "1 + 1\n", pause_id)
        assert out.returncode == 0, out.stderr
        assert d.finish() and d.proc.returncode == 0
    finally:
        d.kill()
    sess = sessions(dap_hosts.driver_store(f"dap-after-console-{s}"), s + "x", {})
    assert sess.first_stop() == "child"
    child = sess.child()
    child.event("stopped", timeout=30)
