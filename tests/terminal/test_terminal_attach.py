"""``pylightnix attach`` and the in-place attach, on real pseudo-terminals (pexpect),
against a build paused in a real worker process (Processes(2))."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from terminal_support import PYTHON, REPO, Env

PIPELINE = REPO / "tests" / "scale" / "remote_pipeline.py"
ATTACH = re.compile(r"beta is paused on worker .+?; attach with: pylightnix attach ([0-9a-f]{6})")


def _weights(env: Env) -> list:
    return sorted((env.root / "store-v0").glob("*-beta/*/weights.txt"))


def test_attach_from_another_terminal_commits_on_the_worker(env: Env, tmp_path: Path) -> None:
    env.vars["PYLIGHTNIX_DEBUG_DIR"] = str(tmp_path / "debug")
    driver = subprocess.Popen([PYTHON, str(PIPELINE), "processes:2", str(tmp_path / "runs.log")],
                              env={**env.vars, "PYLIGHTNIX_BREAK": "beta"}, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in driver.stdout:  # type: ignore[union-attr]
            lines.append(line)
            m = ATTACH.search(line)
            if m:
                break
        assert m, "".join(lines)
        s = env.spawn(["-m", "pylightnix", "attach", m.group(1)])
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
        rest, _ = driver.communicate(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    out = "".join(lines) + rest
    assert driver.returncode == 0 and "RESULT rref:" in out, out
    files = _weights(env)
    assert len(files) == 1 and files[0].read_text() == f"beta trained in {worker_pid}\n"


def test_driver_terminal_offers_to_attach_in_place(env: Env, tmp_path: Path) -> None:
    env.vars["PYLIGHTNIX_DEBUG_DIR"] = str(tmp_path / "debug")
    s = env.spawn([str(PIPELINE), "processes:2", str(tmp_path / "runs.log")], {"PYLIGHTNIX_BREAK": "beta"})
    s.expect(ATTACH)
    s.expect(r"attach here\? \[Y/n\] ")
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
