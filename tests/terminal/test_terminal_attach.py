"""``pylightnix attach`` and the in-place attach, on real pseudo-terminals (pexpect),
against a build paused in a real worker process (Processes(2))."""
from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest

from terminal_support import PYTHON, REPO, Env, Session

PIPELINE = REPO / "tests" / "scale" / "remote_pipeline.py"
ATTACH = re.compile(r"beta is paused on worker .+?; attach with: pylightnix attach ([0-9a-f]{6})")


def _weights(env: Env) -> list:
    return sorted((env.root / "store-v0").glob("*-beta/*/weights.txt"))


def _paused_driver(env: Env, tmp_path: Path, executor: str) -> Tuple[subprocess.Popen, List[str], str]:
    """remote_pipeline.py without a terminal, until beta is paused on a worker: the driver,
    its output so far, and the pause's id."""
    env.vars["PYLIGHTNIX_DEBUG_DIR"] = str(tmp_path / "debug")
    driver = subprocess.Popen([PYTHON, str(PIPELINE), executor, str(tmp_path / "runs.log")],
                              env={**env.vars, "PYLIGHTNIX_BREAK": "beta"}, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: List[str] = []
    for line in driver.stdout:  # type: ignore[union-attr]
        lines.append(line)
        m = ATTACH.search(line)
        if m:
            return driver, lines, m.group(1)
    raise AssertionError("".join(lines))


@contextlib.contextmanager
def _attached(env: Env, tmp_path: Path, executor: str) -> Iterator[Tuple[Session, subprocess.Popen, List[str]]]:
    """The paused driver and ``pylightnix attach`` on a pty; the driver is killed at the end."""
    driver, lines, pause_id = _paused_driver(env, tmp_path, executor)
    try:
        yield env.spawn(["-m", "pylightnix", "attach", pause_id]), driver, lines
    finally:
        if driver.poll() is None:
            driver.kill()


def _rest(driver: subprocess.Popen, lines: List[str]) -> str:
    """All the driver printed, once it ended."""
    rest, _ = driver.communicate(timeout=60)
    return "".join(lines) + rest


def test_attach_from_another_terminal_commits_on_the_worker(env: Env, tmp_path: Path) -> None:
    with _attached(env, tmp_path, "processes:2") as (s, driver, lines):
        s.expect(r"attached to beta on worker")
        s.expect(r"paused before building beta")
        s.prompt()
        worker_pid = int(s.run("import os; print('PID', os.getpid())", r"PID (\d+)\r?\n").group(1))
        # Ctrl-C interrupts a running cell on the worker; the console stays
        s.child.sendline("while True: pass")
        time.sleep(1.0)
        s.child.sendintr()
        s.expect("KeyboardInterrupt")
        s.prompt()
        # completion comes from the worker's shell
        s.child.send("repl_continueB")
        s.expect("repl_continueB")
        s.child.send("\t")
        s.expect("uild")  # the rest of the name, completed
        s.child.sendcontrol("u")  # clear the line; the prompt stays
        s.run("b = Model(repl_buildargs()); train(b)")
        s.run("repl_continueBuild(b)", r"rref:[0-9a-f]{32}-[0-9a-f]{32}-beta")
        s.eof()
        s.expect("detached from beta")
        assert s.finish() == 0
        out = _rest(driver, lines)
    assert driver.returncode == 0 and "RESULT rref:" in out, out
    files = _weights(env)
    assert len(files) == 1 and files[0].read_text() == f"beta trained in {worker_pid}\n"


def _driver_on_terminal(env: Env, tmp_path: Path, slow_alpha: float = 0) -> Session:
    """remote_pipeline.py with Processes(2) on a pty, beta paused on a worker (alpha
    builds on the other one for ``slow_alpha`` seconds)."""
    env.vars["PYLIGHTNIX_DEBUG_DIR"] = str(tmp_path / "debug")
    return env.spawn([str(PIPELINE), "processes:2", str(tmp_path / "runs.log")],
                     {"PYLIGHTNIX_BREAK": "beta", "SLOW_ALPHA": str(slow_alpha)})


def test_driver_terminal_offers_to_attach_in_place(env: Env, tmp_path: Path) -> None:
    s = _driver_on_terminal(env, tmp_path)
    s.expect(ATTACH)
    s.expect(r"attach here\? \[Y/n\]")
    s.child.sendline("y")
    s.expect("attached to beta on worker")
    s.prompt()
    s.run("b = Model(repl_buildargs()); train(b); repl_continueBuild(b)", r"rref:[0-9a-f]{32}-[0-9a-f]{32}-beta")
    s.eof()
    s.expect("detached from beta")
    s.expect(r"beta \(\w+\): committed by hand")
    s.expect(r"RESULT rref:")
    assert s.finish() == 0
    assert len(_weights(env)) == 1
    runs = (tmp_path / "runs.log").read_text().split()
    assert "beta" not in runs[::2]  # built by hand in the console, never by its realizer


def _runs(tmp_path: Path) -> List[str]:
    log = tmp_path / "runs.log"
    return log.read_text().split()[::2] if log.exists() else []


@pytest.mark.parametrize("word", ["exit", "quit", "exit()", "exit  # the build goes on"])
def test_exit_words_leave_the_worker_console(env: Env, tmp_path: Path, word: str) -> None:
    """The banner says ``exit`` continues the build: so do ``quit``, ``exit()`` and an
    ``exit`` with a comment (they raised AttributeError: no ask_exit)."""
    with _attached(env, tmp_path, "processes:2") as (s, driver, lines):
        s.expect(r"attached to beta on worker \S+, pid \d+; Ctrl-D continues")  # the pid once
        s.prompt()
        s.child.sendline(word)
        s.expect("detached from beta; the build goes on")
        assert s.finish() == 0
        out = _rest(driver, lines)
    assert "AttributeError" not in s.output() and "SyntaxError" not in s.output(), s.output()
    assert driver.returncode == 0 and "RESULT rref:" in out, out
    assert "beta" in _runs(tmp_path)  # continued: beta's realizer ran


def test_exit_leaves_the_in_place_console(env: Env, tmp_path: Path) -> None:
    s = _driver_on_terminal(env, tmp_path)
    s.expect(r"attach here\? \[Y/n\]")
    s.child.sendline("y")
    s.expect(r"b = Build\(repl_buildargs\(\)\) +build by hand")  # the stage's own Build class
    s.prompt()
    s.child.sendline("exit")
    s.expect("detached from beta; the build goes on")
    s.expect(r"RESULT rref:")
    assert s.finish() == 0
    assert "AttributeError" not in s.output()
    assert "beta" in _runs(tmp_path)


def test_ctrl_c_interrupts_a_sleep_on_a_process_worker(env: Env, tmp_path: Path) -> None:
    """A Processes build runs in its worker's main thread: Ctrl-C breaks even a sleep."""
    with _attached(env, tmp_path, "processes:2") as (s, driver, lines):
        s.prompt()
        s.run("import time")
        s.child.sendline("t0 = time.monotonic(); time.sleep(30)")
        time.sleep(1.0)
        s.child.sendintr()
        s.expect("KeyboardInterrupt", timeout=10)
        s.prompt()
        s.run("print('SLEPT', round(time.monotonic() - t0))", r"SLEPT (\d+)")
        assert int(s.child.match.group(1)) < 10  # not the whole 30 s
        s.run("print('STILL HERE')", "STILL HERE")  # the console and the build survive
        s.eof()
        s.expect("detached from beta; the build goes on")
        assert s.finish() == 0
        _rest(driver, lines)
    assert driver.returncode == 0 and "beta" in _runs(tmp_path)


@pytest.fixture(scope="module")
def dask_address() -> Iterator[str]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1, dashboard_address=":0",
                                  silence_logs=40) as c:
        yield c.scheduler_address


