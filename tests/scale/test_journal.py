"""The cold path: a realize pays for durability once (journal, then one syncfs), not
per realization; after a crash, realizations newer than a dead process's journal are
checked against their hashes and the damaged ones removed."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import journal_chain
from pylightnix import StoreError, instantiate, realize, rref2path, store_rrefs_, store_verify

HERE = Path(__file__).resolve().parent


def test_one_sync_per_realize(store, monkeypatch):
    calls = []
    real_fsync = os.fsync

    def counting_fsync(fd):  # type: ignore[no-untyped-def]
        calls.append(fd)
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", counting_fsync)
    c = instantiate(journal_chain.chain, 30)
    rref = realize(c)
    assert open(os.path.join(rref2path(rref), "out")).read() == "29"
    assert len(calls) <= 2, len(calls)  # the journal file and its folder; before: 5 per stage
    assert not os.path.exists(os.path.join(store, "store-v0", ".journal"))
    assert store_verify() == []


def _env(store, **extra):  # type: ignore[no-untyped-def]
    env = dict(os.environ, PYLIGHTNIX_ROOT=store, PYLIGHTNIX_PROGRESS="0",
               PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parents[1])]), **extra)
    env.pop("PYLIGHTNIX_EXECUTOR", None)
    return env


def _crash(store, prefix=(), **env):  # type: ignore[no-untyped-def]
    """Run the chain in a process that SIGKILLs itself while building j3; its journal stays."""
    p = subprocess.run([*prefix, sys.executable, str(HERE / "journal_chain.py")],
                       env=_env(store, **{"JOURNAL_KILL_AT": "3", **env}), capture_output=True, text=True,
                       timeout=120)
    assert p.returncode in (-9, 137), (p.returncode, p.stderr)  # 137: through a shell in a pid namespace
    assert len(os.listdir(os.path.join(store, "store-v0", ".journal"))) == 1  # the dead process's journal stayed


def _damage_and_recover(store):  # type: ignore[no-untyped-def]
    """What a power cut can do to a realization whose data was never synced: j1 loses its content.
    The next realize checks the journaled realizations first and builds j1 again."""
    c = instantiate(journal_chain.chain)
    by_name = {d.config.val["name"]: d.dref for d in c.derivations}
    built = {n: store_rrefs_(by_name[n]) for n in ("j0", "j1", "j2", "j3")}
    assert [len(built[n]) for n in ("j0", "j1", "j2", "j3")] == [1, 1, 1, 0]
    damaged = os.path.join(rref2path(built["j1"][0]), "out")
    with open(damaged) as f:
        original = f.read()
    assert original
    os.chmod(damaged, 0o644)
    with open(damaged, "w"):
        pass
    rref = realize(c)
    # removed, then built again: the same RRef (reproducible), with its content back
    assert store_rrefs_(by_name["j1"]) == built["j1"]
    with open(os.path.join(rref2path(built["j1"][0]), "out")) as f:
        assert f.read() == original
    assert store_rrefs_(by_name["j0"]) == built["j0"]  # intact: kept
    assert open(os.path.join(rref2path(rref), "out")).read() == "4"
    assert store_verify() == []
    assert not os.path.exists(os.path.join(store, "store-v0", ".journal"))


def test_recovery_after_a_crash(store):
    _crash(store)
    _damage_and_recover(store)


def _can_unshare_pid() -> bool:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        return False
    return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True).returncode == 0


NEEDS_PIDNS = pytest.mark.skipif(not _can_unshare_pid(),
                                 reason="needs root and `unshare --pid --fork --mount-proc` (a second pid namespace, "
                                        "as in a container sharing the store)")
#: a shell stays pid 1 of the new namespace, so the build runs as an ordinary process there (pid 1 ignores SIGKILL)
PIDNS = ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", '"$0" "$@"; exit $?']


@NEEDS_PIDNS
def test_a_writer_in_another_pid_namespace_is_not_recovered(store, tmp_path):
    """Two realizes on one store from different pid namespaces (containers sharing a volume):
    the second one's recovery must not take the first one, alive, for dead. It used to
    (its pid does not exist over there), removed its journal, and the first one failed
    with FileNotFoundError at its end."""
    gate = str(tmp_path / "gate")
    a = subprocess.Popen([sys.executable, str(HERE / "journal_chain.py")],
                         env=_env(store, JOURNAL_WAIT_AT="2", JOURNAL_GATE=gate), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not os.path.exists(gate + ".ready"):
            assert a.poll() is None and time.time() < deadline, a.communicate()
            time.sleep(0.05)
        journal = os.path.join(store, "store-v0", ".journal")
        entries = os.listdir(journal)
        assert len(entries) == 1  # a's, durable before its first commit (j0, j1 are in)
        b = subprocess.run([*PIDNS, sys.executable, str(HERE / "journal_chain.py")],
                           env=_env(store, JOURNAL_PREFIX="other"), capture_output=True, text=True, timeout=120)
        assert b.returncode == 0, b.stderr
        assert os.listdir(journal) == entries  # a's journal is still there: a lives
        open(gate, "w").close()
        out, err = a.communicate(timeout=120)
    finally:
        if a.poll() is None:
            a.kill()
    assert a.returncode == 0, err
    assert "FileNotFoundError" not in err + b.stderr
    assert open(os.path.join(rref2path(out.split()[1]), "out")).read() == "4"
    assert open(os.path.join(rref2path(b.stdout.split()[1]), "out")).read() == "4"
    assert store_verify() == []
    assert not os.path.exists(journal)


@NEEDS_PIDNS
def test_a_writer_killed_in_another_pid_namespace_is_recovered(store):
    """Its pid (2 over there) names a live process here; the lock it held tells that it is dead."""
    _crash(store, PIDNS)
    assert [e.split("-")[0] for e in os.listdir(os.path.join(store, "store-v0", ".journal"))] == ["2"]
    _damage_and_recover(store)


def test_concurrent_recovery_is_exactly_once(store, tmp_path):
    """After a crash left its journal, 4 realizes start at once: one recovers, the others wait for it;
    the damaged realization is removed once and built again once. It used to be 9 failures in
    12 with FileNotFoundError on the entry another one was recovering."""
    n = {"JOURNAL_N": "80"}  # 60 realizations for the recovery to check: time for the others to collide
    _crash(store, JOURNAL_KILL_AT="60", **n)
    j1 = [r for r in _rrefs(store) if r.endswith("-j1")][0]
    damaged = os.path.join(rref2path(j1), "out")
    os.chmod(damaged, 0o644)
    open(damaged, "w").close()
    log, gate = str(tmp_path / "log"), str(tmp_path / "start")
    ps = [subprocess.Popen([sys.executable, str(HERE / "journal_chain.py")],
                           env=_env(store, JOURNAL_LOG=log, JOURNAL_START_GATE=gate, **n),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    time.sleep(1.0)  # all four started and wait at the gate
    open(gate, "w").close()
    results = [p.communicate(timeout=120) for p in ps]
    for p, (out, err) in zip(ps, results):
        assert p.returncode == 0, err
        assert "FileNotFoundError" not in err
    assert len({out.split()[1] for out, _ in results}) == 1
    # each built once: j1 because it was damaged, j60 to j79 because they were never built
    assert sorted(open(log).read().split()) == sorted(["j1"] + [f"j{i}" for i in range(60, 80)])
    assert open(damaged).read() == "1"
    assert store_verify() == []
    assert not os.path.exists(os.path.join(store, "store-v0", ".journal"))


def test_a_realize_that_ends_during_a_recovery_leaves_no_journal_folder(store, tmp_path):
    """The last writer ends while another process holds the journal's turn (recovering): the writer
    cannot remove the folder then, and a realize that builds nothing has no entry to end. The recovery
    removes the folder once it is empty (CI, 3.14: ``.journal`` left after 4 concurrent realizes)."""
    import fcntl
    journal = os.path.join(store, "store-v0", ".journal")
    gate = str(tmp_path / "gate")
    writer = subprocess.Popen([sys.executable, str(HERE / "journal_chain.py")],
                              env=_env(store, JOURNAL_WAIT_AT="1", JOURNAL_GATE=gate),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(gate + ".ready") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(os.listdir(journal)) == 1  # the writer's entry
    turn = os.open(os.path.join(store, "store-v0", ".locks", "journal.lock"), os.O_RDWR)
    try:
        fcntl.flock(turn, fcntl.LOCK_EX)  # a recovery elsewhere holds the turn while the writer ends
        open(gate, "w").close()
        out, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        assert os.listdir(journal) == []  # the writer removed its entry, but not the folder
    finally:
        os.close(turn)
    realize(instantiate(journal_chain.chain))  # all built: no entry of its own; its recovery cleans up
    assert not os.path.exists(journal)


def _rrefs(store):  # type: ignore[no-untyped-def]
    from pylightnix import store_drefs
    return [r for d in store_drefs() for r in store_rrefs_(d)]


def test_a_symlinked_journal_is_never_followed(store, tmp_path):
    """``.journal`` planted as a link to a folder outside the store: realize refuses with a StoreError
    naming it, and deletes and writes nothing there (it used to delete backup.tar and thesis.tex)."""
    outside = tmp_path / "home"
    outside.mkdir()
    (outside / "backup.tar").write_text("years of work")
    (outside / "thesis.tex").write_text("\\documentclass{book}")
    (outside / "4242-0ebc08ad").write_text("0\n")  # looks like a dead writer's journal entry
    before = sorted(os.listdir(outside))
    c = instantiate(journal_chain.chain)
    link = os.path.join(store, "store-v0", ".journal")
    os.symlink(str(outside), link)
    with pytest.raises(StoreError, match=r"journal .*\.journal is a symlink to .*home.*expected a folder"):
        realize(c)
    assert sorted(os.listdir(outside)) == before
    assert (outside / "backup.tar").read_text() == "years of work"
    assert (outside / "4242-0ebc08ad").read_text() == "0\n"
    assert os.path.islink(link)
    os.remove(link)
    assert open(os.path.join(rref2path(realize(c)), "out")).read() == "4"  # and the next realize is itself again
    assert sorted(os.listdir(outside)) == before


def test_garbage_in_the_journal_is_skipped_and_reported(store, tmp_path):
    """A folder, a FIFO, a link to /dev/zero, a 30-digit pid and a huge file in ``.journal`` used to give
    IsADirectoryError, a hang, MemoryError and OverflowError on every realize. Now each is skipped with
    a warning, on this realize and the next; a torn entry of a dead writer is recovered as one."""
    journal = os.path.join(store, "store-v0", ".journal")
    os.makedirs(journal)
    garbage = {"100-0000000a": "folder", "101-0000000b": "fifo", "102-0000000c": "zero",
               "1" * 30 + "-0000000d": "bigpid", "103-0000000e": "huge", "notes.txt": "name"}
    for name, kind in garbage.items():
        p = os.path.join(journal, name)
        if kind == "folder":
            os.mkdir(p)
        elif kind == "fifo":
            os.mkfifo(p)
        elif kind == "zero":
            os.symlink("/dev/zero", p)
        elif kind == "huge":
            with open(p, "wb") as f:
                f.truncate(8 << 30)  # sparse: 8 GiB that cost no disk
        else:
            with open(p, "w") as f:
                f.write("0\n")
    with open(os.path.join(journal, "104-0000000f"), "w") as f:
        f.write("\x00garbage")  # named like an entry, torn: its writer is dead (no lock), so everything is checked
    for run in range(2):
        p = subprocess.run([sys.executable, str(HERE / "journal_chain.py")], env=_env(store), capture_output=True,
                           text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        for name in garbage:
            assert f"skipping {os.path.join(journal, name)} in the store's journal" in p.stderr, (name, p.stderr)
        assert "Traceback" not in p.stderr
        assert sorted(os.listdir(journal)) == sorted(garbage)  # left where they are; the torn entry was recovered
    assert store_verify() == []
