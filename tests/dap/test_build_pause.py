"""The user's story at a build breakpoint: pause, IPython console, commit by hand, continue."""

import pytest

from dap_testlib import launch, locals_of, realizations, repl, repl_error, top_frame, wait_output

pytestmark = pytest.mark.timeout(90)


def test_pause_console_commit_continue(client, root, tmp_path):
    count = tmp_path / "count.txt"
    info = launch(client, root, function_breakpoints=["trainer"], env={"TRAIN_COUNT_FILE": str(count)})
    assert info["function_breakpoints"][0]["verified"] is False  # nothing instantiated yet
    st = client.event("stopped", timeout=30)["body"]
    assert st["reason"] == "function breakpoint"
    assert st["description"] == "Paused before building trainer"
    assert st["text"].startswith("dref:") and st["text"].endswith("-trainer")
    assert st["hitBreakpointIds"] == [info["function_breakpoints"][0]["id"]]
    assert st["allThreadsStopped"] is True

    frame = top_frame(client, st["threadId"])
    assert frame["name"] == "trainer"
    loc = locals_of(client, frame["id"])
    assert set(loc) >= {"name", "dref", "config", "buildargs"}
    assert loc["name"] == "'trainer'" and st["text"] in loc["dref"]
    assert "'version': 2" in loc["config"]
    fid = frame["id"]

    # IPython console in the pause frame: the program's globals are reachable
    assert repl(client, fid, "b = Model(repl_buildargs())") == ""
    assert repl(client, fid, "train(b)") == ""
    assert repl(client, fid, "b.weights") == "[1, 2, 2]"
    assert "Type:" in repl(client, fid, "b.weights?") and "list" in repl(client, fid, "b.weights?")
    whos = repl(client, fid, "%whos")
    assert "Variable" in whos and "Model" in whos
    assert "loops each" in repl(client, fid, "%timeit -n 2 -r 1 sum(b.weights)")
    assert repl(client, fid, "!echo shell says $name") == "shell says trainer"
    assert repl(client, fid, "k = 20\nfor i in range(3):\n    k += i\nk") == "23"
    assert repl(client, fid, "k + 1") == "24"  # the assignment persisted in the frame
    assert "k" in locals_of(client, fid)
    err = repl_error(client, fid, "print('before')\nundefined_name + 1")  # issue 16: success false
    assert err.startswith("before\n") and "NameError: name 'undefined_name' is not defined" in err, err
    assert "Traceback" in err and "console.py" not in err  # the cell's frames only
    assert "SyntaxError" in repl_error(client, fid, "1 +")
    # hover and watch behave as debugpy's
    hover = client.request("evaluate", {"expression": "name", "frameId": fid, "context": "hover"})["body"]
    assert hover["result"] == "'trainer'"
    comps = client.request("completions", {"text": "b.wei", "column": 6, "frameId": fid})["body"]["targets"]
    assert any(t["text"] in ("weights", "b.weights") for t in comps), comps

    rref = repl(client, fid, "evaluate(b)\nrepl_continueBuild(b)")
    assert rref.startswith("'rref:") and rref.endswith("-trainer'")
    client.request("continue", {"threadId": st["threadId"]})
    client.event("terminated", timeout=30)
    wait_output(client, f"RESULT {rref.strip(chr(39))} 5", timeout=10)
    assert count.read_text().count("trained") == 1  # only the console's train(b)
    assert len(realizations(root, "trainer")) == 1


def test_plain_continue_runs_realizer(client, root, tmp_path):
    count = tmp_path / "count.txt"
    launch(client, root, function_breakpoints=["trainer"], env={"TRAIN_COUNT_FILE": str(count)})
    st = client.event("stopped", timeout=30)["body"]
    assert st["description"] == "Paused before building trainer"
    client.request("continue", {"threadId": st["threadId"]})
    client.event("terminated", timeout=30)
    wait_output(client, "RESULT rref:", timeout=10)
    assert count.read_text().count("trained") == 1
    assert not [m for m in client.events("stopped") if m is not None][1:]  # stopped once


def test_launch_build_breakpoints_and_glob(pipes_client, root):
    c = pipes_client
    launch(c, root, extra={"buildBreakpoints": ["pre*"]})
    st = c.event("stopped", timeout=30)["body"]
    assert st["description"] == "Paused before building prep"
    assert "hitBreakpointIds" not in st  # launch.json breakpoints are not client breakpoints
    c.request("continue", {"threadId": st["threadId"]})
    c.event("terminated", timeout=30)
    wait_output(c, "RESULT rref:", timeout=10)


def test_cached_stage_never_pauses(pipes_client, root):
    import subprocess
    import sys
    from dap_testlib import PIPELINE, env_for
    # build everything once without the debugger
    subprocess.run([sys.executable, PIPELINE], env=env_for({"PYLIGHTNIX_ROOT": root}), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    c = pipes_client
    launch(c, root, function_breakpoints=["trainer", "prep"])
    assert c.event("exited", timeout=30)["body"]["exitCode"] == 0
    wait_output(c, "RESULT rref:", timeout=10)
    assert c.events("stopped") == []
    # the breakpoints were still verified: the derivations were instantiated
    assert len(c.events("breakpoint")) == 2


def test_module_launch_with_args(pipes_client, root):
    from dap_testlib import PROGRAMS
    c = pipes_client
    c.request("initialize", {"adapterID": "pylightnix"})
    seq = c.send_request("launch", {"module": "pipeline", "args": ["--flag", "two words"], "cwd": PROGRAMS,
                                    "console": "internalConsole",
                                    "env": {"PYLIGHTNIX_ROOT": root, "PYLIGHTNIX_PROGRESS": "0"}})
    c.event("initialized", timeout=30)
    c.request("setFunctionBreakpoints", {"breakpoints": [{"name": "trainer"}]})
    c.request("configurationDone")
    assert c.response(seq, timeout=30)["success"]
    st = c.event("stopped", timeout=30)["body"]
    assert st["description"] == "Paused before building trainer"
    c.request("continue", {"threadId": st["threadId"]})
    c.event("terminated", timeout=30)
    wait_output(c, "ARGV ['--flag', 'two words'] MAIN __main__", timeout=10)