def test_ctrl_c_at_a_sleep_on_a_dask_thread_says_it_waits_and_offers_to_cancel(env: Env, tmp_path: Path,
                                                                            dask_address: str) -> None:
    """A Dask build runs in a task thread, where CPython cannot break a sleep: the console
    says so at once, and a second Ctrl-C cancels the build (nothing is stored)."""
    with _attached(env, tmp_path, f"dask:{dask_address}") as (s, driver, lines):
        s.prompt()
        s.run("import time")
        s.child.sendline("time.sleep(8)")
        time.sleep(1.0)
        t0 = time.monotonic()
        s.child.sendintr()
        s.expect("cannot interrupt in this worker's thread", timeout=5)
        s.expect(r"Ctrl-C again cancels the build of beta")
        assert time.monotonic() - t0 < 4
        s.child.sendintr()
        s.expect("cancelling the build of beta")
        s.expect("its build is cancelled")
        assert s.finish() == 0
        out = _rest(driver, lines)
    assert driver.returncode == 1 and "ERROR BuildCancelled" in out, out
    assert _weights(env) == [] and "beta" not in _runs(tmp_path)


def test_ctrl_c_at_the_attach_offer_means_no(env: Env, tmp_path: Path) -> None:
    """Ctrl-C is a key at the offer: no traceback, beta stays paused, and alpha, building
    on the other worker process of the same terminal, is not interrupted."""
    s = _driver_on_terminal(env, tmp_path, slow_alpha=4)
    pause_id = s.expect(ATTACH).group(1)
    s.expect(r"attach here\? \[Y/n\]")
    s.child.sendintr()
    s.expect(f"not attaching; beta stays paused: pylightnix attach {pause_id}")
    time.sleep(1.0)  # the worker shares the terminal: the Ctrl-C must not have ended its build
    a = env.spawn(["-m", "pylightnix", "attach", pause_id])
    a.prompt()
    a.run("b = Model(repl_buildargs()); train(b); repl_continueBuild(b)", r"rref:[0-9a-f]{32}-[0-9a-f]{32}-beta")
    a.eof()
    assert a.finish() == 0
    s.expect(r"RESULT rref:")
    assert s.finish() == 0
    assert "Traceback" not in s.output() and "KeyboardInterrupt" not in s.output(), s.output()
    assert len(_weights(env)) == 1 and "beta" not in _runs(tmp_path)
    assert _runs(tmp_path).count("alpha") == 1


