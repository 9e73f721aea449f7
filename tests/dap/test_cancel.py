"""Disconnect or terminate at a build pause cancels the build and ends the debuggee."""
import time

import pytest

from dap_testlib import debuggee_pid, launch, realizations, repl, tmp_entries, top_frame, wait_gone

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("how", ["disconnect", "terminate"])
def test_stop_while_paused_cancels(client, root, how):
    launch(client, root, function_breakpoints=["trainer"])
    pid = debuggee_pid(client)
    st = client.event("stopped", timeout=30)["body"]
    fid = top_frame(client, st["threadId"])["id"]
    # half-built outputs exist in the engine's temporary area while paused
    repl(client, fid, "b = Model(repl_buildargs())\ntrain(b)\nevaluate(b)")
    assert tmp_entries(root) != []
    t0 = time.monotonic()
    if how == "disconnect":
        client.request("disconnect", {"terminateDebuggee": True}, timeout=10)
    else:
        client.request("terminate", {}, timeout=10)
    wait_gone(pid, 2.0 - (time.monotonic() - t0))  # gone within 2 s of the request
    print(f"debuggee gone {time.monotonic() - t0:.3f}s after {how}")
    assert realizations(root, "trainer") == []   # no partial realization
    assert realizations(root, "prep") != []      # what was built before stays
    assert tmp_entries(root) == []               # temporary outputs removed
