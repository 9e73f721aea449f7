"""The cold path: a realize pays for durability once (journal, then one syncfs), not
per realization; after a crash, realizations newer than a dead process's journal are
checked against their hashes and the damaged ones removed."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import journal_chain
from pylightnix import instantiate, realize, rref2path, store_rrefs_, store_verify

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


def test_recovery_after_a_crash(store, tmp_path):
    env = dict(os.environ, PYLIGHTNIX_ROOT=store, JOURNAL_KILL_AT="3", PYLIGHTNIX_PROGRESS="0",
               PYTHONPATH=os.pathsep.join([str(HERE), str(HERE.parents[1])]))
    env.pop("PYLIGHTNIX_EXECUTOR", None)
    p = subprocess.run([sys.executable, str(HERE / "journal_chain.py")], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == -9, p.stderr
    journals = os.listdir(os.path.join(store, "store-v0", ".journal"))
    assert len(journals) == 1  # the dead process's journal stayed
    c = instantiate(journal_chain.chain)
    by_name = {d.config.val["name"]: d.dref for d in c.derivations}
    built = {n: store_rrefs_(by_name[n]) for n in ("j0", "j1", "j2", "j3")}
    assert [len(built[n]) for n in ("j0", "j1", "j2", "j3")] == [1, 1, 1, 0]
    # what a power cut can do to a realization whose data was never synced: j1 lost its content
    damaged = os.path.join(rref2path(built["j1"][0]), "out")
    with open(damaged) as f:
        original = f.read()
    assert original
    os.chmod(damaged, 0o644)
    with open(damaged, "w"):
        pass
    rref = realize(c)  # the next realize checks the journaled realizations first
    # removed, then built again: the same RRef (reproducible), with its content back
    assert store_rrefs_(by_name["j1"]) == built["j1"]
    with open(os.path.join(rref2path(built["j1"][0]), "out")) as f:
        assert f.read() == original
    assert store_rrefs_(by_name["j0"]) == built["j0"]  # intact: kept
    assert open(os.path.join(rref2path(rref), "out")).read() == "4"
    assert store_verify() == []
    assert not os.path.exists(os.path.join(store, "store-v0", ".journal"))
