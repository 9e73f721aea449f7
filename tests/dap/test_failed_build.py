"""The "Failed builds" filter: stop at a raising realizer, fix in the console, commit, continue."""
import os

import pytest

from dap_testlib import PIPELINE, launch, locals_of, realizations, repl, top_frame, wait_output

pytestmark = pytest.mark.timeout(90)

FILTER = "pylightnix-build-failure"


def test_filter_is_offered_beside_debugpy_filters(pipes_client):
    caps = pipes_client.request("initialize", {"adapterID": "pylightnix"})["body"]
    filters = {f["filter"]: f for f in caps["exceptionBreakpointFilters"]}
    assert filters[FILTER]["label"] == "Failed builds"
    assert {"raised", "uncaught", "userUnhandled"} <= set(filters)
    for cap in ("supportsFunctionBreakpoints", "supportsCompletionsRequest",
                "supportsConfigurationDoneRequest", "supportsExceptionInfoRequest"):
        assert caps[cap] is True


def test_fix_and_continue_trains_once(client, root, tmp_path):
    count = tmp_path / "count.txt"
    launch(client, root, filters=["uncaught", FILTER],
           env={"PIPELINE_BROKEN": "1", "TRAIN_COUNT_FILE": str(count)})
    st = client.event("stopped", timeout=30)["body"]
    assert st["reason"] == "exception"
    assert st["description"] == ("Build of trainer failed: AttributeError: "
                                 "'Model' object has no attribute 'model'")
    assert st["text"].startswith("dref:")
    tid = st["threadId"]
    info = client.request("exceptionInfo", {"threadId": tid})["body"]
    assert info["exceptionId"] == "AttributeError"
    assert info["breakMode"] == "always"
    assert "no attribute 'model'" in info["details"]["message"]
    assert "evaluate_broken" in info["details"]["stackTrace"]

    frame = top_frame(client, tid)
    assert frame["name"] == "trainer"
    loc = locals_of(client, frame["id"])
    assert {"b", "exc", "name", "dref", "config"} <= set(loc)
    assert "AttributeError" in loc["exc"]
    fid = frame["id"]
    # the trained state is alive in b; fix the evaluation in the console and rerun only it
    assert repl(client, fid, "b.weights") == "[1, 2, 2]"
    repl(client, fid, "def evaluate_fixed(b):\n    evaluate(b)\n")
    assert repl(client, fid, "evaluate_fixed(b)") == ""
    rref = repl(client, fid, "repl_continueBuild(b)").strip("'")
    assert rref.startswith("rref:")
    client.request("continue", {"threadId": tid})
    client.event("terminated", timeout=30)
    wait_output(client, f"RESULT {rref} 5", timeout=10)
    assert count.read_text().count("trained") == 1
    assert len(realizations(root, "trainer")) == 1


def test_continue_without_commit_reraises(pipes_client, root):
    c = pipes_client
    launch(c, root, filters=[FILTER], env={"PIPELINE_BROKEN": "1"})
    st = c.event("stopped", timeout=30)["body"]
    assert st["reason"] == "exception"
    c.request("continue", {"threadId": st["threadId"]})
    exited = c.event("exited", timeout=30)["body"]
    assert exited["exitCode"] != 0
    c.event("terminated", timeout=30)
    out = wait_output(c, "AttributeError: 'Model' object has no attribute 'model'", timeout=10)
    assert "RESULT" not in out
    assert realizations(root, "trainer") == []


def test_failure_without_filter_does_not_stop(pipes_client, root):
    c = pipes_client
    launch(c, root, filters=[], env={"PIPELINE_BROKEN": "1"})
    assert c.event("exited", timeout=30)["body"]["exitCode"] != 0
    assert c.events("stopped") == []


def test_break_on_failed_builds_launch_attribute_works_from_the_first_run(pipes_client, root):
    """launch.json's breakOnFailedBuilds: no filter sent (VS Code's first run knows no
    "Failed builds" filter yet), no stopOnEntry, and the failed build still stops."""
    c = pipes_client
    launch(c, root, filters=[], env={"PIPELINE_BROKEN": "1"}, extra={"breakOnFailedBuilds": True})
    st = c.event("stopped", timeout=30)["body"]
    assert st["reason"] == "exception"
    assert st["description"].startswith("Build of trainer failed: AttributeError")
    assert c.request("exceptionInfo", {"threadId": st["threadId"]})["body"]["exceptionId"] == "AttributeError"
    c.request("continue", {"threadId": st["threadId"]})
    assert c.event("exited", timeout=30)["body"]["exitCode"] != 0
    assert realizations(root, "trainer") == []


def test_break_on_failed_builds_must_be_a_boolean(pipes_client, root, tmp_path):
    c = pipes_client
    c.request("initialize", {"adapterID": "pylightnix"})
    resp = c.request("launch", {"program": PIPELINE, "breakOnFailedBuilds": "yes",
                                "env": {"PYLIGHTNIX_ROOT": root}}, ok=False)
    assert resp["success"] is False
    assert resp["message"] == "breakOnFailedBuilds: expected true or false, got 'yes'"
    assert not os.path.exists(root)  # nothing ran
