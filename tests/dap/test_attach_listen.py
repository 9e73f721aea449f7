"""Attach to ``pylightnix debug --listen``: the program connects its debugger out to the
attaching adapter, to a fixed ``pylightnixConnectBack`` port if asked (what
``ssh -R PORT:127.0.0.1:PORT`` carries back from a remote box), anew for each attach."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "security"))

from adapter_probes import listening_ports, process_tree, start_listening, stop  # noqa: E402
from dap_testlib import INIT_ARGS, free_port, repl, top_frame  # noqa: E402

pytestmark = pytest.mark.timeout(90)


def test_attach_with_a_fixed_connect_back_port(pipes_client, tmp_path):
    c = pipes_client
    proc, port, _ = start_listening(tmp_path, wait=True)
    back = free_port()
    try:
        c.request("initialize", INIT_ARGS)
        seq = c.send_request("attach", {"connect": {"host": "127.0.0.1", "port": port},
                                        "pylightnixConnectBack": {"port": back},
                                        "pylightnixAttachFile": str(tmp_path / "dbg" / f"attach-{port}.json")})
        assert c.event("debugpyWaitingForServer", timeout=30)["body"]["port"] == back
        c.event("initialized", timeout=30)
        c.request("setFunctionBreakpoints", {"breakpoints": [{"name": "trainer"}]})
        c.request("configurationDone")
        assert c.response(seq, timeout=30)["success"]
        assert back in listening_ports(process_tree(c.proc.pid))
        st = c.event("stopped", timeout=30)["body"]
        assert repl(c, top_frame(c, st["threadId"])["id"], "name") == "'trainer'"
        c.request("continue", {"threadId": st["threadId"]})
        assert proc.wait(timeout=60) == 0
    finally:
        stop(proc)


def test_detach_and_attach_again(tmp_path):
    """The program connects its debugger anew for each attaching adapter."""
    from adapter_probes import attach
    from dap_testlib import PIPELINE, SchemaChecker, spawn_pipes
    script = tmp_path / "slow.py"
    script.write_text("import runpy, time\nfor _ in range(60):\n    time.sleep(0.1)\n"
                      f"runpy.run_path({PIPELINE!r}, run_name='__main__')\n")
    proc, port, _ = start_listening(tmp_path, script=str(script), wait=True)
    try:
        first = spawn_pipes(SchemaChecker())
        assert first.response(attach(first, tmp_path, port, breaks=()), timeout=30)["success"]
        first.request("disconnect", {"terminateDebuggee": False}, ok=False)
        first.close()
        assert proc.poll() is None  # detaching leaves the program running
        second = spawn_pipes(SchemaChecker())
        try:
            assert second.response(attach(second, tmp_path, port), timeout=30)["success"]
            st = second.event("stopped", timeout=30)["body"]
            assert st["description"] == "Paused before building trainer"
            assert repl(second, top_frame(second, st["threadId"])["id"], "name") == "'trainer'"
            second.request("continue", {"threadId": st["threadId"]})
            assert proc.wait(timeout=60) == 0
        finally:
            second.close()
    finally:
        stop(proc)


def test_terminate_ends_an_attached_program_while_a_cell_sleeps(tmp_path):
    """The adapter ends an attached program through its agent (no local pid is trusted)."""
    import time
    from adapter_probes import attach
    from dap_testlib import SchemaChecker, spawn_pipes, wait_gone
    proc, port, _ = start_listening(tmp_path, wait=True)
    c = spawn_pipes(SchemaChecker())
    try:
        assert c.response(attach(c, tmp_path, port), timeout=30)["success"]
        st = c.event("stopped", timeout=30)["body"]
        fid = top_frame(c, st["threadId"])["id"]
        c.send_request("evaluate", {"expression": "import time\ntime.sleep(600)", "frameId": fid,
                                    "context": "repl"})
        time.sleep(1)
        t0 = time.monotonic()
        c.send_request("terminate", {})
        wait_gone(proc.pid, 2.0)
        print(f"attached program gone {time.monotonic() - t0:.3f}s after terminate")
        assert proc.wait(timeout=5) != 0
        assert not (tmp_path / "dbg" / f"attach-{port}.json").exists()
    finally:
        c.close()
        stop(proc)
