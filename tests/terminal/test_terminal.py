"""The IPython terminal fallback, driven through a real pseudo-terminal.

Every test runs the numpy pipeline in ``pipeline.py`` in a real subprocess
(``python -m pylightnix debug`` or plain ``python`` with ``PYLIGHTNIX_BREAK``),
types into the real embedded IPython shell, and checks what the program
printed and what the store holds afterwards.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pexpect
import pytest

from pylightnix.frontends.debug import parse_listen, split_argv
from pylightnix.core.errors import PylightnixError
from pylightnix.frontends.terminal import no_tty_policy

from terminal_support import PIPELINE, PYTHON, TIMEOUT, Env

RREF = r"(rref:[0-9a-f]{32}-[0-9a-f]{32}-linreg)"


def _final_rref(s) -> str:
    return s.expect(r"RREF " + RREF).group(1)


def _rref_of(realization: Path) -> str:
    """The RRef naming a realization folder ``store-v0/<dhash>-<name>/<rhash>``."""
    return f"rref:{realization.name}-{realization.parent.name}"


def test_pause_commit_by_hand_then_continue(env: Env) -> None:
    s = env.debug("--break", "linreg", str(PIPELINE), "--flag", "x")
    s.expect(r"ARGV \['--flag', 'x'\]")
    s.expect("paused before building linreg")
    s.expect(r"repl_continueBuild\(b\) +commit")  # the banner says what to do
    s.prompt()
    # the namespace: pause variables and the script's globals
    s.run('print("NS", name, dref.rsplit("-", 1)[1], config["version"] + 1, type(buildargs).__name__, '
          'STATUS.upper())', out="NS linreg linreg 2 BuildArgs ORIGINAL")
    s.run('STATUS = "clobbered"')  # must not leak into the script
    s.run("b = Model(repl_buildargs())")
    s.run("train(b)")
    s.run("!echo SHELL$((6*7))", out="SHELL42")  # it is a real IPython: shell escapes, magics
    s.run("%whos", out=r"b +Model")
    s.run("%timeit -n1 -r1 evaluate_correct(b)", out=r"per loop")  # magics see the script's functions
    s.run("committed = repl_continueBuild(b)")
    committed = s.run('print("COMMITTED", committed)', out=r"COMMITTED (\S+)").group(1)
    s.eof()
    s.expect(r"linreg: committed")
    rref = _final_rref(s)
    s.expect("STATUS original")
    assert s.finish() == 0
    assert committed == rref
    assert env.trainings() == 1  # by hand only; the realizer did not run after the commit
    [real] = env.realizations("linreg")
    assert _rref_of(real) == rref
    assert (real / "score.txt").exists() and (real / "w.npy").exists()
    assert (real / "context.json").exists()
    assert env.tmp_leftovers() == []


def test_exit_continues_and_pauses_repeatedly(env: Env) -> None:
    s = env.debug("--break", "dataset", "--break", "lin*", str(PIPELINE))
    s.expect("paused before building dataset")
    s.prompt()
    s.run('tag = "first" + "pause"')
    s.child.sendline("exit")
    s.expect("dataset: continuing, the stage's realizer runs")
    s.expect("paused before building linreg")
    s.expect(r"\(build breakpoint 'lin\*'\)")
    s.last_prompt = 0  # each pause's shell starts at In [1]
    s.prompt()
    s.run('print("SEEN", "tag" in dir(), name)', out="SEEN False linreg")  # a fresh namespace for each pause
    s.child.sendline("quit                 # with a comment, as the README's transcripts type it")
    s.expect("linreg: continuing, the stage's realizer runs")
    rref = _final_rref(s)
    assert s.finish() == 0
    assert env.trainings() == 1  # the realizer ran, once
    [real] = env.realizations("linreg")
    assert _rref_of(real) == rref and (real / "score.txt").exists()
    assert len(env.realizations("dataset")) == 1
    assert env.tmp_leftovers() == []


def test_failed_build_fixed_and_committed_without_retraining(env: Env) -> None:
    s = env.debug("--break-on-failure", str(PIPELINE), extra={"PIPELINE_BUGGY": "1"})
    s.expect(r"build of linreg failed \(AttributeError: 'numpy.ndarray' object has no attribute 'load'\)")
    s.prompt()
    s.run('print("FAILED", type(exc).__name__, type(b).__name__, b.w.shape)', out=r"FAILED AttributeError Model \(3,\)")
    s.run("evaluate_correct(b)")  # the fix, on the live trained build
    s.run('print("DONE", repl_continueBuild(b))', out=r"DONE rref:")
    s.eof()
    rref = _final_rref(s)
    assert s.finish() == 0
    assert env.trainings() == 1
    [real] = env.realizations("linreg")
    assert _rref_of(real) == rref
    assert float((real / "score.txt").read_text()) > 0.99
    assert env.tmp_leftovers() == []


def _line_of(text: str) -> int:
    return next(i for i, line in enumerate(PIPELINE.read_text().splitlines(), 1) if text in line)


def test_banner_names_the_users_file_and_line(env: Env) -> None:
    """Before a build: the stage function that declared the derivation; after a failure:
    the line of the user's realizer that raised. Never a pylightnix file."""
    s = env.debug("--break", "linreg", "--break-on-failure", str(PIPELINE), extra={"PIPELINE_BUGGY": "1"})
    s.expect("paused before building linreg")
    s.expect(r"declared at (\S+):(\d+)")
    assert (s.child.match.group(1), int(s.child.match.group(2))) == (str(PIPELINE), _line_of("def linreg(m"))
    s.prompt()
    s.eof()
    s.expect("build of linreg failed")
    s.expect(r"raised at (\S+):(\d+)")
    where = (s.child.match.group(1), int(s.child.match.group(2)))
    assert where == (str(PIPELINE), _line_of("# bug: numpy arrays have no .load"))
    s.last_prompt = 0  # each pause's shell starts at In [1]
    s.prompt()
    s.eof()
    assert s.finish() == 1


