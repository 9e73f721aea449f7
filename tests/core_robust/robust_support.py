"""Helpers for the core robustness tests: run the crashy pipeline and the CLI in
real subprocesses against a private store, and inspect the store on disk."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
PIPELINE = Path(__file__).resolve().parent / "crashy_pipeline.py"
PYTHON = sys.executable


def env_for(root: Path, **extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    for k in ("PYLIGHTNIX_BREAK", "PYLIGHTNIX_BREAK_ON_FAILURE", "PYLIGHTNIX_TMP", "PYLIGHTNIX_STORE"):
        env.pop(k, None)
    env.update(PYLIGHTNIX_ROOT=str(root), PYLIGHTNIX_PROGRESS="0",
               PYTHONPATH=str(REPO) + os.pathsep + env.get("PYTHONPATH", ""), **extra)
    return env


def spawn(root: Path, log: Path, *args: str, tmp: Optional[Path] = None) -> subprocess.Popen:
    """Start the crashy pipeline; ``tmp`` sets PYLIGHTNIX_TMP (e.g. on another filesystem)."""
    extra = {"PYLIGHTNIX_TMP": str(tmp)} if tmp is not None else {}
    return subprocess.Popen([PYTHON, str(PIPELINE), str(log), *args], env=env_for(root, **extra),
                            cwd=str(root.parent), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rref_of(out: str) -> str:
    lines = [ln for ln in out.splitlines() if ln.startswith("RREF ")]
    assert len(lines) == 1, out
    return lines[0].split()[1]


def run_pipeline(root: Path, log: Path, *args: str, timeout: float = 120, tmp: Optional[Path] = None) -> str:
    p = spawn(root, log, *args, tmp=tmp)
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err
    return rref_of(out)


def cli(root: Path, *args: str, timeout: float = 120, tmp: Optional[Path] = None) -> subprocess.CompletedProcess:
    extra = {"PYLIGHTNIX_TMP": str(tmp)} if tmp is not None else {}
    return subprocess.run([PYTHON, "-m", "pylightnix", *args], env=env_for(root, **extra), cwd=str(root.parent),
                          capture_output=True, text=True, timeout=timeout)


def builds(log: Path) -> Counter:
    """How many times each stage's realizer started, over all processes."""
    if not log.exists():
        return Counter()
    return Counter(line.split()[0] for line in log.read_text().splitlines())


def realization_dirs(root: Path) -> List[Path]:
    store = root / "store-v0"
    if not store.exists():
        return []
    return [r for d in sorted(store.iterdir()) if d.is_dir() and not d.name.startswith(".")
            for r in sorted(d.iterdir()) if r.is_dir() and not r.name.startswith(".")]


def temporaries(root: Path, tmp: Optional[Path] = None) -> List[Path]:
    """Build temporaries anywhere: the tmp area and dot-entries in the store."""
    out: List[Path] = []
    tmp = tmp if tmp is not None else root / "tmp"
    if tmp.exists():
        out += sorted(tmp.iterdir())
    store = root / "store-v0"
    if store.exists():
        for d in store.iterdir():
            if d.name.startswith((".tmp-", ".staging-")):
                out.append(d)
            elif d.is_dir() and not d.name.startswith("."):
                out += [s for s in d.iterdir() if s.name.startswith((".tmp-", ".staging-"))]
    return out


def kill_group(p: Optional[subprocess.Popen]) -> None:
    if p is not None and p.poll() is None:
        p.kill()
        p.wait(timeout=30)
