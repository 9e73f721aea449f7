"""Step Into from a build pause lands in the stage's realizer; line breakpoints work there."""
import pytest

from dap_testlib import wait_output, PIPELINE, launch, top_frame

pytestmark = pytest.mark.timeout(90)


def _line_of(text):
    with open(PIPELINE) as f:
        for i, line in enumerate(f, 1):
            if text in line:
                return i
    raise AssertionError(text)


def test_step_into_realizer_then_line_breakpoint(client, root):
    launch(client, root, function_breakpoints=["trainer"])
    st = client.event("stopped", timeout=30)["body"]
    assert st["description"] == "Paused before building trainer"
    tid = st["threadId"]
    mark = client.mark()
    client.request("stepIn", {"threadId": tid})
    st2 = client.event("stopped", timeout=30, after=mark)["body"]
    assert st2["reason"] == "step"
    frame = top_frame(client, tid)
    assert frame["name"] == "trainer_realize"
    assert frame["source"]["path"] == PIPELINE
    assert frame["line"] == _line_of("    if PARTIAL:")  # the realizer's first line

    # a line breakpoint in a function the stage calls is hit
    line = _line_of('with open(join(build_outpath(b), "accuracy.txt"), "w") as f:')
    bps = client.request("setBreakpoints", {"source": {"path": PIPELINE},
                                            "breakpoints": [{"line": line}]})["body"]["breakpoints"]
    assert bps[0]["verified"] is True
    mark = client.mark()
    client.request("continue", {"threadId": tid})
    st3 = client.event("stopped", timeout=30, after=mark)["body"]
    assert st3["reason"] == "breakpoint"
    frame = top_frame(client, tid)
    assert (frame["name"], frame["line"]) == ("evaluate", line)
    client.request("setBreakpoints", {"source": {"path": PIPELINE}, "breakpoints": []})
    client.request("continue", {"threadId": tid})
    client.event("terminated", timeout=30)
    wait_output(client, "RESULT rref:", timeout=10)


def test_line_breakpoint_set_before_launch(pipes_client, root):
    """Line breakpoints switch tracing on from the start: they are hit without any build pause."""
    line = _line_of("    b.weights = [1, 2, s % 5]")
    launch(pipes_client, root, line_breakpoints={PIPELINE: [line]})
    st = pipes_client.event("stopped", timeout=30)["body"]
    assert st["reason"] == "breakpoint"
    assert top_frame(pipes_client, st["threadId"])["line"] == line
    pipes_client.request("continue", {"threadId": st["threadId"]})
    pipes_client.event("terminated", timeout=30)


@pytest.mark.parametrize("just_my_code", [True, False])
def test_stop_on_entry_stops_at_the_programs_first_line(pipes_client, root, just_my_code):
    """Also without justMyCode: the stop is the program's first line, not runpy's."""
    c = pipes_client
    launch(c, root, extra={"stopOnEntry": True, "justMyCode": just_my_code})
    st = c.event("stopped", timeout=30)["body"]
    assert st["reason"] == "entry"
    frame = top_frame(c, st["threadId"])
    assert frame["source"]["path"] == PIPELINE and frame["name"] == "<module>"
    assert frame["line"] == 1  # the module docstring is the program's first statement
    c.request("continue", {"threadId": st["threadId"]})
    c.event("terminated", timeout=30)
    wait_output(c, "RESULT rref:", timeout=10)


def test_stop_on_entry_then_build_pause_then_step_is_a_step(pipes_client, root):
    """Only the first stop is the entry: a later Step Into from a build pause is a "step"
    (on 3.12+ the entry stop used to be missed, and this step was reported as "entry")."""
    c = pipes_client
    launch(c, root, function_breakpoints=["trainer"], extra={"stopOnEntry": True})
    st = c.event("stopped", timeout=30)["body"]
    assert st["reason"] == "entry"
    assert top_frame(c, st["threadId"])["line"] == 1
    mark = c.mark()
    c.request("continue", {"threadId": st["threadId"]})
    st = c.event("stopped", timeout=30, after=mark)["body"]
    assert st["description"] == "Paused before building trainer"
    mark = c.mark()
    c.request("stepIn", {"threadId": st["threadId"]})
    st = c.event("stopped", timeout=30, after=mark)["body"]
    assert st["reason"] == "step"
    assert top_frame(c, st["threadId"])["name"] == "trainer_realize"
    c.request("continue", {"threadId": st["threadId"]})
    c.event("terminated", timeout=30)
    wait_output(c, "RESULT rref:", timeout=10)
