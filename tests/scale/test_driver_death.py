"""Nothing outlives a driver killed with SIGKILL: its pool processes (one of them holding a
build paused on it), the fork server and the resource tracker are gone within seconds."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")  # comes with distributed

HERE = Path(__file__).resolve().parent
DRIVER = """
import os, sys
sys.path.insert(0, {here!r})
from remote_pipeline import pipeline
from pylightnix import instantiate, realize
from pylightnix.scale.executors import Processes

if __name__ == "__main__":
    realize(instantiate(pipeline, sys.argv[2]), executor=Processes(2, start_method=sys.argv[1]))
"""
PAUSED = re.compile(r"beta is paused on worker .*; attach with: pylightnix attach [0-9a-f]{6}")


def _alive(procs):  # type: ignore[no-untyped-def]
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:  # zombies: gone, not reaped by pid 1
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.mark.parametrize("start_method", ["forkserver", "spawn", "fork"])
def test_nothing_outlives_a_killed_driver(tmp_path, start_method):
    """A build paused on a Processes worker, then kill -9 of the driver: 3 to 4 of its processes
    (the paused worker, an idle one, the fork server, the resource tracker) were alive 15 s later."""
    env = dict(os.environ, PYLIGHTNIX_ROOT=str(tmp_path / "store"), PYLIGHTNIX_DEBUG_DIR=str(tmp_path / "debug"),
               PYTHONUNBUFFERED="1", PYLIGHTNIX_BREAK="beta")
    for k in ("PYLIGHTNIX_BREAK_ON_FAILURE", "PYLIGHTNIX_NO_TTY", "FAIL_BETA", "PYLIGHTNIX_EXECUTOR"):
        env.pop(k, None)
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(here=str(HERE)))
    driver = subprocess.Popen([sys.executable, str(script), start_method, str(tmp_path / "runs.log")], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tree = []
    try:
        seen = []
        assert driver.stdout is not None
        for line in driver.stdout:
            seen.append(line)
            if PAUSED.search(line):
                break
        else:
            pytest.fail("the build never paused:\n" + "".join(seen))
        tree = psutil.Process(driver.pid).children(recursive=True)
        assert len(tree) >= 2, tree  # at least the paused worker and the other one (or the fork server)
        driver.kill()
        driver.wait(10)
        t = time.monotonic()
        while _alive(tree) and time.monotonic() - t < 15:
            time.sleep(0.1)
        left = [(p.pid, " ".join(p.cmdline())[:100]) for p in _alive(tree)]
        took = time.monotonic() - t
        assert not left and took < 6, (took, left)
        # the paused build stored nothing
        assert not list((tmp_path / "store").glob("store-v0/*-beta/*/weights.txt"))
    finally:
        if driver.poll() is None:
            driver.kill()
        for p in _alive(tree):  # only when the test failed
            p.kill()