def test_ctrl_c_in_the_in_place_console_spares_the_other_builds(env: Env, tmp_path: Path) -> None:
    """Ctrl-C while a cell runs in the in-place console interrupts that cell only: alpha,
    building meanwhile in another worker process on this terminal, goes on."""
    s = _driver_on_terminal(env, tmp_path, slow_alpha=5)
    s.expect(r"attach here\? \[Y/n\]")
    s.child.sendline("y")
    s.prompt()
    s.child.sendline("while True: pass")
    time.sleep(1.0)
    s.child.sendintr()
    s.expect("KeyboardInterrupt")
    s.prompt()
    s.eof()
    s.expect("detached from beta; the build goes on")
    s.expect(r"RESULT rref:")
    assert s.finish() == 0
    runs = _runs(tmp_path)
    assert runs.count("alpha") == 1 and runs.count("beta") == 1, runs


def test_prompts_start_at_one_at_each_pause(env: Env, tmp_path: Path) -> None:
    """Two pauses in the driver: the second shell starts at In [1] again, not In [2]."""
    from terminal_support import PIPELINE as LOCAL
    s = env.debug("--break", "dataset", "--break", "linreg", str(LOCAL))
    s.expect("paused before building dataset")
    s.prompt()
    s.run("x = 1")
    s.eof()
    s.expect("paused before building linreg")
    s.expect(r"In \[(?:\x1b\[[0-9;]*m)*1(?:\x1b\[[0-9;]*m)*\]: ")
    s.child.sendcontrol("d")
    assert s.finish() == 0
