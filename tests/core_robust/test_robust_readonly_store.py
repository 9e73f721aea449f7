"""A store on a read-only filesystem still serves cached realizations: realize registers
what it uses for gc (a pin), and must not fail where it cannot write one. The store is
bind-mounted read-only in a private mount namespace (needs root and unshare)."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from robust_support import PYTHON, cli, env_for, run_pipeline

ARGS = ("--width", "2", "--depth", "2", "--files", "1")


def _can_mount_readonly(tmp_path: Path) -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    d = tmp_path / "probe"
    d.mkdir()
    r = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {d} {d} && mount -o remount,bind,ro {d}"],
                       capture_output=True)
    return r.returncode == 0


def test_cached_realize_on_a_read_only_store(tmp_path: Path) -> None:
    if not _can_mount_readonly(tmp_path):
        pytest.skip("needs root and unshare -m to bind-mount the store read-only")
    root, log = tmp_path / "root", tmp_path / "builds.log"
    rref = run_pipeline(root, log, *ARGS)
    store = root / "store-v0"
    pipeline = Path(__file__).resolve().parent / "crashy_pipeline.py"
    script = (f"mount --bind {store} {store} && mount -o remount,bind,ro {store} && "
              f"{PYTHON} {pipeline} {tmp_path / 'ro.log'} {' '.join(ARGS)} && "
              f"{PYTHON} -m pylightnix verify")
    r = subprocess.run(["unshare", "-m", "sh", "-c", script], env=env_for(root), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"RREF {rref}" in r.stdout and "OK" in r.stdout
    assert not (tmp_path / "ro.log").exists()  # nothing was built
    assert cli(root, "verify").returncode == 0
