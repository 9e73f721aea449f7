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


FORCE_REBUILD = """
import sys, time
from os.path import exists, join
from pylightnix import *
store_initialize()
def stage(m):
    def _realize(b):
        time.sleep(0.05)
        with open(join(build_outpath(b), 'model.txt'), 'w') as f:
            f.write('weights')
    return mkdrv(m, mkconfig({'name': 'model'}), match_latest(), build_wrapper(_realize, buildtime=True))
while not exists(sys.argv[1]):
    time.sleep(0.002)
for _ in range(3):
    print('RREF', realize(instantiate(stage), force_rebuild=True), flush=True)
"""


def test_concurrent_force_rebuilds_of_a_deterministic_stage_keep_one_realization(tmp_path: Path) -> None:
    """Each rebuild finds its RRef already stored: no error, no second copy, no temporaries left."""
    import subprocess
    import sys
    import time
    from robust_support import env_for
    root, go = tmp_path / "root", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", FORCE_REBUILD, str(go)], env=env_for(root), cwd=str(tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    try:
        time.sleep(0.5)
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            kill_group(p)
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    rrefs = {ln.split()[1] for out, _ in outs for ln in out.splitlines() if ln.startswith("RREF ")}
    assert len(rrefs) == 1, rrefs
    assert len(realization_dirs(root)) == 1
    assert temporaries(root) == []
    assert cli(root, "verify").returncode == 0


def test_verify_checks_what_is_hashed_and_only_that(tmp_path: Path, monkeypatch) -> None:
    """Damage to an artifact is reported; an edited ``_`` metadata file is not (it is not hashed)."""
    import os
    import pylightnix as P
    from pylightnix.core import store as store_mod
    monkeypatch.setenv("PYLIGHTNIX_ROOT", str(tmp_path / "root"))
    saved = store_mod.use_store(None)
    try:
        P.store_initialize()

        def stage(m):
            def _realize(b):
                o = P.build_outpath(b)
                for fn in ("model.txt", "_log.txt"):
                    with open(os.path.join(o, fn), "w") as f:
                        f.write("v1")
            return P.mkdrv(m, P.mkconfig({"name": "m"}), P.match_only(), P.build_wrapper(_realize))
        rref = P.realize(P.instantiate(stage))
        folder = P.rref2path(rref)
        for fn in ("_log.txt", "__buildtime__.txt", "model.txt"):
            path = os.path.join(folder, fn)
            assert os.stat(path).st_mode & 0o222 == 0  # metadata is sealed read-only too
            os.chmod(path, 0o644)
            with open(path, "a") as f:
                f.write("edited")
            problems = P.store_verify()
            assert problems == ([] if fn.startswith("_") else [f"{rref}: content does not match its hash"])
    finally:
        store_mod.use_store(saved)
