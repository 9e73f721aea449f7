"""Function breakpoints: build breakpoints by derivation name or glob, the rest go to debugpy."""
import pytest

from dap_testlib import wait_output, launch, top_frame

pytestmark = pytest.mark.timeout(90)


def test_unverified_then_verified(client, root):
    info = launch(client, root, function_breakpoints=["trainer", "pre*", "no_such_stage"])
    bps = info["function_breakpoints"]
    assert [b["verified"] for b in bps] == [False, False, False]
    assert all("no derivation" in b["message"] for b in bps)
    ids = {b["id"] for b in bps}
    assert len(ids) == 3
    # instantiate() reports the derivations; matching breakpoints become verified
    changed = set()
    while changed != {bps[0]["id"], bps[1]["id"]}:
        ev = client.event("breakpoint", timeout=30, after=0,
                          pred=lambda m: m["body"]["breakpoint"]["id"] not in changed)["body"]
        assert ev["reason"] == "changed" and ev["breakpoint"]["verified"] is True
        changed.add(ev["breakpoint"]["id"])
    st = client.event("stopped", timeout=30)["body"]
    assert st["description"] == "Paused before building prep"
    assert st["hitBreakpointIds"] == [bps[1]["id"]]
    mark = client.mark()
    client.request("continue", {"threadId": st["threadId"]})
    st = client.event("stopped", timeout=30, after=mark)["body"]
    assert st["description"] == "Paused before building trainer"
    # setting the breakpoints again now answers verified at once (names are known)
    again = client.request("setFunctionBreakpoints", {"breakpoints": [{"name": "trainer"}, {"name": "nope"}]})
    assert [b["verified"] for b in again["body"]["breakpoints"]] == [True, False]
    assert again["body"]["breakpoints"][0]["id"] == bps[0]["id"]
    client.request("continue", {"threadId": st["threadId"]})
    client.event("terminated", timeout=30)
    assert not any(e["body"]["breakpoint"]["id"] == bps[2]["id"] for e in client.events("breakpoint"))


def test_python_function_breakpoints_go_to_debugpy(pipes_client, root):
    """`py:NAME` (and names that cannot be derivation names) are ordinary debugpy function
    breakpoints, answered by debugpy in the same order as requested."""
    c = pipes_client
    info = launch(c, root, function_breakpoints=["trainer", "py:evaluate", "Model.fit"])
    bps = info["function_breakpoints"]
    assert len(bps) == 3
    assert bps[0]["verified"] is False and bps[0]["id"] >= 1_000_000   # ours
    assert bps[1]["id"] < 1_000_000                                     # debugpy's
    st = c.event("stopped", timeout=30)["body"]
    assert st["description"] == "Paused before building trainer"
    mark = c.mark()
    c.request("continue", {"threadId": st["threadId"]})
    st = c.event("stopped", timeout=30, after=mark)["body"]
    assert st["reason"] == "function breakpoint"
    assert "description" not in st or "building" not in st["description"]
    assert top_frame(c, st["threadId"])["name"] == "evaluate"
    c.request("setFunctionBreakpoints", {"breakpoints": []})
    c.request("continue", {"threadId": st["threadId"]})
    c.event("terminated", timeout=30)
    wait_output(c, "RESULT rref:", timeout=10)
