"""Support for the terminal tests: a private store per test, and a real
pseudo-terminal (pexpect) driving ``python -m pylightnix debug`` or plain
``python`` on the small numpy pipeline next to this file."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional

import pexpect

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PIPELINE = HERE / "pipeline.py"
PYTHON = sys.executable
#: IPython's prompt; prompt_toolkit puts colour codes around the number
PROMPT = re.compile(r"In \[(?:\x1b\[[0-9;]*m)*(\d+)(?:\x1b\[[0-9;]*m)*\]: ")
TIMEOUT = 60


class Session:
    """A pipeline process on a pseudo-terminal, with helpers to type into IPython."""

    def __init__(self, child: pexpect.spawn, log: Path) -> None:
        self.child = child
        self.log = log
        self.last_prompt = 0

    def expect(self, pattern, timeout: float = TIMEOUT) -> "re.Match[str]":
        self.child.expect(pattern, timeout=timeout)
        return self.child.match

    def prompt(self) -> None:
        """Wait for a new IPython prompt (prompt_toolkit redraws old ones while typing).

        Keys must only be sent once the prompt is up: between prompts the tty is
        in cooked mode, where a Ctrl-D would be eaten by the line discipline."""
        while True:
            n = int(self.expect(PROMPT).group(1))
            if n > self.last_prompt:
                self.last_prompt = n
                return

    def run(self, line: str, out: Optional[str] = None) -> Optional["re.Match[str]"]:
        """Type one line at the prompt, expect ``out`` (a regex) in its output,
        and wait for the next prompt."""
        self.child.sendline(line)
        m = self.expect(out) if out is not None else None
        self.prompt()
        return m

    def eof(self) -> None:
        """Ctrl-D at the prompt: leave the shell."""
        self.child.sendcontrol("d")

    def finish(self, timeout: float = TIMEOUT) -> int:
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.child.close()
        return self.child.exitstatus if self.child.exitstatus is not None else -(self.child.signalstatus or 0)

    def output(self) -> str:
        """Everything the process wrote so far, escape codes removed."""
        raw = self.log.read_text(errors="replace")
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw).replace("\r", "")


class Env:
    """A private ``PYLIGHTNIX_ROOT`` and the environment of one test's processes."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.root = tmp / "pylightnix"
        self.count = tmp / "train-count.txt"
        self.sessions: List[Session] = []
        self.vars: Dict[str, str] = dict(os.environ)
        for k in ("PYLIGHTNIX_BREAK", "PYLIGHTNIX_BREAK_ON_FAILURE", "PYLIGHTNIX_NO_TTY",
                  "PYLIGHTNIX_TMP", "PIPELINE_BUGGY"):
            self.vars.pop(k, None)
        self.vars.update({
            "PYLIGHTNIX_ROOT": str(self.root),
            "PIPELINE_TRAIN_COUNT": str(self.count),
            "IPYTHONDIR": str(tmp / "ipython"),
            "PYTHONPATH": str(REPO) + os.pathsep + self.vars.get("PYTHONPATH", ""),
            "PROMPT_TOOLKIT_NO_CPR": "1",  # pexpect does not answer cursor queries
            "TERM": "xterm-256color",
            "COLUMNS": "200",
            "LINES": "50",
            "PYTHONUNBUFFERED": "1",
        })

    def trainings(self) -> int:
        return len(self.count.read_text().splitlines()) if self.count.exists() else 0

    def derivation_dirs(self, name: str) -> List[Path]:
        store = self.root / "store-v0"
        return sorted(store.glob(f"*-{name}")) if store.exists() else []

    def realizations(self, name: str) -> List[Path]:
        return [r for d in self.derivation_dirs(name) for r in sorted(d.iterdir()) if r.is_dir()]

    def tmp_leftovers(self) -> List[Path]:
        tmpdir = self.root / "tmp"
        return sorted(tmpdir.iterdir()) if tmpdir.exists() else []

    def spawn(self, args: List[str], extra: Optional[Dict[str, str]] = None) -> Session:
        env = dict(self.vars)
        env.update(extra or {})
        log = self.tmp / f"pty-{len(list(self.tmp.glob('pty-*')))}.log"
        child = pexpect.spawn(PYTHON, args, env=env, cwd=str(self.tmp), encoding="utf-8",
                              codec_errors="replace", timeout=TIMEOUT, dimensions=(50, 200))
        child.logfile_read = open(log, "w")
        session = Session(child, log)
        self.sessions.append(session)
        return session

    def close(self) -> None:
        """Kill whatever is still running and close the logs."""
        for s in self.sessions:
            if s.child.isalive():
                s.child.terminate(force=True)
            s.child.logfile_read.close()

    def debug(self, *args: str, extra: Optional[Dict[str, str]] = None) -> Session:
        """``python -m pylightnix debug ARGS`` on a pseudo-terminal."""
        return self.spawn(["-m", "pylightnix", "debug", *args], extra)


