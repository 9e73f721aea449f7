"""The pause shows the user's code: the top frame lives in the user's file, at the stage
function that declared the derivation (before a build) or at the line that raised (failed
build); no frame or source of the adapter's own files reaches the client."""
import os

import pytest

from dap_testlib import PIPELINE, launch, locals_of, wait_output

pytestmark = pytest.mark.timeout(90)

FILTER = "pylightnix-build-failure"
ADAPTER_DIR = os.path.dirname(os.path.abspath(__import__("dap_adapter").__file__))


def line_of(path, text):
    with open(path) as f:
        for i, line in enumerate(f, 1):
            if text in line:
                return i
    raise AssertionError(f"{text!r} not in {path}")


def user_top_frame(c, tid, name):
    """The top frame of a pause, checked: named after the derivation, in the user's real
    file (by path, no decompiled sourceReference), and no frame anywhere from the adapter."""
    frames = c.request("stackTrace", {"threadId": tid})["body"]["stackFrames"]
    for f in frames:
        path = (f.get("source") or {}).get("path") or ""
        assert not os.path.abspath(path).startswith(ADAPTER_DIR), f
        assert "dap_adapter" not in path, f
    top = frames[0]
    assert top["name"] == name
    assert top["source"]["path"] == PIPELINE
    assert not top["source"].get("sourceReference")
    return top


@pytest.mark.parametrize("just_my_code", [True, False])
def test_before_build_top_frame_is_the_stage_def(pipes_client, root, just_my_code):
    c = pipes_client
    launch(c, root, function_breakpoints=["trainer"], extra={"justMyCode": just_my_code})
    st = c.event("stopped", timeout=30)["body"]
    assert st["description"] == "Paused before building trainer"
    top = user_top_frame(c, st["threadId"], "trainer")
    assert top["line"] == line_of(PIPELINE, "def trainer(m):")
    c.request("continue", {"threadId": st["threadId"]})
    c.event("terminated", timeout=30)
    wait_output(c, "RESULT rref:", timeout=10)
    assert len([m for m in c.events("stopped") if m is not None]) == 1


def test_stage_declared_through_a_helper_points_at_the_user_stage(pipes_client, root):
    """prep is declared by the user's prep(m) called from trainer(m): its own def line."""
    c = pipes_client
    launch(c, root, function_breakpoints=["prep"])
    st = c.event("stopped", timeout=30)["body"]
    top = user_top_frame(c, st["threadId"], "prep")
    assert top["line"] == line_of(PIPELINE, "def prep(m):")
    c.request("continue", {"threadId": st["threadId"]})
    c.event("terminated", timeout=30)


def test_failed_build_top_frame_is_the_raising_line(pipes_client, root):
    c = pipes_client
    launch(c, root, filters=["uncaught", FILTER], env={"PIPELINE_BROKEN": "1"})
    st = c.event("stopped", timeout=30)["body"]
    assert st["reason"] == "exception"
    top = user_top_frame(c, st["threadId"], "trainer")
    assert top["line"] == line_of(PIPELINE, 'b.model.load("weights.h5")')
    # the exception's traceback starts at the user's stage, not in the engine that called it
    trace = c.request("exceptionInfo", {"threadId": st["threadId"]})["body"]["details"]["stackTrace"]
    assert "pylightnix" not in trace and "trainer_realize" in trace and "evaluate_broken" in trace, trace
    # the frame is still the pause: its variables are the failed build
    assert {"b", "exc", "name", "dref", "config"} <= set(locals_of(c, top["id"]))


def test_line_breakpoints_in_the_stage_do_not_stop_the_pause_frame(pipes_client, root):
    """The pause frame runs no line of the user's file, so line breakpoints on and after
    the line it shows stop during instantiation only, never after the pause."""
    c = pipes_client
    first = line_of(PIPELINE, "def trainer(m):")
    launch(c, root, function_breakpoints=["trainer"], line_breakpoints={PIPELINE: list(range(first, first + 6))})
    stops, at = [], 0
    while True:
        st = c.event("stopped", timeout=30, after=at)["body"]
        stops.append(st.get("description") or st["reason"])
        at = c.mark()
        c.request("continue", {"threadId": st["threadId"]})
        if st.get("description") == "Paused before building trainer":
            break
    assert len(stops) >= 2  # the def line ran at import, the body at instantiation
    after = at
    c.event("terminated", timeout=30, after=after)
    assert not [m for m in c.received[after:] if m.get("event") == "stopped"], stops
    wait_output(c, "RESULT rref:", timeout=10)


def test_stage_file_hidden_by_rules_still_pauses(pipes_client, root):
    """If the user's rules hide their own file from the debugger, a frame there would never
    stop: the pause falls back to the adapter's template frame and still stops."""
    c = pipes_client
    launch(c, root, function_breakpoints=["trainer"],
           extra={"rules": [{"path": PIPELINE, "include": False}]})
    st = c.event("stopped", timeout=30)["body"]
    assert st["description"] == "Paused before building trainer"
    frames = c.request("stackTrace", {"threadId": st["threadId"]})["body"]["stackFrames"]
    assert frames[0]["name"] == "trainer"
    assert frames[0]["source"]["path"] != PIPELINE
    c.request("continue", {"threadId": st["threadId"]})
    c.event("terminated", timeout=30)
    wait_output(c, "RESULT rref:", timeout=10)