def test_failed_build_left_alone_reraises(env: Env) -> None:
    s = env.debug("--break-on-failure", str(PIPELINE), extra={"PIPELINE_BUGGY": "1"})
    s.expect("build of linreg failed")
    s.prompt()
    s.eof()
    s.expect("linreg: nothing committed; the exception propagates")
    assert s.finish() == 1
    # read without escape codes: on a terminal, Python 3.13+ colours the traceback
    assert "AttributeError: 'numpy.ndarray' object has no attribute 'load'" in s.output()
    assert "RREF" not in s.output()
    assert env.realizations("linreg") == []
    assert env.tmp_leftovers() == []


def test_a_failed_stage_is_printed_once_from_the_users_code(env: Env) -> None:
    """The traceback of a failed stage is printed once: at the pause, from the user's stage on;
    leaving the shell then adds only the error line (pylightnix debug, and plain python with
    PYLIGHTNIX_BREAK_ON_FAILURE). Without a pause, the traceback starts at
    the script, and the engine's frames between realize() and the stage are one line."""
    runs = ((["-m", "pylightnix", "debug", "--break-on-failure", str(PIPELINE)], {}),
            ([str(PIPELINE)], {"PYLIGHTNIX_BREAK_ON_FAILURE": "1"}))
    for args, extra in runs:  # one after the other: both build linreg in the same store
        s = env.spawn(args, {"PIPELINE_BUGGY": "1", **extra})
        s.expect("build of linreg failed")
        s.prompt()
        s.eof()
        assert s.finish() == 1
        out = s.output()
        assert out.count("Traceback (most recent call last)") == 1, out
        assert f'File "{PIPELINE}"' in out and not re.search(r'File "[^"]*/pylightnix/', out), out
        assert out.rstrip().splitlines()[-1] == ("AttributeError: 'numpy.ndarray' object has no attribute 'load'  "
                                                 "(its traceback is above, where the build paused)"), out
    p = _run_no_tty(env, ["-m", "pylightnix", "debug", str(PIPELINE)], {"PIPELINE_BUGGY": "1"})
    assert p.returncode == 1 and p.stderr.count("Traceback (most recent call last)") == 1, p.stderr
    tb = p.stderr[p.stderr.index("Traceback"):].splitlines()
    assert tb[1].startswith(f'  File "{PIPELINE}"') and "in <module>" in tb[1], tb
    folded = [line for line in tb if "frames in pylightnix:" in line]
    assert len(folded) == 1 and folded[0].lstrip().startswith("[") and "realize >" in folded[0], tb
    assert not any(re.search(r'File "[^"]*/pylightnix/', line) for line in tb), tb
    assert tb[-1] == "AttributeError: 'numpy.ndarray' object has no attribute 'load'"


