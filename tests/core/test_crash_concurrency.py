"""Real processes: concurrent builders, dead lock holders, SIGKILL at random moments."""
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from os.path import dirname, join

import pytest

WORKER = join(dirname(__file__), "robust_worker.py")


def env_for(root):
    return dict(os.environ, PYLIGHTNIX_ROOT=root, PYLIGHTNIX_PROGRESS="0")


def spawn(root, log, n, sleep_s, *extra):
    return subprocess.Popen([sys.executable, WORKER, log, str(n), str(sleep_s), *extra], env=env_for(root),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def verify(root):
    r = subprocess.run([sys.executable, "-m", "pylightnix", "verify"], env=env_for(root), capture_output=True,
                       text=True, timeout=120)
    return r.returncode, r.stdout


def test_concurrent_builders_agree_and_build_each_stage_once(tmp_path):
    root, log = str(tmp_path / "root"), str(tmp_path / "builds.log")
    procs = [spawn(root, log, 12, 0.02) for _ in range(4)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(out.strip().splitlines()[-1])
    assert len(set(outs)) == 1 and outs[0].startswith("rref:")
    counts = Counter(open(log).read().split())
    assert counts == Counter({f"st{i}": 1 for i in range(12)}), counts
    assert verify(root)[0] == 0
    assert os.listdir(join(root, "tmp")) == []


def test_lock_of_a_killed_builder_does_not_block(tmp_path):
    root, log = str(tmp_path / "root"), str(tmp_path / "builds.log")
    hung = spawn(root, log, 3, 0.0, "st1")
    assert hung.stdout.readline().strip() == "HANGING"  # it holds st1's lock now
    hung.send_signal(signal.SIGKILL)
    hung.wait(timeout=10)
    t0 = time.monotonic()
    p = spawn(root, log, 3, 0.0)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert time.monotonic() - t0 < 30
    assert open(log).read().split() == ["st0", "st1", "st1", "st2"]
    assert verify(root)[0] == 0


def test_sigkill_at_random_moments_never_leaves_partial_realizations(tmp_path):
    root, log = str(tmp_path / "root"), str(tmp_path / "builds.log")
    rnd = random.Random(20261125)
    built_before, interrupted = 0, 0
    for attempt in range(10):
        p = spawn(root, log, 40, 0.003)
        time.sleep(rnd.uniform(0.05, 0.6))
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=10)
        built = len(open(log).read().split()) if os.path.exists(log) else 0
        interrupted += built > built_before and built < 40
        built_before = built
        code, out = verify(root)
        assert code == 0, f"attempt {attempt}: {out}"
        store = join(root, "store-v0")
        for d in os.listdir(store):
            if d.startswith("."):
                continue
            for r in os.listdir(join(store, d)):
                if len(r) == 32:
                    assert os.path.isfile(join(store, d, r, "context.json"))
                    assert os.path.isfile(join(store, d, r, "value")), "a realization without its last file"
    assert interrupted >= 2, "the kills never landed in the middle of a realization"
    p = spawn(root, log, 40, 0.0)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert verify(root)[0] == 0
    subprocess.run([sys.executable, "-m", "pylightnix", "gc"], env=env_for(root), check=True, capture_output=True)
    assert os.listdir(join(root, "tmp")) == []
    leftovers = [e for e in os.listdir(join(root, "store-v0")) if e.startswith(".tmp-")]
    assert leftovers == []
