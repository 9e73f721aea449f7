"""What becomes of a build paused on a worker when its driver is interrupted or killed,
or its attacher's connection drops: it is cancelled (its realizer never runs, nothing is
stored), or it waits for a re-attach. Real processes throughout: the driver
(remote_pipeline.py), ``pylightnix attach`` on a pipe, a Dask LocalCluster of worker
processes, a process pool."""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict

import pytest

from scale_support import OutputReader
from test_remote_pauses import ATTACH_LINE, Driver, driver_factory, env, realization  # noqa: F401 (fixtures)

DETACHED = re.compile(r"beta \((\w+)\): the attached console's connection dropped; the build stays paused "
                      r"for ([\d.]+) s")


class Attacher(OutputReader):
    """``pylightnix attach ID`` as a real subprocess, cells written to its stdin as we go."""

    def __init__(self, env: Dict[str, str], pause_id: str) -> None:  # noqa: D107
        self.env = env
        super().__init__([sys.executable, "-m", "pylightnix", "attach", pause_id], env, stdin=subprocess.PIPE)

    def send(self, cell: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(cell)
        self.proc.stdin.flush()


def in_long_cell(env: Dict[str, str], executor: str, driver_factory, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A driver with beta paused on a worker, and an attacher running :func:`long_cell`
    there (``tmp_path / "interrupted"`` appears when it is interrupted)."""
    env["PYLIGHTNIX_BREAK"] = "beta"
    d = driver_factory(executor, env)
    a = Attacher(env, d.wait_for(ATTACH_LINE)[0].group(3))
    a.send(long_cell(tmp_path / "interrupted"))
    a.wait_for(re.compile("CELL START"))
    return d, a


def long_cell(mark: Path) -> str:
    """A cell that runs ~30 s in short sleeps (so that an interrupt lands in a Dask task
    thread too) and leaves ``mark`` when it is interrupted."""
    return ("import time\n"
            "try:\n"
            "    print('CELL START', flush=True)\n"
            "    for _ in range(300): time.sleep(0.1)\n"
            "except BaseException:  # KeyboardInterrupt, or the Dask executor's own interrupt\n"
            f"    open({str(mark)!r}, 'w').write('interrupted')\n"
            "    raise\n"
            "\n")


def never_built(env: Dict[str, str], d: Driver, settle: float = 3.0) -> None:
    """beta's realizer does not run and nothing of beta is stored, for ``settle`` seconds."""
    deadline = time.monotonic() + settle
    while time.monotonic() < deadline:
        assert "beta" not in [r.split()[0] for r in d.runs()], d.runs()
        assert realization(env, "beta") == []
        time.sleep(0.2)


def wait_file(path: Path, timeout: float = 30, what: Callable[[], str] = str) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared\n{what()}"
        time.sleep(0.1)


@pytest.fixture
def dask_executor(cluster) -> str:  # type: ignore[no-untyped-def]
    return f"dask:{cluster.scheduler_address}"


def test_ctrl_c_in_driver_during_a_console_cell_cancels_the_build(env, dask_executor, driver_factory,
                                                                   tmp_path) -> None:
    d, a = in_long_cell(env, dask_executor, driver_factory, tmp_path)
    try:
        d.proc.send_signal(signal.SIGINT)  # Ctrl-C in the driver
        d.finish()
        assert d.proc.returncode != 0
        wait_file(tmp_path / "interrupted", what=lambda: "\n".join(d.lines + ["--- attach:"] + a.lines))
        never_built(env, d)
        a.finish(30)  # the console ended with the build
    finally:
        a.kill()


def test_attacher_killed_during_a_cell_then_ctrl_c_in_driver_cancels(env, dask_executor, driver_factory,
                                                                     tmp_path) -> None:
    env["PYLIGHTNIX_BREAK"] = "beta"
    d = driver_factory(dask_executor, env)
    pause_id = d.wait_for(ATTACH_LINE)[0].group(3)
    a = Attacher(env, pause_id)
    try:
        a.send("import time\nprint('CELL START', flush=True); [time.sleep(0.1) for _ in range(20)]\n")
        a.wait_for(re.compile("CELL START"))
    finally:
        a.kill()  # kill -9 during the cell
    m = d.wait_for(DETACHED)[0]  # once the cell is over: the build waits for a re-attach, and says so
    assert m.group(1) == pause_id and float(m.group(2)) == 600
    assert f"pylightnix attach {pause_id}" in d.lines[-1]
    never_built(env, d, settle=1.0)
    d.proc.send_signal(signal.SIGINT)
    d.finish()
    never_built(env, d)


def test_driver_killed_while_a_console_is_attached_cancels(env, dask_executor, driver_factory, tmp_path) -> None:
    d, a = in_long_cell(env, dask_executor, driver_factory, tmp_path)
    try:
        d.kill()  # kill -9 of the driver
        wait_file(tmp_path / "interrupted")  # as without a console: the build is cancelled at once
        never_built(env, d)
        a.wait_for(re.compile("the paused build of beta went away"), timeout=30)
    finally:
        a.kill()


def test_dropped_attacher_can_attach_again_and_commit(env, driver_factory) -> None:
    env["PYLIGHTNIX_BREAK"] = "beta"
    d = driver_factory("processes:2", env)
    pause_id = d.wait_for(ATTACH_LINE)[0].group(3)
    a = Attacher(env, pause_id)
    a.send("print('HELLO', name)\n")
    a.wait_for(re.compile("HELLO beta"))
    a.kill()  # kill -9 at the prompt (a lost SSH session)
    d.wait_for(DETACHED)
    never_built(env, d, settle=1.0)
    out = subprocess.run([sys.executable, "-m", "pylightnix", "attach", pause_id], env=env, text=True,
                         input="b = Model(repl_buildargs()); train(b); repl_continueBuild(b)\n",
                         capture_output=True, timeout=60)
    assert "detached from beta" in out.stdout, out
    text = d.finish()
    assert d.proc.returncode == 0 and f"beta ({pause_id}): committed by hand" in text, text
    assert len(realization(env, "beta")) == 1 and "beta" not in [r.split()[0] for r in d.runs()]


def test_dropped_attacher_not_back_in_time_cancels(env, driver_factory) -> None:
    env.update(PYLIGHTNIX_BREAK="beta", PYLIGHTNIX_REATTACH_TIMEOUT="2")
    d = driver_factory("processes:2", env)
    a = Attacher(env, d.wait_for(ATTACH_LINE)[0].group(3))
    a.send("print('HELLO', name)\n")
    a.wait_for(re.compile("HELLO beta"))
    a.kill()
    assert float(d.wait_for(DETACHED)[0].group(2)) == 2
    t0 = time.monotonic()
    text = d.finish(60)
    assert d.proc.returncode == 1 and "ERROR BuildCancelled" in text, text
    assert 1.5 < time.monotonic() - t0 < 30
    never_built(env, d, settle=0.5)


def test_bad_reattach_timeout_names_the_variable(env, driver_factory) -> None:
    env.update(PYLIGHTNIX_BREAK="beta", PYLIGHTNIX_REATTACH_TIMEOUT="soon")
    d = driver_factory("processes:2", env)
    text = d.finish(60)
    assert d.proc.returncode == 1 and "PYLIGHTNIX_REATTACH_TIMEOUT='soon' is not valid" in text, text
