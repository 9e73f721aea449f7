"""Copy mode: workers whose store is not the driver's. They receive the dependency
realizations they lack as archives checked against their RRefs, build in their own
store, and the driver commits what comes back after checking its hash."""
from __future__ import annotations

import io
import os
import tarfile

import pytest

from scale_support import snapshot, use_store
from scale_stages import builds, dag
from pylightnix import StoreError, build_wrapper, instantiate, match_only, mkconfig, mkdrv, realize, rref2path, \
    store_rrefs_, store_verify, unrref
from pylightnix.scale.executors import Dask
from pylightnix.core.store import store_root
from pylightnix.scale.transfer import pack, unpack


@pytest.fixture(scope="module")
def private_client(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Two worker processes whose PYLIGHTNIX_ROOT is their own, not the driver's."""
    from distributed import Client, LocalCluster
    root = str(tmp_path_factory.mktemp("worker-root"))
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0", silence_logs=40,
                      env={"PYLIGHTNIX_ROOT": root, "PYLIGHTNIX_PROGRESS": "0"}) as c, Client(c) as client:
        yield client, root


def test_copy_mode_equals_sequential(store, tmp_path, monkeypatch, private_client):
    client, worker_root = private_client
    log = str(tmp_path / "log")
    c1 = instantiate(dag, log)
    r1 = realize(c1)
    s1 = snapshot(c1, with_rrefs=True)
    use_store(monkeypatch, str(tmp_path / "driver-root"))
    os.remove(log)
    c2 = instantiate(dag, log)
    r2 = realize(c2, executor=Dask(client, shared=False))
    assert r2 == r1 and snapshot(c2, with_rrefs=True) == s1
    assert store_verify() == []
    b = builds(log)
    assert all(len(p) == 1 and p[0] != os.getpid() for p in b.values()), b
    # the workers built in their own store, which now holds the same realizations
    for d in c2.derivations:
        for r in store_rrefs_(d.dref):
            rhash, dhash, name = unrref(r)
            assert os.path.isdir(os.path.join(worker_root, "store-v0", f"{dhash}-{name}", rhash)), r
    assert [e for e in os.listdir(os.path.join(str(tmp_path / "driver-root"), "store-v0")) if "probe" in e] == []
    # warm: matched in the driver, nothing shipped or built
    assert realize(instantiate(dag, log), executor=Dask(client, shared=False)) == r2
    assert builds(log) == b


def test_unpack_checks_the_hash(store, tmp_path):
    from pylightnix import build_outpath, build_wrapper, match_only, mkconfig, mkdrv

    def write(b):  # type: ignore[no-untyped-def]
        open(os.path.join(build_outpath(b), "f"), "w").write("right")

    def stage(m):  # type: ignore[no-untyped-def]
        return mkdrv(m, mkconfig({"name": "one"}), match_only(), build_wrapper(write, buildtime=False))
    c = instantiate(stage)
    rref = realize(c)
    data = pack(rref)
    assert unpack(rref, data) is False  # present already
    # an archive whose content does not hash to the RRef it claims is refused
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, text in (("f", b"wrong"), ("context.json", b"{}")):
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    other = rref.replace("rref:" + rref[5:37], "rref:" + "0" * 32)
    with pytest.raises(StoreError, match="does not match its hash"):
        unpack(other, buf.getvalue())
    assert store_rrefs_(c.dref) == [rref]
    assert [e for e in os.listdir(os.path.dirname(rref2path(rref))) if e.startswith(".staging")] == []


def test_unpack_refuses_escaping_archives(store, tmp_path):
    from pylightnix import build_outpath, build_wrapper, match_only, mkconfig, mkdrv

    def write(b):  # type: ignore[no-untyped-def]
        open(os.path.join(build_outpath(b), "f"), "w").write("x")
    c = instantiate(lambda m: mkdrv(m, mkconfig({"name": "esc"}), match_only(), build_wrapper(write)))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("../../../escaped")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    fake = "rref:" + "1" * 32 + "-" + c.dref[5:]
    with pytest.raises(StoreError, match="would be outside the output folder"):
        unpack(fake, buf.getvalue())
    assert not any("escaped" in f for _, _, fs in os.walk(str(tmp_path)) for f in fs)