def test_cancel_leaves_nothing(env: Env) -> None:
    s = env.debug("--break", "linreg", str(PIPELINE))
    s.expect("paused before building linreg")
    s.prompt()
    s.run("b = Model(repl_buildargs())")
    s.run("train(b)")  # writes into the temporary output folder
    assert env.tmp_leftovers() != []  # so the check below means something
    s.run("repl_cancel()")
    s.eof()
    s.expect("linreg: build cancelled")
    s.expect("BuildCancelled")
    assert s.finish() == 1
    assert "RREF" not in s.output()
    assert env.trainings() == 1
    assert env.realizations("linreg") == []
    assert env.tmp_leftovers() == []


def test_plain_python_with_env_breakpoints(env: Env) -> None:
    s = env.spawn([str(PIPELINE)], {"PYLIGHTNIX_BREAK": "nothing_here,linreg"})
    s.expect("paused before building linreg")
    s.prompt()
    s.run("b = Model(buildargs)")
    s.run("fit_and_score(b)")
    s.run("repl_continueBuild(b)")
    s.eof()
    rref = _final_rref(s)
    assert s.finish() == 0
    assert env.trainings() == 1
    [real] = env.realizations("linreg")
    assert _rref_of(real) == rref


def test_plain_python_break_on_failure_env(env: Env) -> None:
    s = env.spawn([str(PIPELINE)], {"PYLIGHTNIX_BREAK_ON_FAILURE": "1", "PIPELINE_BUGGY": "1"})
    s.expect("build of linreg failed")
    s.prompt()
    s.run("evaluate_correct(b); repl_continueBuild(b)")
    s.eof()
    _final_rref(s)
    assert s.finish() == 0
    assert env.trainings() == 1


# -- without a terminal ---------------------------------------------------------

