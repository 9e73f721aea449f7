"""No port that the debugger opens runs code for a peer without the session's secret.

Every listening socket of the program and of the adapter's process tree is found
through /proc and attacked with a raw DAP / debugpy client that tries to launch a
program, attach, pause and evaluate code that writes a marker file. The marker
must never appear, no such port may even accept a DAP session (a successful
``initialize``), and the real session keeps working afterwards.
"""
import contextlib
import os
import subprocess
import sys

import pytest

from adapter_probes import (attach, listening_addresses, listening_ports, process_tree, start_listening,
                            stop, system_python, try_to_run_code)
from dap_testlib import debuggee_pid, kill_quietly, launch, repl, spawn_pipes, top_frame, SchemaChecker

pytestmark = pytest.mark.timeout(240)


def _attack_all(ports, marker, pid=None):
    for port in sorted(ports):
        got = try_to_run_code(port, marker, pid=pid)
        assert not os.path.exists(marker), f"port {port} ran code for an unauthenticated peer: {got}"
        assert "initialize" not in got["succeeded"], f"port {port} accepted a DAP session: {got}"
        assert "evaluate" not in got["succeeded"], f"port {port} evaluated for a peer: {got}"


def test_listen_opens_no_debugger_port(tmp_path):
    """``--listen``: the program's only listening socket is the side channel, which speaks
    no DAP and wants the secret first."""
    proc, port, _ = start_listening(tmp_path, wait=True)
    try:
        ports = listening_ports(process_tree(proc.pid))
        assert set(ports) == {port}, f"the program listens on more than the side channel: {ports}"
        assert listening_addresses(process_tree(proc.pid)) == [f"127.0.0.1:{port}"]
        _attack_all(ports, str(tmp_path / "marker"))
        assert proc.poll() is None  # still waiting for the real debugger
    finally:
        stop(proc)


@contextlib.contextmanager
def _attached_and_paused(tmp_path):
    """A ``--listen`` program, attached by a real adapter and paused at its build breakpoint.
    On leaving, the session must still work: the console answers and the program finishes."""
    proc, port, _ = start_listening(tmp_path, wait=True)
    c = spawn_pipes(SchemaChecker())
    try:
        seq = attach(c, tmp_path, port)
        assert c.response(seq, timeout=30)["success"]
        st = c.event("stopped", timeout=30)["body"]
        yield proc, c
        fid = top_frame(c, st["threadId"])["id"]
        assert repl(c, fid, "name") == "'trainer'"  # the session is unaffected
        c.request("continue", {"threadId": st["threadId"]})
        assert proc.wait(timeout=60) == 0
    finally:
        c.close()
        stop(proc)


def test_listen_attached_session_ports(tmp_path):
    """While a real adapter is attached (and the program paused at a build), no port of the
    program, the adapter or its debugpy runs code for a peer; the session is unaffected."""
    with _attached_and_paused(tmp_path) as (proc, c):
        ports = listening_ports(process_tree(proc.pid) + process_tree(c.proc.pid))
        assert all(a.startswith("127.0.0.1:") for a in
                   listening_addresses(process_tree(proc.pid) + process_tree(c.proc.pid)))
        _attack_all(ports, str(tmp_path / "marker"), pid=proc.pid)


def test_launch_session_ports(tmp_path):
    """launch: the adapter, debugpy's adapter, its launcher and the debuggee listen on
    nothing that runs code for a peer without the secret."""
    c = spawn_pipes(SchemaChecker())
    pid = None
    try:
        launch(c, str(tmp_path / "root"), function_breakpoints=["trainer"])
        pid = debuggee_pid(c)
        st = c.event("stopped", timeout=30)["body"]
        tree = process_tree(c.proc.pid)
        assert pid in tree
        ports = listening_ports(tree)
        assert ports, "expected at least the side channel and debugpy's server port"
        assert all(a.startswith("127.0.0.1:") for a in listening_addresses(tree))
        _attack_all(ports, str(tmp_path / "marker"), pid=pid)
        fid = top_frame(c, st["threadId"])["id"]
        assert repl(c, fid, "name") == "'trainer'"
        c.request("continue", {"threadId": st["threadId"]})
        c.event("terminated", timeout=30)
    finally:
        c.close()
        kill_quietly(pid)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run the attacker as another user")
def test_tcp_adapter_serves_only_its_user(tmp_path):
    """``python -m dap_adapter --port``: a DAP client of another user gets no session (it
    could launch any program as us); our own user still does."""
    python = system_python()
    assert python, "no system python3 for the other user"
    tmp_path.chmod(0o755)
    for p in tmp_path.parents:  # let the other user run the probe (it writes nothing itself)
        if str(p).startswith("/tmp/") and p.stat().st_uid == 0:
            p.chmod(p.stat().st_mode | 0o005)
    proc = subprocess.Popen([sys.executable, "-m", "dap_adapter", "--port", "0"], stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=os.getcwd()))
    try:
        port = int(proc.stderr.readline().rsplit(":", 1)[1])
        marker = str(tmp_path / "marker")
        got = try_to_run_code(port, marker, as_uid=65534, python=python)
        assert got["connected"] and got["succeeded"] == [], got
        assert not os.path.exists(marker)
        assert "refused a connection from uid 65534" in proc.stderr.readline()
        same_user = try_to_run_code(port, str(tmp_path / "own"))
        assert "initialize" in same_user["succeeded"]  # our own user is served
    finally:
        proc.kill()
        proc.wait()


def _pose_as_debug_server(port, token):
    """Connect to debugpy's server port as pydevd would and answer its ``pydevdAuthorize``
    with ``token``; returns whether the adapter kept the connection."""
    import json
    import socket
    import time
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        buf = b""
        while b"pydevdAuthorize" not in buf or not buf.endswith(b"}"):
            chunk = s.recv(65536)
            assert chunk, "closed before asking for the token"
            buf += chunk
        req = json.loads(buf[buf.index(b"\r\n\r\n") + 4:])
        body = json.dumps({"seq": 1, "type": "response", "request_seq": req["seq"], "success": True,
                           "command": "pydevdAuthorize", "body": {"clientAccessToken": token}}).encode()
        s.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        s.settimeout(2)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                if not s.recv(65536):
                    return False
            except socket.timeout:
                break
        return True
    finally:
        s.close()


def test_debug_server_port_wants_the_session_token(tmp_path):
    """Attached: debugpy's server port drops a "debug server" without the session's access
    token (debugpy itself checks none in attach/listen mode) and keeps one with it."""
    with _attached_and_paused(tmp_path) as (proc, c):
        server_port = c.events("debugpyWaitingForServer")[0]["body"]["port"]
        debugpy_pid = listening_ports(process_tree(c.proc.pid))[server_port]
        with open(f"/proc/{debugpy_pid}/environ", "rb") as f:  # the user can read it, others not
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        token = env[b"PYLIGHTNIX_DEBUGPY_TOKEN"].decode()
        assert _pose_as_debug_server(server_port, "wrong-token") is False
        assert _pose_as_debug_server(server_port, None) is False
        assert _pose_as_debug_server(server_port, token) is True  # the check is real