def _can_unshare() -> bool:
    import shutil
    import subprocess
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare(), reason="needs unshare -m (root) to hide the driver's store from a worker")
def test_probe_finds_workers_that_cannot_see_the_store(store, tmp_path, monkeypatch):
    """A real worker in its own mount namespace, where the driver's store is hidden under
    an empty tmpfs: the probe fails, so the run copies; shared=True refuses."""
    import subprocess
    import sys
    import time
    from distributed import Client, LocalCluster
    from pylightnix import ExecutorError
    hidden = tmp_path / "driver-side"
    hidden.mkdir()
    use_store(monkeypatch, str(hidden / "root"))
    worker_root = tmp_path / "worker-side"
    log = str(tmp_path / "log")
    with LocalCluster(n_workers=0, processes=True, dashboard_address=":0", silence_logs=40) as cluster, \
            Client(cluster) as client:
        here = os.path.dirname(os.path.abspath(__file__))
        env = dict(os.environ, PYLIGHTNIX_ROOT=str(worker_root), PYLIGHTNIX_PROGRESS="0",
                   PYTHONPATH=os.pathsep.join([here, os.path.dirname(os.path.dirname(here))]))
        cmd = (f"mount -t tmpfs tmpfs {hidden} && exec {sys.executable} -m distributed.cli.dask_worker "
               f"{cluster.scheduler_address} --nthreads 1 --no-nanny --no-dashboard")
        worker = subprocess.Popen(["unshare", "-m", "sh", "-c", cmd], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            client.wait_for_workers(1, timeout=60)
            with pytest.raises(ExecutorError, match="do not see the driver's store"):
                realize(instantiate(dag, log), executor=Dask(client, shared=True))
            rref = realize(instantiate(dag, log), executor=Dask(client))
            assert open(os.path.join(rref2path(rref), "out.txt")).read() == "15 [6, 7]"
            assert store_verify() == []
            assert os.path.isdir(worker_root / "store-v0")  # it built in its own store
            assert all(p[0] == worker.pid for p in builds(log).values())
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            time.sleep(0.1)


def test_copy_mode_exactly_once_with_another_driver(store, tmp_path, monkeypatch, private_client):
    """A sequential driver in another process is building the leaves; the copy-mode driver
    waits for their locks and takes its results instead of building them again."""
    import subprocess
    import sys
    import time
    import driver_script
    client, _ = private_client
    root, log = str(tmp_path / "shared-root"), tmp_path / "log"
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYLIGHTNIX_ROOT=root, PYLIGHTNIX_PROGRESS="0", PYLIGHTNIX_EXECUTOR="sequential",
               PYTHONPATH=os.path.dirname(os.path.dirname(here)))
    other = subprocess.Popen([sys.executable, os.path.join(here, "driver_script.py"), "shared", str(log)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (log.exists() and log.read_text()):
            assert time.time() < deadline and other.poll() is None, other.communicate()
            time.sleep(0.02)
        use_store(monkeypatch, root)
        rref = realize(instantiate(driver_script.shared, str(log)), executor=Dask(client, shared=False))
        out, err = other.communicate(timeout=60)
    finally:
        if other.poll() is None:
            other.kill()
    assert other.returncode == 0, err
    assert out.split() == ["RREF", rref]
    starts = [line.split()[0] for line in log.read_text().splitlines() if not line.split()[0].endswith("-end")]
    assert sorted(starts) == ["leaf0", "leaf1", "leaf2", "leaf3", "sum"], starts
    assert store_verify() == []


def _files_with(root, text):  # type: ignore[no-untyped-def]
    hits = []
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p) and text in open(p, "rb").read():
                hits.append(p)
    return hits


def test_unpack_refuses_the_path_max_link_chain(store, tmp_path):
    """CVE-2025-4517: links whose real path outgrows PATH_MAX fool tarfile's data filter
    (before 3.13.4, 3.12.11, ...). The archive is checked on the tree it would leave."""
    import forged_worker
    from pylightnix.core.archives import check_tar
    from pylightnix import UnsafeArchiveError
    from pylightnix.core.refs import dref_dirname
    # the archive is a working exploit: against the data filter alone, here, it writes outside or is refused
    scratch = tmp_path / "scratch"
    (scratch / "a" / "b" / "dest").mkdir(parents=True)
    (scratch / "bait").mkdir()
    (scratch / "bait" / "victim.txt").write_text("bait")
    data = forged_worker.cve_2025_4517_tar(3, "bait", b"PWNED")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        with pytest.raises(UnsafeArchiveError, match="stored under the link 'a'"):
            check_tar(tar.getmembers(), "x")
        if hasattr(tarfile, "data_filter"):
            try:
                tar.extractall(str(scratch / "a" / "b" / "dest"), filter="data")
                assert (scratch / "bait" / "victim.txt").read_text() == "PWNED"  # this Python's filter is fooled
            except (tarfile.FilterError, OSError):  # a fixed Python (3.14+: ENAMETOOLONG): refused there too
                assert (scratch / "bait" / "victim.txt").read_text() == "bait"
    # into the store: refused before anything is written
    victim = tmp_path / "outside"
    victim.mkdir()
    (victim / "victim.txt").write_text("precious")
    c = instantiate(lambda m: mkdrv(m, mkconfig({"name": "victimized"}), match_only(), build_wrapper(_write_x)))
    staging = os.path.join(store_root(), dref_dirname(c.dref), ".staging-x")
    fake = "rref:" + "0" * 32 + "-" + c.dref[5:]
    data = forged_worker.cve_2025_4517_tar(len(staging.strip("/").split("/")), str(victim).strip("/"), b"PWNED")
    with pytest.raises(StoreError, match="stored under the link 'a'.*it was not added"):
        unpack(fake, data)
    assert (victim / "victim.txt").read_text() == "precious"
    assert os.listdir(str(victim)) == ["victim.txt"]
    assert store_rrefs_(c.dref) == []
    assert [e for e in os.listdir(os.path.dirname(staging)) if e.startswith(".staging")] == []


def _write_x(b):  # type: ignore[no-untyped-def]
    from pylightnix import build_outpath
    open(os.path.join(build_outpath(b), "f"), "w").write("x")


def _weights(b):  # type: ignore[no-untyped-def]
    from pylightnix import build_outpath
    open(os.path.join(build_outpath(b), "weights"), "w").write("trained weights")


def _train(b):  # type: ignore[no-untyped-def]
    from pylightnix import build_cattrs, build_outpath, build_path
    w = open(build_path(b, [build_cattrs(b).weights, "weights"])).read()
    open(os.path.join(build_outpath(b), "model"), "w").write(f"model on {w}")


def _model(m):  # type: ignore[no-untyped-def]
    w = mkdrv(m, mkconfig({"name": "weights"}), match_only(), build_wrapper(_weights))
    return mkdrv(m, mkconfig({"name": "train", "weights": w}), match_only(), build_wrapper(_train))


@pytest.fixture
def forging(private_client):  # type: ignore[no-untyped-def]
    """The copy-mode workers, compromised by ``forged_worker.install(mode)`` until the test ends."""
    import forged_worker
    client, _ = private_client
    yield lambda mode: client.run(forged_worker.install, mode)
    client.run(forged_worker.install, None)


def test_a_worker_cannot_send_another_derivations_realization(store, tmp_path, monkeypatch, private_client,
                                                              forging):
    """Asked to build ``train``, a worker also sends a realization of ``weights`` (content "BACKDOORED
    weights", under the RRef it hashes to). The driver used to store it; now the build fails with a
    StoreError naming both, and nothing the worker sent is stored."""
    client, _ = private_client
    use_store(monkeypatch, str(tmp_path / "driver-root"))
    forging(("foreign", ""))
    c = instantiate(_model)
    weights = [d.dref for d in c.derivations if d.config.val["name"] == "weights"][0]
    with pytest.raises(StoreError, match=r"sent back 'rref:[0-9a-f-]+weights', which is not a realization of "
                                         r"dref:[0-9a-f]+-train, the only derivation it was asked to build"):
        realize(c, executor=Dask(client, shared=False))
    assert len(store_rrefs_(weights)) == 1  # the one the driver asked a worker for
    assert open(os.path.join(rref2path(store_rrefs_(weights)[0]), "weights")).read() == "trained weights"
    assert store_rrefs_(c.dref) == []
    assert _files_with(store_root(), b"BACKDOORED") == []
    assert store_verify() == []
    forging(None)
    rref = realize(c, executor=Dask(client, shared=False))  # an honest worker again: built and accepted
    assert open(os.path.join(rref2path(rref), "model")).read() == "model on trained weights"


def test_a_worker_cannot_write_outside_the_drivers_store(store, tmp_path, monkeypatch, private_client, forging):
    """A worker sends back, as the realization it built, the CVE-2025-4517 link chain aimed at a file
    outside the driver's store. It used to be overwritten; now it stays and the build fails."""
    client, _ = private_client
    use_store(monkeypatch, str(tmp_path / "driver-root"))
    victim = tmp_path / "home"
    victim.mkdir()
    (victim / "victim.txt").write_text("precious")
    forging(("cve", str(victim)))
    c = instantiate(lambda m: mkdrv(m, mkconfig({"name": "victimized"}), match_only(), build_wrapper(_write_x)))
    with pytest.raises(StoreError, match="stored under the link 'a'.*it was not added"):
        realize(c, executor=Dask(client, shared=False))
    assert (victim / "victim.txt").read_text() == "precious"
    assert os.listdir(str(victim)) == ["victim.txt"]
    assert store_rrefs_(c.dref) == []
    assert _files_with(str(tmp_path / "driver-root"), b"PWNED") == []
