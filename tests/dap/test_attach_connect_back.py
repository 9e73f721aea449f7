"""Attach with ``pylightnixConnectBack: {port}``: the program connects its debugger to that
fixed port (what ``ssh -R PORT:127.0.0.1:PORT`` carries back from a remote box)."""
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
