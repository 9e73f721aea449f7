"""The side channel binds loopback only and refuses (and logs) a wrong secret."""
import socket

import pytest

from pylightnix.wire.channel import Channel, ChannelError, Listener, connect, new_secret

pytestmark = pytest.mark.timeout(30)


def test_wrong_secret_refused_and_logged():
    logged = []
    secret = new_secret()
    lst = Listener(secret, log=logged.append)
    assert lst._sock.getsockname()[0] == "127.0.0.1"
    accepted = []
    lst.serve_forever(accepted.append)
    with pytest.raises(ChannelError):
        connect("127.0.0.1", lst.port, "wrong-" + secret)
    # no handshake at all: refused too
    raw = socket.create_connection(("127.0.0.1", lst.port))
    raw.sendall(b"hello\n")
    assert b"unauthorized" in raw.recv(100)
    raw.close()
    assert lst.refused == 2 and accepted == []
    assert all("refused unauthenticated connection" in line for line in logged) and len(logged) == 2
    # the right secret works, and requests flow both ways
    sock = connect("127.0.0.1", lst.port, secret)
    import time
    deadline = time.monotonic() + 5
    while not accepted and time.monotonic() < deadline:
        time.sleep(0.01)
    server = Channel(accepted[0], on_request=lambda m, p: {"echo": p["x"]}).start()
    client = Channel(sock).start()
    assert client.call("ping", {"x": 7}) == {"echo": 7}
    client.close()
    server.close()
    lst.close()


def test_agent_listener_refuses_wrong_secret_end_to_end(tmp_path):
    """A process serving attach (``serve_attach``) refuses a side-channel connection with a
    wrong secret and logs it on stderr."""
    import json
    import os
    import subprocess
    import sys
    from dap_testlib import env_for, PIPELINE, free_port
    port = free_port()
    env = env_for({"PYLIGHTNIX_DEBUG_DIR": str(tmp_path / "dbg"), "PYLIGHTNIX_ROOT": str(tmp_path / "root"),
                   "PYLIGHTNIX_DEBUG_WAIT": "1"})
    proc = subprocess.Popen([sys.executable, "-m", "pylightnix", "debug", "--listen", f"127.0.0.1:{port}",
                             PIPELINE], env=env, stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stderr.readline() for _ in range(1)]
        while "waiting for a debugger" not in lines[-1] and lines[-1]:
            lines.append(proc.stderr.readline())
        assert "waiting for a debugger" in lines[-1], lines
        info = json.load(open(tmp_path / "dbg" / f"attach-{port}.json"))
        assert oct(os.stat(tmp_path / "dbg" / f"attach-{port}.json").st_mode & 0o777) == "0o600"
        with pytest.raises(ChannelError):
            connect("127.0.0.1", info["port"], "0" * 64)
        assert "refused unauthenticated connection" in proc.stderr.readline()
    finally:
        proc.kill()
        proc.wait()


def test_adapter_listener_refuses_wrong_secret_during_launch(pipes_client, tmp_path):
    """The adapter's side-channel listener (launch) refuses a wrong secret and says so."""
    from dap_testlib import debuggee_pid, launch, top_frame
    c = pipes_client
    launch(c, str(tmp_path / "root"), function_breakpoints=["trainer"])
    pid = debuggee_pid(c)
    st = c.event("stopped", timeout=30)["body"]
    with open(f"/proc/{pid}/environ", "rb") as f:  # the debuggee's initial environment
        env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    host, port = env[b"PYLIGHTNIX_DAP_CHANNEL"].decode().rsplit(":", 1)
    assert host == "127.0.0.1"
    with pytest.raises(ChannelError):
        connect(host, int(port), "not-the-secret")
    c.event("output", timeout=10, pred=lambda m: "refused unauthenticated connection" in m["body"]["output"])
    # the session is unaffected
    assert top_frame(c, st["threadId"])["name"] == "trainer"
    c.request("continue", {"threadId": st["threadId"]})
    c.event("terminated", timeout=30)


def test_attach_file_is_private_and_found_by_port(tmp_path, monkeypatch):
    import os
    import stat
    from pylightnix.wire import attach_info
    monkeypatch.setenv("PYLIGHTNIX_DEBUG_DIR", str(tmp_path / "dbg"))
    path = attach_info.write(5678, {"pid": os.getpid(), "host": "127.0.0.1", "port": 5679, "secret": "s3"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "dbg").st_mode) == 0o700
    assert attach_info.resolve({}, 5678) == {"pid": os.getpid(), "host": "127.0.0.1", "port": 5679,
                                             "secret": "s3"}
    explicit = {"pylightnixChannel": {"port": 1, "secret": "x"}}
    assert attach_info.resolve(explicit, 5678) == {"host": "127.0.0.1", "port": 1, "secret": "x"}
    with pytest.raises(attach_info.AttachInfoError):
        attach_info.resolve({}, 5680)
    attach_info.remove(5678, os.getpid())
    assert not os.path.exists(path)


def test_a_slow_listener_gets_each_hello_once():
    """``connect`` sent its hello again when the listener's answer took longer than
    AUTH_TIMEOUT + 1 s (a driver busy under load): the pause hub then served the same
    attach twice and refused the second one as "already attached elsewhere", so a child
    session's ``attach`` answered ``success: false`` (seen once on 3.13 under load, in
    test_two_workers_paused_at_once). Once its hello is sent, the listener may have acted
    on it: ``connect`` waits for the answer and never sends the hello twice."""
    import threading
    import time

    from pylightnix.wire.channel import AUTH_TIMEOUT
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    hellos, conns = [], []

    def answer_late(conn):
        hellos.append(conn.makefile("rb").readline())
        time.sleep(AUTH_TIMEOUT + 2)  # a listener thread starved for the CPU
        try:
            conn.sendall(b'{"ok": true}\n')
        except OSError:
            pass

    def serve():
        srv.settimeout(15)
        try:
            while True:
                conn, _ = srv.accept()
                conns.append(conn)
                threading.Thread(target=answer_late, args=(conn,), daemon=True).start()
        except OSError:
            pass

    threading.Thread(target=serve, daemon=True).start()
    try:
        t0 = time.monotonic()
        sock = connect("127.0.0.1", srv.getsockname()[1], "secret", timeout=10,
                       hello={"role": "attach", "pause": "p1"})
        took = time.monotonic() - t0
        sock.close()
        assert len(hellos) == 1, hellos
        assert AUTH_TIMEOUT + 2 <= took < AUTH_TIMEOUT + 4
    finally:
        srv.close()
        for c in conns:
            c.close()
