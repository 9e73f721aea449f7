"""Attach to ``python -m pylightnix debug --listen 127.0.0.1:PORT SCRIPT``: build breakpoints
work the same; the side channel secret comes from the user-only attach file."""
import subprocess
import sys
import time

import pytest

from dap_testlib import INIT_ARGS, PIPELINE, env_for, free_port, repl, top_frame

pytestmark = pytest.mark.timeout(90)


def test_attach_build_breakpoint(client, tmp_path):
    port = free_port()
    root = str(tmp_path / "root")
    env = env_for({"PYLIGHTNIX_DEBUG_DIR": str(tmp_path / "dbg"), "PYLIGHTNIX_ROOT": root,
                   "PYLIGHTNIX_PROGRESS": "0"})
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    # files, not pipes: debugpy's own adapter process inherits them and outlives the script
    with open(out_path, "w") as out_f, open(err_path, "w") as err_f:
        proc = subprocess.Popen([sys.executable, "-m", "pylightnix", "debug", "--listen",
                                 f"127.0.0.1:{port}", "--wait", PIPELINE], env=env, stdout=out_f, stderr=err_f)
    try:
        deadline = time.monotonic() + 30
        while "waiting for a debugger" not in err_path.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, err_path.read_text()
            time.sleep(0.05)
        # the adapter process finds the attach file through the same directory
        client.request("initialize", INIT_ARGS)
        seq = client.send_request("attach", {"connect": {"host": "127.0.0.1", "port": port},
                                             "justMyCode": True,
                                             "pylightnixAttachFile": str(tmp_path / "dbg" / f"attach-{port}.json")})
        client.event("initialized", timeout=30)
        bps = client.request("setFunctionBreakpoints", {"breakpoints": [{"name": "trainer"}]})["body"]
        assert bps["breakpoints"][0]["verified"] is False
        client.request("setExceptionBreakpoints", {"filters": []})
        client.request("configurationDone")
        assert client.response(seq, timeout=30)["success"]
        st = client.event("stopped", timeout=30)["body"]
        assert st["description"] == "Paused before building trainer"
        assert client.event("breakpoint", timeout=5)["body"]["breakpoint"]["verified"] is True
        fid = top_frame(client, st["threadId"])["id"]
        assert repl(client, fid, "name") == "'trainer'"
        client.request("continue", {"threadId": st["threadId"]})
        assert proc.wait(timeout=30) == 0
        assert "RESULT rref:" in out_path.read_text()
        client.request("disconnect", {}, ok=False)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_attach_without_listener_fails_cleanly(client, tmp_path):
    client.request("initialize", INIT_ARGS)
    port = free_port()
    r = client.request("attach", {"connect": {"host": "127.0.0.1", "port": port},
                                  "pylightnixAttachFile": str(tmp_path / "none.json")}, ok=False)
    assert r["success"] is False and "attach" in r["message"]
