"""SIGKILL a realization at random moments, over and over, and check the store.

Each round starts the crashy pipeline (many small stages, nested multi-file
outputs, a two-output stage) and kills it with SIGKILL once it has started a
random number of stage builds, plus a random delay (fixed seed). After every kill ``python -m pylightnix verify`` must pass and
every realization folder must hold ``context.json``: a realization is either
absent or complete. Rounds cycle over three variants of the closure, so kills
hit both fresh builds and builds resumed after a crash. Finally every variant
realizes normally, and gives the same RRef as in a store that never saw a crash.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Iterator, Optional

import pytest

from robust_support import builds, cli, kill_group, realization_dirs, run_pipeline, spawn, temporaries

SEED = 20261125
ROUNDS = 10
DAG = ["--width", "3", "--depth", "5", "--files", "10", "--sleep", "0.02"]
TAGS = ["a", "b", "c"]


def _started_by(log: Path, pid: int) -> int:
    """How many stage builds process ``pid`` has started (from the O_APPEND build log)."""
    if not log.exists():
        return 0
    return sum(1 for line in log.read_text().splitlines() if line.split()[1] == str(pid))


@pytest.fixture(params=["same-fs", "cross-fs"])
def build_tmp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Optional[Path]]:
    """PYLIGHTNIX_TMP: default (inside the root) or on another filesystem, where a
    finished build is copied into the store through a staging folder (EXDEV)."""
    if request.param == "same-fs":
        yield None
        return
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem (/dev/shm) for the cross-device case")
    d = Path(tempfile.mkdtemp(prefix="plx-robust-", dir=shm))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_sigkill_at_random_moments_leaves_a_consistent_store(tmp_path: Path, build_tmp: Optional[Path]) -> None:
    rng = random.Random(SEED)
    root, log = tmp_path / "root", tmp_path / "builds.log"
    reference = {tag: run_pipeline(tmp_path / "ref", tmp_path / "ref.log", *DAG, "--tag", tag, tmp=build_tmp)
                 for tag in TAGS}

    killed_alive = 0
    for i in range(ROUNDS):
        tag = TAGS[i % len(TAGS)]
        # kill once this process has started its k-th stage build, plus a random few ms:
        # the kill lands inside a realizer, a hash, a copy or a commit, whatever the machine's speed
        k, extra = rng.randint(1, 7), rng.uniform(0.0, 0.06)
        p = spawn(root, log, *DAG, "--tag", tag, tmp=build_tmp)
        try:
            deadline = time.monotonic() + 60
            while p.poll() is None and _started_by(log, p.pid) < k and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(extra)
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
                killed_alive += 1
            p.wait(timeout=120)
        finally:
            kill_group(p)
        v = cli(root, "verify", tmp=build_tmp)
        assert v.returncode == 0, f"round {i} (tag {tag}, kill after build {k} + {extra:.3f}s): {v.stdout}"
        missing = [r for r in realization_dirs(root) if not (r / "context.json").is_file()]
        assert missing == [], f"round {i}: realizations without context.json: {missing}"

    print(f"{killed_alive} of {ROUNDS} kills hit a running build; {sum(builds(log).values())} stage builds started")
    assert killed_alive >= ROUNDS // 2, f"only {killed_alive} kills hit a running build"
    assert sum(builds(log).values()) > 0
    for tag in TAGS:
        assert run_pipeline(root, log, *DAG, "--tag", tag, tmp=build_tmp) == reference[tag]
    assert cli(root, "verify", tmp=build_tmp).returncode == 0
    g = cli(root, "gc", tmp=build_tmp)
    assert g.returncode == 0, g.stderr
    assert temporaries(root, build_tmp) == []
    assert cli(root, "verify", tmp=build_tmp).returncode == 0
    built = sum(builds(log).values())
    for tag in TAGS:  # gc without --keep removed only leftovers: still realized, nothing rebuilt
        assert run_pipeline(root, log, *DAG, "--tag", tag, tmp=build_tmp) == reference[tag]
    assert sum(builds(log).values()) == built