def _run_no_tty(env: Env, args, extra=None) -> subprocess.CompletedProcess:
    e = dict(env.vars)
    e.update(extra or {})
    return subprocess.run([PYTHON, *args], env=e, cwd=env.tmp, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def _no_tty_lines(stderr: str):
    return [ln for ln in stderr.splitlines() if "stdin is not a terminal" in ln]


def test_no_tty_continues_by_default(env: Env) -> None:
    p = _run_no_tty(env, ["-m", "pylightnix", "debug", "--break", "linreg", str(PIPELINE)])
    assert p.returncode == 0, p.stderr
    [line] = _no_tty_lines(p.stderr)
    assert "paused before building linreg" in line and "continuing" in line
    assert re.search(RREF, p.stdout)
    assert env.trainings() == 1 and len(env.realizations("linreg")) == 1


def test_no_tty_fail_cancels(env: Env) -> None:
    p = _run_no_tty(env, ["-m", "pylightnix", "debug", "--no-tty=fail", "--break", "linreg", str(PIPELINE)])
    assert p.returncode == 1
    [line] = _no_tty_lines(p.stderr)
    assert "cancelling the build" in line
    assert "BuildCancelled" in p.stderr
    assert env.trainings() == 0 and env.realizations("linreg") == []
    assert env.tmp_leftovers() == []


def test_no_tty_fail_from_env_with_plain_python(env: Env) -> None:
    p = _run_no_tty(env, [str(PIPELINE)], {"PYLIGHTNIX_BREAK": "linreg", "PYLIGHTNIX_NO_TTY": "fail"})
    assert p.returncode == 1
    assert len(_no_tty_lines(p.stderr)) == 1
    assert "BuildCancelled" in p.stderr
    assert env.realizations("linreg") == []


def test_no_tty_failure_propagates_original_exception(env: Env) -> None:
    p = _run_no_tty(env, ["-m", "pylightnix", "debug", "--break-on-failure", str(PIPELINE)],
                    {"PIPELINE_BUGGY": "1"})
    assert p.returncode == 1
    [line] = _no_tty_lines(p.stderr)
    assert "build of linreg failed" in line
    assert p.stderr.rstrip().splitlines()[-1] == \
        "AttributeError: 'numpy.ndarray' object has no attribute 'load'"


# -- the command line -------------------------------------------------------------

@pytest.mark.parametrize("addr", ["0.0.0.0:5678", "192.168.1.10:5678", "example.com:5678", "[::]:5678"])
def test_listen_refuses_non_loopback(env: Env, addr: str) -> None:
    p = _run_no_tty(env, ["-m", "pylightnix", "debug", "--listen", addr, str(PIPELINE)])
    assert p.returncode == 2
    assert "refusing to listen on non-loopback host" in p.stderr
    assert "ARGV" not in p.stdout  # the script never ran


def test_listen_on_loopback_serves_attach_then_runs_script(env: Env, tmp_path: Path) -> None:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hello = tmp_path / "hello.py"
    hello.write_text("print('HELLO', 6 * 7)\n")
    p = _run_no_tty(env, ["-m", "pylightnix", "debug", "--listen", f"127.0.0.1:{port}", str(hello)],
                    {"PYLIGHTNIX_DEBUG_WAIT": "0"})
    assert p.returncode == 0, p.stderr
    assert f"waiting for a debugger to attach on 127.0.0.1:{port}" in p.stderr
    assert "HELLO 42" in p.stdout


def test_listen_with_a_build_breakpoint_waits_for_the_debugger(env: Env, tmp_path: Path) -> None:
    """``--listen`` with ``--break``: the script does not start before a debugger has attached
    (else it would pass the breakpoint unseen); ``--no-wait`` starts it at once."""
    import time
    hello = tmp_path / "hello.py"
    hello.write_text("print('HELLO', 6 * 7, flush=True)\n")
    e = {k: v for k, v in env.vars.items() if k != "PYLIGHTNIX_DEBUG_WAIT"}
    out, err = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out, "w") as out_f, open(err, "w") as err_f:
        proc = subprocess.Popen([PYTHON, "-m", "pylightnix", "debug", "--listen", "127.0.0.1:0", "--break", "linreg",
                                 str(hello)], env=e, cwd=env.tmp, stdin=subprocess.DEVNULL, stdout=out_f,
                                stderr=err_f)
    try:
        deadline = time.monotonic() + 60
        while "waiting for a debugger to attach" not in err.read_text():
            assert proc.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.1)
        time.sleep(3)
        assert proc.poll() is None, err.read_text()  # still held: nothing attached
        assert "HELLO" not in out.read_text() and "runs meanwhile" not in err.read_text()
    finally:
        proc.kill()
        proc.wait()
    p = subprocess.run([PYTHON, "-m", "pylightnix", "debug", "--listen", "127.0.0.1:0", "--break", "linreg",
                        "--no-wait", str(hello)], env=e, cwd=env.tmp, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "HELLO 42" in p.stdout, p.stderr
    assert "the script runs meanwhile" in p.stderr
    usage = subprocess.run([PYTHON, "-m", "pylightnix", "debug", "-h"], env=e, capture_output=True, text=True)
    assert "[--listen HOST:PORT [--wait | --no-wait]]" in " ".join(usage.stdout.split())


def test_split_argv_gives_everything_after_script_to_it() -> None:
    assert split_argv(["--break", "a", "--no-tty=fail", "s.py", "--break", "b", "-v"]) == \
        (["--break", "a", "--no-tty=fail", "s.py"], ["--break", "b", "-v"])
    assert split_argv(["--break-on-failure", "--listen", "127.0.0.1:1", "s.py"]) == \
        (["--break-on-failure", "--listen", "127.0.0.1:1", "s.py"], [])
    assert split_argv(["--", "-odd-name.py", "x"]) == (["--", "-odd-name.py"], ["x"])


def test_parse_listen() -> None:
    assert parse_listen("127.0.0.1:5678") == ("127.0.0.1", 5678)
    assert parse_listen("localhost:0") == ("localhost", 0)
    assert parse_listen("[::1]:4711") == ("::1", 4711)
    for bad in ("5678", "127.0.0.1:", "127.0.0.1:x", "127.0.0.1:70000", "10.0.0.1:1"):
        with pytest.raises(PylightnixError):
            parse_listen(bad)


def test_no_tty_policy_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYLIGHTNIX_NO_TTY", raising=False)
    assert no_tty_policy() == "continue"
    assert no_tty_policy("fail") == "fail"
    monkeypatch.setenv("PYLIGHTNIX_NO_TTY", "FAIL")
    assert no_tty_policy() == "fail"
    monkeypatch.setenv("PYLIGHTNIX_NO_TTY", "maybe")
    with pytest.raises(PylightnixError, match="PYLIGHTNIX_NO_TTY"):
        no_tty_policy()


def test_script_exit_status_and_exceptions_propagate(env: Env, tmp_path: Path) -> None:
    exiting = tmp_path / "exiting.py"
    exiting.write_text("import sys\nprint('ARGS', sys.argv)\nprint('MAIN', __name__)\nsys.exit(3)\n")
    p = _run_no_tty(env, ["-m", "pylightnix", "debug", str(exiting), "a", "--b"])
    assert p.returncode == 3
    assert f"ARGS [{str(exiting)!r}, 'a', '--b']" in p.stdout
    assert "MAIN __main__" in p.stdout

    raising = tmp_path / "raising.py"
    raising.write_text("def f():\n    raise KeyError('boom')\nf()\n")
    p = _run_no_tty(env, ["-m", "pylightnix", "debug", str(raising)])
    plain = _run_no_tty(env, [str(raising)])
    assert p.returncode == plain.returncode == 1
    assert p.stderr == plain.stderr  # the same traceback as plain python

    p = _run_no_tty(env, ["-m", "pylightnix", "debug", str(tmp_path / "missing.py")])
    assert p.returncode == 2 and "missing.py" in p.stderr


def test_killed_while_paused_leaves_a_usable_store(env: Env) -> None:
    import signal
    s = env.debug("--break", "linreg", str(PIPELINE))
    s.expect("paused before building linreg")
    s.prompt()
    s.run("b = Model(repl_buildargs())")
    s.run("train(b)")
    assert env.tmp_leftovers() != []
    s.child.kill(signal.SIGKILL)
    s.child.expect(pexpect.EOF, timeout=TIMEOUT)
    s.child.close()
    assert s.child.signalstatus == signal.SIGKILL
    assert env.realizations("linreg") == []
    # the next run is not blocked by the dead process's lock and builds normally
    p = _run_no_tty(env, [str(PIPELINE)])
    assert p.returncode == 0, p.stderr
    assert env.trainings() == 2 and len(env.realizations("linreg")) == 1
    v = _run_no_tty(env, ["-m", "pylightnix", "verify"])
    assert v.returncode == 0, v.stdout
    g = _run_no_tty(env, ["-m", "pylightnix", "gc"])
    assert g.returncode == 0, g.stderr
    assert env.tmp_leftovers() == []


def test_background_job_does_not_stop_on_the_terminal(env: Env) -> None:
    # a job in its own process group is not the terminal's foreground: reading the
    # terminal would stop it (SIGTTIN), so the pause must take the no-terminal path
    launcher = ("import os, sys\n"
                "pid = os.fork()\n"
                "if pid == 0:\n"
                "    os.setpgid(0, 0)\n"
                "    os.execv(sys.executable, [sys.executable, sys.argv[1]])\n"
                "sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n")
    s = env.spawn(["-c", launcher, str(PIPELINE)], {"PYLIGHTNIX_BREAK": "linreg"})
    s.expect(r"paused before building linreg \(dref:\S+\), but this process runs in the background "
             r"of its terminal, so no shell can open; continuing")
    _final_rref(s)
    assert s.finish() == 0
    assert "In [" not in s.output()
    assert env.trainings() == 1 and len(env.realizations("linreg")) == 1
