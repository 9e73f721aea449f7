"""A session says ``terminated`` exactly once, however it ends: launch and attach, the
program ending by itself or Stop (``terminate``, ``disconnect``). The adapter hears of
the end from several sides (debugpy's own ``terminated``, debugpy exiting, the side
channel closing, the client's disconnect); the client must hear of it once."""
import subprocess
import sys
import time

import pytest

from dap_testlib import INIT_ARGS, PIPELINE, env_for, free_port, launch

pytestmark = pytest.mark.timeout(120)


def finish(c) -> int:
    """Disconnect (as VS Code does after ``terminated``), wait for the adapter to exit,
    and count the ``terminated`` events the client got."""
    c.request("disconnect", {}, timeout=20, ok=False)
    if c.proc is not None:
        c.proc.wait(timeout=20)
    deadline = time.monotonic() + 10
    while not c.ep.closed and time.monotonic() < deadline:
        time.sleep(0.05)
    return len(c.events("terminated"))


def test_launch_ends_by_itself(pipes_client, root):
    c = pipes_client
    launch(c, root)
    assert c.event("exited", timeout=60)["body"]["exitCode"] == 0
    c.event("terminated", timeout=20)
    time.sleep(0.5)  # any second one would come now
    assert finish(c) == 1


@pytest.mark.parametrize("stop", ["terminate", "disconnect"])
def test_launch_stopped_at_a_build_pause(pipes_client, root, stop):
    c = pipes_client
    launch(c, root, function_breakpoints=["trainer"])
    c.event("stopped", timeout=60)
    if stop == "terminate":
        c.request("terminate", {}, timeout=20)
        c.event("terminated", timeout=20)
        time.sleep(0.5)
        assert finish(c) == 1
    else:
        c.request("disconnect", {"terminateDebuggee": True}, timeout=20)
        c.proc.wait(timeout=20)
        time.sleep(0.2)
        assert len(c.events("terminated")) <= 1


@pytest.fixture
def listening(tmp_path):
    """``pylightnix debug --listen`` on the pipeline, waiting for a debugger: (process, port)."""
    port = free_port()
    env = env_for({"PYLIGHTNIX_DEBUG_DIR": str(tmp_path / "dbg"), "PYLIGHTNIX_ROOT": str(tmp_path / "root"),
                   "PYLIGHTNIX_PROGRESS": "0"})
    err_path = tmp_path / "err.txt"
    with open(tmp_path / "out.txt", "w") as out_f, open(err_path, "w") as err_f:
        proc = subprocess.Popen([sys.executable, "-m", "pylightnix", "debug", "--listen",
                                 f"127.0.0.1:{port}", "--wait", PIPELINE], env=env, stdout=out_f, stderr=err_f)
    deadline = time.monotonic() + 30
    while "waiting for a debugger" not in err_path.read_text():
        assert time.monotonic() < deadline and proc.poll() is None, err_path.read_text()
        time.sleep(0.05)
    yield proc, port, str(tmp_path / "dbg" / f"attach-{port}.json")
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def attach(c, port: int, attach_file: str, breaks=()) -> None:
    c.request("initialize", INIT_ARGS)
    seq = c.send_request("attach", {"connect": {"host": "127.0.0.1", "port": port}, "justMyCode": True,
                                    "pylightnixAttachFile": attach_file})
    c.event("initialized", timeout=30)
    c.request("setFunctionBreakpoints", {"breakpoints": [{"name": n} for n in breaks]})
    c.request("setExceptionBreakpoints", {"filters": []})
    c.request("configurationDone")
    assert c.response(seq, timeout=30)["success"]


def test_attached_program_ends_by_itself(pipes_client, listening):
    proc, port, attach_file = listening
    attach(pipes_client, port, attach_file)
    assert proc.wait(timeout=60) == 0
    pipes_client.event("terminated", timeout=20)
    time.sleep(0.5)
    assert finish(pipes_client) == 1


def test_attached_program_stopped_at_a_build_pause(pipes_client, listening):
    proc, port, attach_file = listening
    c = pipes_client
    attach(c, port, attach_file, ["trainer"])
    c.event("stopped", timeout=60)
    c.request("terminate", {}, timeout=20)
    c.event("terminated", timeout=20)
    proc.wait(timeout=30)
    time.sleep(0.5)
    assert finish(c) == 1
