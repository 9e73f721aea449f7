"""The progress frontend, seen from outside: a real process on a pseudo-terminal
(the live display) and on a pipe (plain lines), and silence with PYLIGHTNIX_PROGRESS=0."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pexpect

REPO = Path(__file__).resolve().parents[2]

# A chain s0 -> s1 -> ... ; every stage prints one line while it builds, and the
# last one takes long enough for the live display to redraw its elapsed time.
CHAIN = '''
import sys, time
from pylightnix import build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv, realize

def stage(m, prev, i, n):
    def build(b):
        time.sleep(1.3 if i == n - 1 else 0.05)
        print(f"stage {i} says hello", flush=True)
        with open(build_outpath(b) + "/x", "w") as f:
            f.write(str(i))
    return mkdrv(m, mkconfig({"name": f"s{i}", "prev": prev}), match_only(), build_wrapper(build))

def chain(m, n):
    prev = None
    for i in range(n):
        prev = stage(m, prev, i, n)
    return prev

print(realize(instantiate(chain, int(sys.argv[1]))), flush=True)
'''

# The same chain built on two worker processes, which print to the same terminal.
ON_WORKERS = CHAIN.replace("from pylightnix import",
                           "from pylightnix.scale.executors import Processes\nfrom pylightnix import") \
    .replace("print(realize(instantiate(chain, int(sys.argv[1]))), flush=True)",
             "if __name__ == '__main__':\n"
             "    with Processes(2) as pool:\n"
             "        print(realize(instantiate(chain, int(sys.argv[1])), executor=pool), flush=True)")

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _env(tmp: Path, **extra: str) -> Dict[str, str]:
    env = dict(os.environ, PYLIGHTNIX_ROOT=str(tmp / "root"), PYTHONPATH=str(REPO), TERM="xterm-256color")
    env.pop("PYLIGHTNIX_PROGRESS", None)
    env.update(extra)
    return env


def _script(tmp: Path, text: str = CHAIN) -> str:
    p = tmp / "chain.py"
    p.write_text(text)
    return str(p)


def _piped(tmp: Path, n: int, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, _script(tmp), str(n)], env=_env(tmp, **extra), capture_output=True,
                          text=True, timeout=120, check=True)


def _pty(tmp: Path, n: int, text: str = CHAIN, **extra: str) -> str:
    child = pexpect.spawn(sys.executable, [_script(tmp, text), str(n)], env=_env(tmp, **extra), encoding="utf-8",
                          timeout=120, dimensions=(40, 160))
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0, child.before
    return child.before


def test_pipe_prints_one_line_per_built_stage_and_a_summary(tmp_path: Path) -> None:
    first = _piped(tmp_path, 2)
    lines: List[str] = first.stderr.splitlines()
    assert lines[:2] == ["[pylightnix] building s0 (stage 1 of 2)", "[pylightnix] building s1 (stage 2 of 2)"]
    assert re.fullmatch(r"\[pylightnix\] realized s1: 2 built, 0 cached, \d+\.\d s", lines[2]), lines
    assert len(lines) == 3 and "\x1b" not in first.stderr
    assert "stage 0 says hello" in first.stdout
    # two more stages on top of the cached ones: only those are reported
    more = _piped(tmp_path, 4).stderr.splitlines()
    assert [l for l in more if "building" in l] == ["[pylightnix] building s2 (stage 3 of 4)",
                                                    "[pylightnix] building s3 (stage 4 of 4)"]
    assert re.fullmatch(r"\[pylightnix\] realized s3: 2 built, 2 cached, \d+\.\d s", more[-1]), more
    # everything cached: nothing to say
    assert _piped(tmp_path, 4).stderr == ""


def test_progress_0_silences_pipe_and_terminal(tmp_path: Path) -> None:
    piped = _piped(tmp_path, 2, PYLIGHTNIX_PROGRESS="0")
    assert piped.stderr == "" and piped.stdout.startswith("stage 0 says hello")
    out = _pty(tmp_path, 3, PYLIGHTNIX_PROGRESS="0")
    assert "pylightnix]" not in out and "building" not in out and "\x1b" not in out
    assert "stage 2 says hello" in out


def test_terminal_shows_a_live_display(tmp_path: Path) -> None:
    _piped(tmp_path, 2, PYLIGHTNIX_PROGRESS="0")  # two cached stages below the new ones
    raw = _pty(tmp_path, 4)
    plain = ANSI.sub("", raw)
    # one line redrawn in place (carriage returns and erase-line codes), not one line per stage
    assert "\x1b[2K" in raw
    assert "[pylightnix] building s2 (stage 3 of 4, 2 cached)" in plain
    assert "[pylightnix] building s3 (stage 4 of 4, 2 cached)" in plain
    # the elapsed time ticks while the last stage (1.3 s) runs, without any event from the engine
    assert re.search(r"s3 \(stage 4 of 4, 2 cached\)[^\n]*0:00:01", plain), plain
    # the stage's own output is printed above the display: the display's line is erased first
    assert re.search(r"\r\x1b\[2Kstage 3 says hello\r\n", raw), raw
    # at the end the display is gone and the summary stays
    assert re.search(r"\[pylightnix\] realized s3: 2 built, 2 cached, \d+\.\d s", plain), plain
    last = [l for l in re.split(r"[\r\n]+", plain) if l.strip()]
    assert last[-1].startswith("rref:") and last[-2].startswith("[pylightnix] realized s3")


def test_worker_prints_never_land_on_the_progress_line(tmp_path: Path) -> None:
    """Stages built on worker processes print straight to the terminal: the progress is
    then shown one line per stage, so each print starts a line (not ``0:00:00stage 1``)."""
    plain = ANSI.sub("", _pty(tmp_path, 3, ON_WORKERS)).replace("\r", "")
    for i in range(3):
        assert re.search(rf"(^|\n)stage {i} says hello\n", plain), plain
    assert "[pylightnix] building s2 on process pool (stage 3 of 3)" in plain, plain
    assert re.search(r"\[pylightnix\] realized s2: 3 built, 0 cached", plain), plain


def test_live_display_leaves_the_terminal_to_the_pause_shell(env) -> None:
    """At a build pause the live line is erased and stops redrawing, so the IPython prompt
    stays intact; after the shell the display resumes and ends with the summary."""
    from terminal_support import PIPELINE

    s = env.debug("--break", "linreg", str(PIPELINE))
    s.expect(r"\[pylightnix\] building dataset \(stage 1 of 2\)")  # the live line, while dataset builds
    s.expect("paused before building linreg")
    s.prompt()
    # nothing redraws over the prompt while the user thinks (rich refreshes 10 times a second)
    try:
        late = s.child.read_nonblocking(4096, timeout=1.5)
    except pexpect.TIMEOUT:
        late = ""
    assert "building" not in late and "\x1b[2K" not in late, repr(late)
    s.eof()  # continue: the realizer runs
    s.expect(r"\[pylightnix\] building linreg \(stage 2 of 2\)")
    s.expect(r"\[pylightnix\] realized linreg: 2 built, 0 cached, \d+\.\d s")
    s.expect("RREF rref:")
    assert s.finish() == 0
