"""Bad input gets an error response or an output event; the adapter keeps serving."""

import os

import pytest

from dap_adapter.common.messaging import BadMessage, MessageReader, encode
from dap_testlib import INIT_ARGS

pytestmark = pytest.mark.timeout(60)


def _reader(data: bytes, chunk: int = 7):
    parts = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    return MessageReader(lambda: parts.pop(0) if parts else b"")


def test_reader_resynchronises_after_garbage():
    good = {"seq": 1, "type": "request", "command": "threads"}
    data = (b"garbage\r\n" + b"Content-Length: abc\r\n\r\n{}" + b"Content-Length: 3\r\n\r\n{x}"
            + encode(good) + b"Content-Length: 2\r\n\r\n[]")
    got = list(_reader(data))
    kinds = [(m.kind if isinstance(m, BadMessage) else "ok") for m in got]
    # leading garbage, the bad header, its orphaned body, the bad JSON, the good one, the non-message
    assert kinds == ["header", "header", "header", "json", "ok", "shape"]
    assert got[4] == good


def test_malformed_input_over_pipes(pipes_client):
    c = pipes_client
    c.send_raw(b"Content-Type: nothing\r\n\r\n")                       # header without length
    c.event("output", pred=lambda m: "invalid input (header)" in m["body"]["output"])
    c.send_raw(b"Content-Length: 9\r\n\r\n{not json")                  # invalid JSON
    c.event("output", pred=lambda m: "invalid input (json)" in m["body"]["output"])
    c.send_raw(encode({"seq": 5, "type": "request"}), expect=5)         # request without command
    r = c.response(5)
    assert r["success"] is False and "command" in r["message"]
    r = c.request("noSuchCommand", {"x": 1}, ok=False)                  # unknown command
    assert r["success"] is False and "noSuchCommand" in r["message"]
    r = c.request("threads", ok=False)                                  # before any session
    assert r["success"] is False
    # still serving
    caps = c.request("initialize", INIT_ARGS)["body"]
    assert caps["supportsFunctionBreakpoints"] is True


def test_missing_program(client, tmp_path):
    client.request("initialize", INIT_ARGS)
    missing = str(tmp_path / "nope.py")
    r = client.request("launch", {"program": missing, "console": "internalConsole"}, ok=False)
    assert r["success"] is False and "program not found" in r["message"] and missing in r["message"]
    assert any(missing in m["body"]["output"] for m in client.events("output"))
    # the adapter still answers
    r = client.request("noSuchCommand", ok=False)
    assert r["success"] is False


def test_launch_without_target(pipes_client):
    c = pipes_client
    c.request("initialize", INIT_ARGS)
    r = c.request("launch", {"console": "internalConsole"}, ok=False)
    assert r["success"] is False and "program" in r["message"]


def test_debugpy_dying_ends_the_session_cleanly(pipes_client, root):
    """If the debugpy adapter underneath dies, the client gets `terminated` and error
    responses, not silence."""
    import signal
    import subprocess
    from dap_testlib import debuggee_pid, kill_quietly, launch
    c = pipes_client
    launch(c, root, function_breakpoints=["trainer"])
    pid = debuggee_pid(c)
    c.event("stopped", timeout=30)
    children = subprocess.run(["pgrep", "-P", str(c.proc.pid)], capture_output=True, text=True).stdout.split()
    assert children, "the adapter runs debugpy as its child"
    for child in children:
        os.kill(int(child), signal.SIGKILL)
    c.event("terminated", timeout=10)
    assert any("debugpy exited unexpectedly" in m["body"]["output"] for m in c.events("output"))
    r = c.request("threads", ok=False)
    assert r["success"] is False
    kill_quietly(pid)
