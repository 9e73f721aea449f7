"""Side channel under slow or idle peers, and the attach-file directory's ownership."""
import os
import socket
import stat
import subprocess
import sys
import time

import pytest

import hostile_peers
from adapter_probes import attach, env_for, start_listening, stop, PIPELINE
from pylightnix.channel import AUTH_TIMEOUT, ChannelError, Listener, connect, new_secret
from dap_testlib import SchemaChecker, spawn_pipes

pytestmark = pytest.mark.timeout(120)


def test_idle_connections_do_not_delay_the_real_peer():
    secret = new_secret()
    lst = Listener(secret, log=lambda s: None)
    accepted = []
    lst.serve_forever(accepted.append)
    idle = [socket.create_connection(("127.0.0.1", lst.port)) for _ in range(3)]
    try:
        t0 = time.monotonic()
        sock = connect("127.0.0.1", lst.port, secret, timeout=10)
        took = time.monotonic() - t0
        print(f"authenticated in {took:.3f}s behind 3 idle connections")
        assert took < 0.9 * AUTH_TIMEOUT  # served behind even one idle peer, it would take a whole AUTH_TIMEOUT
        sock.close()
    finally:
        for s in idle:
            s.close()
        lst.close()


def test_slow_peer_is_dropped_at_the_deadline():
    lst = Listener(new_secret(), log=lambda s: None)
    lst.serve_forever(lambda s: None)
    s = socket.create_connection(("127.0.0.1", lst.port))
    t0 = time.monotonic()
    try:
        s.settimeout(1)
        reply = b""
        for ch in b'{"auth": "drip-fed ' * 10:  # one byte per 0.25 s: never a whole line in time
            try:
                s.sendall(bytes([ch]))
                reply = s.recv(100)
            except socket.timeout:
                continue
            except OSError:
                break
            if reply:
                break
        assert b"unauthorized" in reply
        assert time.monotonic() - t0 < AUTH_TIMEOUT + 1.5
        assert lst.refused == 1
    finally:
        s.close()
        lst.close()


def test_idle_connections_do_not_delay_an_attach(tmp_path):
    """End to end: three idle connections to a --listen program, then a real attach."""
    proc, port, _ = start_listening(tmp_path, wait=True)
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
    c = spawn_pipes(SchemaChecker())
    try:
        t0 = time.monotonic()
        seq = attach(c, tmp_path, port)
        assert c.response(seq, timeout=30)["success"]
        took = time.monotonic() - t0
        print(f"attached in {took:.2f}s behind 3 idle connections")
        assert took < AUTH_TIMEOUT + 3  # was 3 x 5 s, one idle connection after the other
        st = c.event("stopped", timeout=30)["body"]
        c.request("continue", {"threadId": st["threadId"]})
        assert proc.wait(timeout=60) == 0
    finally:
        for s in idle:
            s.close()
        c.close()
        stop(proc)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user (uid 65534)")
def test_a_flood_from_another_user_refuses_none_of_the_owners_connections():
    """The listener itself, under 1,500 idle connections of uid 65534 that come back as
    soon as they are dropped: 20 of 20 connections of the owner get in (with one global
    cap of 64, half of them were refused)."""
    secret = new_secret()
    lst = Listener(secret, log=lambda s: None)
    lst.serve_forever(lambda s: s.close())
    flood = hostile_peers.spawn("flood", lst.port, 1500)
    took = []
    try:
        hostile_peers.expect_line(flood, "READY")
        for _ in range(20):
            t0 = time.monotonic()
            connect("127.0.0.1", lst.port, secret, timeout=10).close()
            took.append(time.monotonic() - t0)
            time.sleep(0.1)
    finally:
        opened = hostile_peers.stop(flood)
        lst.close()
    print(f"20 connections in at most {max(took):.2f}s each; the attacker {opened.strip()}")
    assert int(opened.split()[-1]) > 1500 and lst.refused > 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user (uid 65534)")
