"""Untraced mode ends when something needs tracing: a line breakpoint, or Pause."""
import os
import time

import pytest

from dap_testlib import PROGRAMS, launch, top_frame, wait_output

pytestmark = pytest.mark.timeout(90)
SPIN = os.path.join(PROGRAMS, "spin.py")


def _spin_line():
    with open(SPIN) as f:
        return next(i for i, line in enumerate(f, 1) if "# spin-line" in line)


def test_line_breakpoint_set_while_running_untraced(client, root, tmp_path):
    stop_file = tmp_path / "stop"
    launch(client, root, program=SPIN, function_breakpoints=["not_this_one"],
           env={"SPIN_STOP_FILE": str(stop_file)})
    wait_output(client, "spinning untraced")  # only build breakpoints: full speed
    line = _spin_line()
    client.request("setBreakpoints", {"source": {"path": SPIN}, "breakpoints": [{"line": line}]})
    st = client.event("stopped", timeout=30)["body"]
    assert st["reason"] == "breakpoint"
    frame = top_frame(client, st["threadId"])
    assert (frame["name"], frame["line"]) == ("spin_realize", line)
    client.request("setBreakpoints", {"source": {"path": SPIN}, "breakpoints": []})
    stop_file.write_text("")
    client.request("continue", {"threadId": st["threadId"]})
    client.event("terminated", timeout=30)
    wait_output(client, "SPIN-DONE", timeout=10)


def test_pause_request_while_running_untraced(pipes_client, root, tmp_path):
    c = pipes_client
    stop_file = tmp_path / "stop"
    launch(c, root, program=SPIN, env={"SPIN_STOP_FILE": str(stop_file)})
    wait_output(c, "spinning")
    threads = c.request("threads")["body"]["threads"]
    c.request("pause", {"threadId": threads[0]["id"]})
    st = c.event("stopped", timeout=30)["body"]
    assert st["reason"] == "pause"
    stop_file.write_text("")
    c.request("continue", {"threadId": st["threadId"]})
    c.event("terminated", timeout=30)


def test_traced_from_the_start_with_a_python_function_breakpoint(pipes_client, root, tmp_path):
    c = pipes_client
    stop_file = tmp_path / "stop"
    stop_file.write_text("")
    launch(c, root, program=SPIN, function_breakpoints=["spin", "py:no_such_function"],
           env={"SPIN_STOP_FILE": str(stop_file)})
    st = c.event("stopped", timeout=30)["body"]
    assert st["description"] == "Paused before building spin"
    c.request("continue", {"threadId": st["threadId"]})
    c.event("terminated", timeout=30)
    wait_output(c, "spinning traced")


def test_uncaught_exception_still_stops_when_untraced(pipes_client, root):
    c = pipes_client
    launch(c, root, program=os.path.join(PROGRAMS, "crash.py"), function_breakpoints=["some_stage"],
           filters=["uncaught"])
    st = c.event("stopped", timeout=30)["body"]
    assert st["reason"] == "exception"
    info = c.request("exceptionInfo", {"threadId": st["threadId"]})["body"]
    assert info["description"] == "boom"
    wait_output(c, "crash untraced")
    c.request("continue", {"threadId": st["threadId"]})
    assert c.event("exited", timeout=30)["body"]["exitCode"] == 1


@pytest.mark.parametrize("mode,counter", [("ticker", "ticker.count"), ("worker", "main_count")])
def test_all_threads_stop_at_a_build_pause(pipes_client, root, mode, counter):
    c = pipes_client
    launch(c, root, program=os.path.join(PROGRAMS, "threads.py"), function_breakpoints=["threaded"],
           env={"THREADS_MODE": mode})
    st = c.event("stopped", timeout=30)["body"]
    assert st["description"] == "Paused before building threaded" and st["allThreadsStopped"]
    threads = c.request("threads")["body"]["threads"]
    assert len(threads) == 2
    fid = top_frame(c, st["threadId"])["id"]
    first = c.request("evaluate", {"expression": counter, "frameId": fid, "context": "watch"})
    time.sleep(0.3)
    second = c.request("evaluate", {"expression": counter, "frameId": fid, "context": "watch"})
    assert first["body"]["result"] == second["body"]["result"]  # the other thread is suspended too
    c.request("continue", {"threadId": st["threadId"]})
    c.event("terminated", timeout=30)
    wait_output(c, "THREADS-DONE", timeout=10)
