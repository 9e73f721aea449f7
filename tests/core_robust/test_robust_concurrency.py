"""Several real processes realizing the same closure at once; builders that die holding locks."""
from __future__ import annotations

import signal
import time
from pathlib import Path

from robust_support import (builds, cli, kill_group, realization_dirs, rref_of, run_pipeline, spawn,
                            temporaries)

DAG = ["--width", "3", "--depth", "3", "--files", "4"]
STAGES = {f"L{k}_{j}" for k in range(3) for j in range(3)} | {"pair", "top"}


def _wait_line(p, text: str) -> bool:
    """Read p's stdout until a line equals ``text`` (False at EOF: p died)."""
    for line in p.stdout:
        if line.strip() == text:
            return True
    return False


def test_four_processes_agree_and_build_each_stage_once(tmp_path: Path) -> None:
    root, log, go = tmp_path / "root", tmp_path / "builds.log", tmp_path / "go"
    procs = [spawn(root, log, *DAG, "--sleep", "0.05", "--go", str(go)) for _ in range(4)]
    try:
        time.sleep(0.8)  # let all four start and wait at the barrier
        go.touch()
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            outs.append(rref_of(out))
    finally:
        for p in procs:
            kill_group(p)
    assert len(set(outs)) == 1, outs
    counts = builds(log)
    assert set(counts) == STAGES
    assert all(n == 1 for n in counts.values()), counts  # match_only stages: built once across processes
    v = cli(root, "verify")
    assert v.returncode == 0, v.stdout
    assert len(realization_dirs(root)) == len(STAGES) + 1  # pair has two outputs
    assert temporaries(root) == []
    # the same closure in a fresh store, built by one process, gives the same result
    assert run_pipeline(tmp_path / "fresh", tmp_path / "fresh.log", *DAG) == outs[0]


def test_killed_lock_holder_releases_waiting_builders(tmp_path: Path) -> None:
    root, log = tmp_path / "root", tmp_path / "builds.log"
    hung = spawn(root, log, *DAG, "--hang", "L1_1")
    waiters = []
    try:
        assert _wait_line(hung, "HANGING")  # it holds L1_1's lock now
        waiters = [spawn(root, log, *DAG) for _ in range(2)]
        time.sleep(1.0)  # the waiters reach L1_1's lock and block on it
        assert all(w.poll() is None for w in waiters), "waiters finished while the lock was held"
        assert builds(log)["L1_1"] == 1
        hung.send_signal(signal.SIGKILL)
        hung.wait(timeout=30)
        outs = []
        for w in waiters:
            out, err = w.communicate(timeout=60)
            assert w.returncode == 0, err
            outs.append(rref_of(out))
    finally:
        kill_group(hung)
        for w in waiters:
            kill_group(w)
    assert len(set(outs)) == 1
    counts = builds(log)
    assert counts["L1_1"] == 2  # the killed builder, then exactly one of the waiters
    assert all(n == 1 for s, n in counts.items() if s != "L1_1"), counts
    assert cli(root, "verify").returncode == 0
    # the killed builder's temporary folder is a leftover that gc removes
    assert temporaries(root) != []
    g = cli(root, "gc")
    assert g.returncode == 0, g.stderr
    assert temporaries(root) == []
    assert cli(root, "verify").returncode == 0
    assert run_pipeline(root, log, *DAG) == outs[0]  # still realized, nothing rebuilt
    assert builds(log) == counts


def test_gc_during_a_live_build_spares_it(tmp_path: Path) -> None:
    root, log = tmp_path / "root", tmp_path / "builds.log"
    hung = spawn(root, log, *DAG, "--hang", "L2_0")
    try:
        assert _wait_line(hung, "HANGING")
        live = temporaries(root)
        assert live != []  # the hung build's temporary folder
        g = cli(root, "gc")
        assert g.returncode == 0, g.stderr
        assert temporaries(root) == live  # a live build's folder is not a leftover
        before = realization_dirs(root)
        assert before != []
        hung.send_signal(signal.SIGKILL)
        hung.wait(timeout=30)
        g = cli(root, "gc")
        assert g.returncode == 0, g.stderr
        assert temporaries(root) == []  # now it is
        assert realization_dirs(root) == before  # realizations are never leftovers
    finally:
        kill_group(hung)
    assert cli(root, "verify").returncode == 0
    run_pipeline(root, log, *DAG)
    assert builds(log)["L2_0"] == 2 and builds(log)["L0_0"] == 1


def test_racers_survive_one_of_them_being_killed(tmp_path: Path) -> None:
    root, log, go = tmp_path / "root", tmp_path / "builds.log", tmp_path / "go"
    procs = [spawn(root, log, *DAG, "--sleep", "0.1", "--go", str(go)) for _ in range(4)]
    try:
        time.sleep(0.8)
        go.touch()
        deadline = time.monotonic() + 60
        while sum(builds(log).values()) < 4 and time.monotonic() < deadline:
            time.sleep(0.002)  # mid-way: some stages built, more being built
        victim = procs[0]
        assert victim.poll() is None  # each stage sleeps 0.1 s: nobody can be done yet
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=30)
        outs = []
        for p in procs[1:]:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
            outs.append(rref_of(out))
    finally:
        for p in procs:
            kill_group(p)
    assert len(set(outs)) == 1
    counts = builds(log)
    assert set(counts) == STAGES
    assert all(1 <= n <= 2 for n in counts.values()), counts  # at most the victim's stage twice
    assert sum(counts.values()) <= len(STAGES) + 1
    assert cli(root, "verify").returncode == 0
    assert run_pipeline(tmp_path / "fresh", tmp_path / "fresh.log", *DAG) == outs[0]
