"""Normal flows print nothing the user did not cause: no debugpy notes about skipped
frames ("Frame skipped from debugging during step-in ... justMyCode") in the Debug
Console, whether the session starts with stopOnEntry or steps into a stage's realizer."""
import pytest

from dap_testlib import launch, wait_output

pytestmark = pytest.mark.timeout(90)


def adapter_notes(c):
    """Output events the Debug Console shows that are not the program's own output."""
    return [m["body"]["output"] for m in c.events("output")
            if m["body"].get("category") not in ("stdout", "stderr", "telemetry")]


def test_stop_on_entry_then_step_into_a_build_prints_no_notes(client, root):
    launch(client, root, function_breakpoints=["trainer"], extra={"stopOnEntry": True})
    st = client.event("stopped", timeout=30)["body"]
    assert st["reason"] == "entry"
    tid = st["threadId"]
    at = client.mark()
    client.request("continue", {"threadId": tid})
    st = client.event("stopped", timeout=30, after=at)["body"]
    assert st["description"] == "Paused before building trainer"
    at = client.mark()
    client.request("stepIn", {"threadId": tid})  # steps through the engine: skipped frames
    assert client.event("stopped", timeout=30, after=at)["body"]["reason"] == "step"
    client.request("continue", {"threadId": tid})
    client.event("terminated", timeout=30)
    wait_output(client, "RESULT rref:", timeout=10)
    notes = adapter_notes(client)
    assert notes == []
