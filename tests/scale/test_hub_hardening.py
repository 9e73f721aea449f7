"""The driver's pause hub under hostile or unlucky conditions: a flood of idle
connections from another user (uid 65534), two pauses announced at the same moment,
hellos that are not valid, an unusable debug folder, a wrong secret."""
from __future__ import annotations

import glob
import json
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from pylightnix import AttachInfoError, ChannelError, PylightnixError
from pylightnix.wire import attach_info
from pylightnix.wire.channel import Channel, connect
from pylightnix.scale.hub import PauseHub
from test_remote_pauses import ATTACH_LINE, attach, driver_factory, env  # noqa: F401 (fixtures)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "security"))
import hostile_peers  # noqa: E402

pytestmark = pytest.mark.timeout(300)
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user (uid 65534)")


def hub_file(env, timeout: float = 60):
    """The driver's hub attach file, once it exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in glob.glob(os.path.join(env["PYLIGHTNIX_DEBUG_DIR"], "attach-*.json")):
            info = attach_info.read(p)
            if info.get("role") == "hub":
                return info
        time.sleep(0.05)
    raise AssertionError("the driver's pause hub never wrote its attach file")


@root_only
def test_a_flood_on_the_hub_drops_no_pause_and_lets_the_owner_attach(env, driver_factory, tmp_path) -> None:
    """Another user keeps 1,500 idle connections open to the hub, opening a new one for
    each the hub drops. The worker's pause still gets through (it is never skipped), and
    so does ``pylightnix attach``."""
    gate = tmp_path / "gate"
    env.update(PYLIGHTNIX_BREAK_ON_FAILURE="1", FAIL_BETA="1", GATE=str(gate))
    d = driver_factory("processes:2", env)
    hub = hub_file(env)
    flood = hostile_peers.spawn("flood", hub["port"], 1500)
    try:
        hostile_peers.expect_line(flood, "READY")
        gate.touch()  # now beta fails on its worker and announces its pause, through the flood
        m = d.wait_for(ATTACH_LINE, timeout=120)[0]
        assert m.group(1) == "beta"
        t0 = time.monotonic()
        out = attach(env, "train(b)\nrepl_continueBuild(b)\n", m.group(3), timeout=120)
        took = time.monotonic() - t0
        assert out.returncode == 0 and "detached from beta" in out.stdout, (out.stdout, out.stderr)
    finally:
        opened = hostile_peers.stop(flood)
    n = int(re.search(r"OPENED (\d+)", opened).group(1))
    print(f"attached in {took:.1f}s under the flood; the attacker opened {n} connections")
    assert n > 1500  # the hub dropped idle connections and the attacker made new ones
    text = d.finish()
    assert d.proc.returncode == 0 and "RESULT rref:" in text, text
    assert "continuing without pausing" not in text and "Traceback" not in text
    assert "refused unauthenticated connection" in text  # logged, and summed up
    assert re.search(r"refused \d+ more unauthenticated connections", text), text


def test_pauses_announced_at_the_same_moment_are_all_in_the_attach_file(monkeypatch, tmp_path) -> None:
    """The hub's attach file lists every pause, however the announcements interleave
    (they were listed under the lock but written after it: the last writer could drop one)."""
    monkeypatch.setenv("PYLIGHTNIX_DEBUG_DIR", str(tmp_path / "dbg"))
    hub = PauseHub(log=lambda s: None)
    try:
        for round_ in range(10):
            n = 6
            start = threading.Barrier(n)
            ids, chans = [None] * n, [None] * n
            for i in range(n):
                hub.watch(f"dref:{round_}-{i}", lambda kind, remote: None)

            def worker(i: int) -> None:
                sock = connect(hub.host, hub.port, hub.secret, hello={"role": "worker"})
                ch = chans[i] = Channel(sock, on_request=lambda m, p: {"ok": True}).start()
                start.wait()
                ids[i] = ch.call("paused", {"name": f"w{i}", "dref": f"dref:{round_}-{i}", "where": "here"})["id"]
            threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(30)
            listed = {p["id"] for p in attach_info.read(attach_info.path_for(hub.port))["pauses"]}
            assert listed == set(ids), (round_, listed, ids)
            for ch in chans:
                ch.close()
            deadline = time.monotonic() + 10
            while attach_info.read(attach_info.path_for(hub.port))["pauses"] and time.monotonic() < deadline:
                time.sleep(0.02)
            assert attach_info.read(attach_info.path_for(hub.port))["pauses"] == []
    finally:
        hub.close()
    assert not os.path.exists(attach_info.path_for(hub.port))


def test_two_builds_pausing_at_once_are_attachable_by_their_printed_ids(env, driver_factory, tmp_path) -> None:
    env["PYLIGHTNIX_BREAK"] = "alpha,beta"
    for run in range(3):
        env["PYLIGHTNIX_ROOT"] = str(tmp_path / f"store-{run}")  # nothing cached: both pause again
        d = driver_factory("processes:2", env)
        ids = {m.group(1): m.group(3) for m in d.wait_for(ATTACH_LINE, count=2)}
        assert set(ids) == {"alpha", "beta"}
        for name in ("beta", "alpha"):
            out = attach(env, f"print('in', name)\n", ids[name])
            assert out.returncode == 0 and f"in {name}" in out.stdout, (run, name, out.stdout, out.stderr)
        text = d.finish()
        assert d.proc.returncode == 0, text


@root_only
def test_bad_hellos_are_refused_at_once_without_a_traceback(env, driver_factory) -> None:
    env["PYLIGHTNIX_BREAK"] = "beta"
    d = driver_factory("processes:2", env)
    pause_id = d.wait_for(ATTACH_LINE)[0].group(3)
    hub = hub_file(env)
    probe = hostile_peers.spawn("badhellos", hub["port"])
    out, _ = probe.communicate(timeout=60)
    closed = [line.split(" ", 2) for line in out.splitlines() if line.startswith("CLOSED")]
    assert len(closed) == len(hostile_peers.BAD_HELLOS), closed
    for _, took, reply in closed:
        assert float(took) < 1.0, closed  # closed at once, not at the 2 s deadline
    assert sum("unauthorized" in reply for _, _, reply in closed) >= len(closed) - 1, closed
    # the owner, with the secret, and nonsense in the other fields: an answer, then closed
    s = socket.create_connection(("127.0.0.1", hub["port"]), timeout=5)
    s.sendall(json.dumps({"auth": hub["secret"], "role": "attach", "pause": "\ud800", "service": "console"})
              .encode() + b"\n")
    reply = s.makefile("rb").read()
    assert b'"ok": true' in reply and b"bad hello" in reply, reply
    # a wrong secret is refused and logged
    with pytest.raises(ChannelError, match="refused"):
        connect("127.0.0.1", hub["port"], "0" * 64, hello={"role": "attach", "pause": pause_id})
    d.wait_for(re.compile(r"refused unauthenticated connection .*\(wrong secret"), count=len(closed))
    out = attach(env, "", pause_id)
    assert out.returncode == 0, out.stderr
    text = d.finish()
    assert d.proc.returncode == 0, text
    assert "Traceback" not in text and "UnicodeEncodeError" not in text, text


@pytest.mark.parametrize("folder", ["another-users-1777", "cannot-be-created"])
def test_an_unusable_debug_folder_is_a_pylightnix_error_naming_the_variable(env, driver_factory, tmp_path,
                                                                            folder) -> None:
    if folder == "another-users-1777":
        if os.geteuid() != 0:
            pytest.skip("needs root to give the folder to another user")
        d = tmp_path / "shared"
        d.mkdir()
        os.chown(d, hostile_peers.NOBODY, hostile_peers.NOBODY)
        d.chmod(0o1777)
    else:
        (tmp_path / "a-file").write_text("")
        d = tmp_path / "a-file" / "debug"
    env.update(PYLIGHTNIX_BREAK="beta", PYLIGHTNIX_DEBUG_DIR=str(d))
    drv = driver_factory("processes:2", env)
    text = drv.finish()
    assert drv.proc.returncode == 1, text
    assert "ERROR AttachInfoError (a PylightnixError): " in text and "set PYLIGHTNIX_DEBUG_DIR" in text, text
    assert "Traceback" not in text
    assert issubclass(AttachInfoError, PylightnixError)