@pytest.mark.timeout(400)
def test_a_flood_from_another_user_does_not_keep_the_owners_adapter_out(tmp_path):
    """Another user keeps 1,500 idle connections open to a --listen program's side channel,
    opening a new one for each it drops; the owner's adapter attaches every time (5 of 5)."""
    times = []
    for run in range(5):
        run_dir = tmp_path / f"run{run}"
        run_dir.mkdir()
        proc, port, err = start_listening(run_dir, wait=True)
        flood = hostile_peers.spawn("flood", port, 1500)
        c = spawn_pipes(SchemaChecker())
        try:
            hostile_peers.expect_line(flood, "READY")
            t0 = time.monotonic()
            seq = attach(c, run_dir, port)
            assert c.response(seq, timeout=60)["success"], run
            times.append(time.monotonic() - t0)
            st = c.event("stopped", timeout=60)["body"]
            c.request("continue", {"threadId": st["threadId"]})
            assert proc.wait(timeout=60) == 0
        finally:
            opened = hostile_peers.stop(flood)
            c.close()
            stop(proc)
        assert int(opened.split()[-1]) > 1500, opened  # the listener dropped idle ones; more came
        assert "refused unauthenticated connection" in err.read_text()
    print("attached under the flood in " + ", ".join(f"{t:.1f}s" for t in times))
    assert len(times) == 5 and max(times) < 20


def _shared_dir(tmp_path, owner):
    d = tmp_path / "shared"
    d.mkdir()
    os.chown(d, owner, -1)
    d.chmod(0o1777)
    return d


@pytest.mark.parametrize("owner", ["other", "me"])
def test_shared_debug_dir_is_refused_and_left_alone(tmp_path, owner):
    if owner == "other" and os.getuid() != 0:
        pytest.skip("needs root to give the directory to another user")
    d = _shared_dir(tmp_path, 65534 if owner == "other" else os.getuid())
    marker = tmp_path / "ran.txt"
    script = tmp_path / "script.py"
    script.write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    env = env_for({"PYLIGHTNIX_DEBUG_DIR": str(d), "PYLIGHTNIX_ROOT": str(tmp_path / "root")})
    r = subprocess.run([sys.executable, "-m", "pylightnix", "debug", "--listen", "127.0.0.1:0", str(script)],
                       env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "pylightnix debug: error: --listen: PYLIGHTNIX_DEBUG_DIR" in r.stderr
    assert ("belongs to uid 65534" if owner == "other" else "writable by other users") in r.stderr
    assert "Traceback" not in r.stderr
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o1777  # never chmod'ed
    assert os.listdir(d) == []                          # no attach file, no temporary file
    assert not marker.exists()                          # the script did not run


def test_private_debug_dir_still_works(tmp_path):
    proc, port, err = start_listening(tmp_path, wait=False, extra_env={"PYLIGHTNIX_DEBUG": ""})
    try:
        assert proc.wait(timeout=60) == 0
        assert stat.S_IMODE(os.stat(tmp_path / "dbg").st_mode) == 0o700
    finally:
        stop(proc)


def test_wrong_secrets_stay_logged_and_a_burst_is_summed_up():
    lines = []
    lst = Listener(new_secret(), log=lines.append)
    lst.serve_forever(lambda s: None)
    try:
        for _ in range(30):
            with pytest.raises(ChannelError, match="unauthorized"):
                connect("127.0.0.1", lst.port, "0" * 64, timeout=5)
        deadline = time.monotonic() + 5
        while True:  # each refusal is logged, or counted in a summary line within a second
            one_by_one = [x for x in lines if "(wrong secret or bad hello)" in x]
            summed = [int(x.split("refused ")[1].split()[0]) for x in lines if "more unauthenticated" in x]
            if len(one_by_one) + sum(summed) == 30 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert summed and len(one_by_one) + sum(summed) == 30, lines
        time.sleep(1.1)  # a later attempt is logged on its own again
        with pytest.raises(ChannelError):
            connect("127.0.0.1", lst.port, "1" * 64, timeout=5)
        time.sleep(0.1)
        assert "(wrong secret or bad hello)" in lines[-1] and lst.refused == 31
    finally:
        lst.close()
