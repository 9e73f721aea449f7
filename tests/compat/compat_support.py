"""Runs the programs of ``programs/`` (written for the original pylightnix) in a
fresh store each, with a given interpreter. Shared by the tests and by
bench/compat_crosscheck.py, which runs them against pylightnix 0.1.0."""
import os
import subprocess
import sys
import tempfile
from typing import List, NamedTuple, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
PROGRAMS = os.path.join(HERE, "programs")
REPO = os.path.dirname(os.path.dirname(HERE))


class Run(NamedTuple):
    program: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and "PASS" in self.stdout


def programs() -> List[str]:
    return sorted(f for f in os.listdir(PROGRAMS) if f.endswith(".py"))


def anchor_note(program: str) -> Optional[str]:
    """The program's ``# anchor: fails -- why`` line: a known difference from 0.1.0."""
    with open(os.path.join(PROGRAMS, program), encoding="utf-8") as f:
        for line in f:
            if line.startswith("# anchor:"):
                return line[len("# anchor:"):].strip()
    return None


def run_program(program: str, python: str = sys.executable, extra_args: Optional[List[str]] = None,
                ours: bool = True, timeout: float = 120) -> Run:
    """Run ``program`` unchanged, in a new PYLIGHTNIX_ROOT, from an empty working folder."""
    with tempfile.TemporaryDirectory(prefix="compat-") as tmp:
        env = dict(os.environ, PYLIGHTNIX_ROOT=os.path.join(tmp, "root"), PYLIGHTNIX_PROGRESS="0")
        for k in ("PYLIGHTNIX_STORE", "PYLIGHTNIX_TMP"):
            env.pop(k, None)
        if ours:
            env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
        else:
            env.pop("PYTHONPATH", None)
        p = subprocess.run([python, *(extra_args or []), os.path.join(PROGRAMS, program)], cwd=tmp, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        return Run(program, p.returncode, p.stdout, p.stderr)
