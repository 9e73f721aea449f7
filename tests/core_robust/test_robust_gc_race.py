"""gc while another process builds (issue 8, section 2): `gc --keep X` in a loop must never
remove what a running realize holds the lock of, builds, or has matched; every realize of a
200-stage chain survives. Real subprocesses race on one store."""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

from robust_support import PYTHON, cli, env_for, run_pipeline

GC_LOOP = """
import contextlib, io, os, sys
from pylightnix.frontends.cli import main
stop, keep = sys.argv[1], sys.argv[2]
n = spared = 0
while not os.path.exists(stop):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = main(["gc", "--keep", keep])
    if rc != 0:
        sys.exit(f"gc failed with {rc}")
    n += 1
    spared += out.getvalue().count("kept ")
print("GC", n, spared, flush=True)
"""
CHAIN = ("--width", "1", "--depth", "200", "--files", "1")


def test_realize_survives_a_gc_loop(tmp_path: Path) -> None:
    root, log = tmp_path / "root", tmp_path / "builds.log"
    keep = run_pipeline(root, log, "--width", "1", "--depth", "1", "--tag", "kept")
    stop = tmp_path / "stop"
    gc = subprocess.Popen([PYTHON, "-c", GC_LOOP, str(stop), keep], env=env_for(root), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        for i in range(4):
            run_pipeline(root, log, *CHAIN, "--tag", f"chain{i}", timeout=300)  # asserts exit code 0
    finally:
        time.sleep(0.5)  # let gc collect the last chain once it is no longer in use
        stop.touch()
        out, err = gc.communicate(timeout=120)
    assert gc.returncode == 0, err
    _, loops, spared = out.split()
    assert int(loops) >= 4 and int(spared) > 0, out  # gc really ran while chains were being built
    v = cli(root, "verify")
    assert v.returncode == 0, v.stdout
    assert cli(root, "ls", "--json").returncode == 0
