"""Identical builds get identical RRefs, build times included: a build resumed
after ``kill -9`` ends with exactly the realizations of a clean build in an
empty store, although every realization records its (different) build time
and other ``_`` metadata."""
from __future__ import annotations

import signal
from pathlib import Path

from robust_support import cli, kill_group, realization_dirs, run_pipeline, spawn, temporaries

DAG = ["--width", "3", "--depth", "3", "--files", "4", "--buildtime"]


def _wait_line(p, text: str) -> bool:
    for line in p.stdout:
        if line.strip() == text:
            return True
    return False


def _realizations(root: Path) -> dict:
    """RRef folder (``<dref dir>/<rhash>``) -> its build time."""
    return {f"{r.parent.name}/{r.name}": (r / "__buildtime__.txt").read_text() for r in realization_dirs(root)}


def test_build_resumed_after_sigkill_equals_a_clean_build(tmp_path: Path) -> None:
    clean = run_pipeline(tmp_path / "clean", tmp_path / "clean.log", *DAG)

    root, log = tmp_path / "crashed", tmp_path / "crashed.log"
    p = spawn(root, log, *DAG, "--hang", "L2_1")
    try:
        assert _wait_line(p, "HANGING"), p.stderr.read()  # layers 0 and 1 are in the store, L2_1 is building
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        kill_group(p)
    before = _realizations(root)
    assert before, "the killed run committed nothing; the test would prove nothing"

    resumed = run_pipeline(root, log, *DAG)
    assert resumed == clean
    after, reference = _realizations(root), _realizations(tmp_path / "clean")
    assert sorted(after) == sorted(reference)  # every realization, not only the target
    assert all(after[r] != reference[r] for r in after)  # build times differ, RRefs do not
    assert all(after[r] == t for r, t in before.items())  # what survived the kill was kept, not rebuilt
    assert cli(root, "verify").returncode == 0
    assert cli(root, "gc").returncode == 0
    assert temporaries(root) == []
