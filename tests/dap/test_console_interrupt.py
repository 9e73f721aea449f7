"""A console cell that never returns: ``cancel`` and Pause interrupt it like Ctrl-C in
IPython (the pause stays usable), ``terminate`` ends the program within 2 s."""
import time

import pytest

from dap_testlib import debuggee_pid, launch, repl, top_frame, wait_gone

pytestmark = pytest.mark.timeout(90)

SPIN = "n = 0\nwhile True:\n    n += 1"
SLEEP = "n = 1\nimport time\ntime.sleep(600)"
#: a cell that swallows KeyboardInterrupt: only ending the process stops it
STUBBORN = "import time\nwhile True:\n    try:\n        time.sleep(600)\n    except KeyboardInterrupt:\n        pass"


def _paused(c, root):
    launch(c, root, function_breakpoints=["trainer"])
    pid = debuggee_pid(c)
    st = c.event("stopped", timeout=30)["body"]
    return pid, st["threadId"], top_frame(c, st["threadId"])["id"]


def _start_cell(c, fid, text):
    seq = c.send_request("evaluate", {"expression": text, "frameId": fid, "context": "repl"})
    time.sleep(1.0)  # the cell is running now
    with pytest.raises(Exception):
        c.response(seq, timeout=0.5)  # and does not return by itself
    return seq


def test_capability_is_announced(pipes_client):
    from dap_testlib import INIT_ARGS
    assert pipes_client.request("initialize", INIT_ARGS)["body"]["supportsCancelRequest"] is True


@pytest.mark.parametrize("cell", [SPIN, SLEEP], ids=["spin", "sleep"])
@pytest.mark.parametrize("how", ["cancel", "pause"])
def test_interrupting_a_running_cell(client, root, how, cell):
    pid, tid, fid = _paused(client, root)
    seq = _start_cell(client, fid, cell)
    t0 = time.monotonic()
    if how == "cancel":
        assert client.request("cancel", {"requestId": seq})["success"]
    else:
        client.request("pause", {"threadId": tid}, ok=False)
    r = client.response(seq, timeout=10)
    print(f"cell interrupted {time.monotonic() - t0:.3f}s after {how}")
    assert r["success"] is False and "KeyboardInterrupt" in r["message"], r
    # the pause is alive and the console answers again, with the cell's progress kept
    assert int(repl(client, fid, "n")) > 0
    assert repl(client, fid, "name") == "'trainer'"
    client.request("continue", {"threadId": tid})
    client.event("terminated", timeout=30)
    wait_gone(pid, 10)


@pytest.mark.parametrize("cell", [SPIN, SLEEP, STUBBORN], ids=["spin", "sleep", "stubborn"])
def test_terminate_ends_the_program_while_a_cell_runs(client, root, cell):
    pid, tid, fid = _paused(client, root)
    _start_cell(client, fid, cell)
    t0 = time.monotonic()
    client.send_request("terminate", {})
    wait_gone(pid, 2.0)
    print(f"program gone {time.monotonic() - t0:.3f}s after terminate")


def test_cancel_of_something_else_is_harmless(pipes_client, root):
    c = pipes_client
    pid, tid, fid = _paused(c, root)
    assert c.request("cancel", {"requestId": 12345})["success"]
    assert c.request("cancel", {"progressId": "x"})["success"]
    assert repl(c, fid, "1 + 1") == "2"
    c.request("continue", {"threadId": tid})
    c.event("terminated", timeout=30)
