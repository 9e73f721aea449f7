"""A realization's progress in the editor: DAP progressStart/Update/End for clients that
support it (every message validated against debugProtocol.json by the client fixture),
and cancelling that progress cancels the build: nothing partial is stored."""
import pytest

from dap_testlib import launch, realizations, tmp_entries, wait_output

pytestmark = pytest.mark.timeout(90)

PROGRESS = {"supportsProgressReporting": True}
FILTER = "pylightnix-build-failure"


def progress_events(c):
    return [(m["event"], m["body"]) for m in c.received
            if m.get("type") == "event" and m.get("event", "").startswith("progress")]


def test_progress_names_each_built_stage(client, root):
    info = launch(client, root, init=PROGRESS)
    assert info["caps"]["supportsCancelRequest"] is True
    client.event("terminated", timeout=30)
    wait_output(client, "RESULT rref:", timeout=10)
    events = progress_events(client)
    assert [e for e, _ in events] == ["progressStart", "progressUpdate", "progressEnd"]
    (_, start), (_, update), (_, end) = events
    assert start["title"] == "Realizing" and start["message"] == "prep (1 of 2)"
    assert start["cancellable"] is True and start["percentage"] == 0
    assert update["message"] == "trainer (2 of 2)" and update["percentage"] == 50
    assert end["message"] == "Done"
    assert start["progressId"] == update["progressId"] == end["progressId"]


def test_no_progress_without_client_support(pipes_client, root):
    launch(pipes_client, root)
    pipes_client.event("terminated", timeout=30)
    wait_output(pipes_client, "RESULT rref:", timeout=10)
    assert progress_events(pipes_client) == []


def test_cached_realization_shows_no_progress(pipes_client, root, tmp_path):
    """Nothing is built the second time: nothing to show."""
    import subprocess
    import sys
    from dap_testlib import PIPELINE, env_for
    subprocess.run([sys.executable, PIPELINE], env=env_for({"PYLIGHTNIX_ROOT": root}), check=True,
                   capture_output=True)
    launch(pipes_client, root, init=PROGRESS)
    pipes_client.event("terminated", timeout=30)
    wait_output(pipes_client, "RESULT rref:", timeout=10)
    assert progress_events(pipes_client) == []


def _cancel(c):
    [(_, start)] = [(e, b) for e, b in progress_events(c) if e == "progressStart"]
    c.request("cancel", {"progressId": start["progressId"]})
    return start["progressId"]


def test_cancel_progress_of_a_running_build_stores_nothing(client, root):
    launch(client, root, filters=[], init=PROGRESS,
           env={"PIPELINE_PARTIAL": "1", "PIPELINE_WORK": str(10 ** 11)})
    wait_output(client, "TRAINING STARTED", timeout=30)
    assert tmp_entries(root) != []  # the half-written output exists
    pid = _cancel(client)
    assert client.event("exited", timeout=30)["body"]["exitCode"] != 0
    out = wait_output(client, "cancelled from the editor", timeout=10)
    assert "BuildCancelled" in out or "CancelledFromEditor" in out
    end = [b for e, b in progress_events(client) if e == "progressEnd"]
    assert end == [{"progressId": pid, "message": "Cancelled"}]
    assert realizations(root, "trainer") == []
    assert realizations(root, "prep") != []  # what was built before stays
    assert tmp_entries(root) == []


@pytest.mark.parametrize("where", ["before", "failure"])
def test_cancel_progress_at_a_pause_cancels_the_build(pipes_client, root, where):
    c = pipes_client
    if where == "before":
        launch(c, root, function_breakpoints=["trainer"], filters=[], init=PROGRESS)
    else:
        launch(c, root, filters=[FILTER], init=PROGRESS, env={"PIPELINE_BROKEN": "1"})
    st = c.event("stopped", timeout=30)["body"]
    assert st["reason"] == ("function breakpoint" if where == "before" else "exception")
    # while paused, the progress says so (not the stage built before)
    last = [b for e, b in progress_events(c) if e == "progressUpdate"][-1]
    assert last["message"] == ("trainer: paused before building" if where == "before"
                               else "trainer: build failed, paused")
    _cancel(c)
    assert c.event("exited", timeout=30)["body"]["exitCode"] != 0
    wait_output(c, "BuildCancelled", timeout=10)
    assert [b["message"] for e, b in progress_events(c) if e == "progressEnd"] == ["Cancelled"]
    assert realizations(root, "trainer") == []
    assert tmp_entries(root) == []


def test_cancelling_a_request_is_accepted(pipes_client, root):
    launch(pipes_client, root, init=PROGRESS)
    assert pipes_client.request("cancel", {"requestId": 1})["success"] is True
    pipes_client.event("terminated", timeout=30)
