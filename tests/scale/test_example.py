"""examples/sweep.py runs on a process pool, and a second run builds nothing. (Stages from
``__main__`` on Dask workers are covered by test_stop.py's driver programs.)"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_sweep_example(tmp_path):
    executor = "processes:2"
    env = dict(os.environ, PYLIGHTNIX_ROOT=str(tmp_path / "root"),
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYLIGHTNIX_EXECUTOR", None)
    cmd = [sys.executable, str(REPO / "examples" / "sweep.py"), "--models", "2", "--executor", executor]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("dref:") == 2 and "poly1_lr0_01" in first.stdout
    assert "building poly3_lr0_01 on process pool" in first.stderr  # progress says where it runs
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout == first.stdout
    assert "building" not in again.stderr
