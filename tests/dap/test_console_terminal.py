"""console: integratedTerminal: debugpy's runInTerminal reverse request is relayed to the client."""
import os
import subprocess

import pytest

from dap_testlib import INIT_ARGS, PIPELINE, kill_quietly

pytestmark = pytest.mark.timeout(90)


def test_run_in_terminal_relayed(pipes_client, root):
    c = pipes_client
    spawned = []

    def run_in_terminal(msg):
        if msg["command"] != "runInTerminal":
            return None
        a = msg["arguments"]
        env = dict(os.environ)
        for k, v in (a.get("env") or {}).items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = v
        p = subprocess.Popen(a["args"], cwd=a.get("cwd") or None, env=env,
                             stdout=open(os.path.join(root + ".out"), "w"), stderr=subprocess.STDOUT)
        spawned.append(p)
        return {"processId": p.pid}

    c.reverse_handler = run_in_terminal
    os.makedirs(os.path.dirname(root), exist_ok=True)
    c.request("initialize", dict(INIT_ARGS, supportsRunInTerminalRequest=True))
    seq = c.send_request("launch", {"program": PIPELINE, "console": "integratedTerminal",
                                    "env": {"PYLIGHTNIX_ROOT": root, "PYLIGHTNIX_PROGRESS": "0"}})
    c.event("initialized", timeout=30)
    c.request("setFunctionBreakpoints", {"breakpoints": [{"name": "trainer"}]})
    c.request("configurationDone")
    assert c.response(seq, timeout=30)["success"]
    try:
        st = c.event("stopped", timeout=30)["body"]
        assert st["description"] == "Paused before building trainer"
        reverse = [m for m in c.received if m.get("type") == "request"]
        assert reverse and reverse[0]["command"] == "runInTerminal"
        c.request("continue", {"threadId": st["threadId"]})
        c.event("terminated", timeout=30)
        spawned[0].wait(10)
        with open(root + ".out") as f:
            assert "RESULT rref:" in f.read()
    finally:
        for p in spawned:
            kill_quietly(p.pid)
