"""``python -m dap_adapter [--port N] [--log FILE]``: serve DAP on stdio or on 127.0.0.1:N.

A DAP client can launch any program, so the TCP port serves only connections
from processes of the adapter's own user (checked through ``/proc/net/tcp`` on
Linux; ``--port`` is refused where that check is impossible). SSH forwarding
(``ssh -L``) still works: the forwarded connection comes from the user's sshd.
"""
from __future__ import annotations

import argparse
import os
import socket
import struct
import sys
import threading
import time
from typing import Callable, List, Optional

from pylightnix import events

from dap_adapter import bundle
from dap_adapter.adapter.session import Session
from dap_adapter.common.messaging import Endpoint


def _logger(path: Optional[str]) -> Optional[Callable[[str], None]]:
    if not path:
        return None
    lock = threading.Lock()

    def log(text: str) -> None:
        with lock, open(path, "a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {text.rstrip()}\n")
    return log


def serve_stdio(log: Optional[Callable[[str], None]]) -> None:
    """One session over stdin/stdout (what an editor spawns)."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # nothing else may write to the protocol stream
    sys.stdout = sys.stderr
    Session(Endpoint.from_streams(stdin, stdout), log).serve()


PROC_NET_TCP = "/proc/net/tcp"


def _proc_addr(field: str) -> tuple:
    host, port = field.split(":")
    return socket.inet_ntoa(struct.pack("=I", int(host, 16))), int(port, 16)


def peer_uid(conn: socket.socket) -> Optional[int]:
    """The uid owning the other end of a loopback IPv4 connection, or None if unknown."""
    try:
        peer, local = conn.getpeername()[:2], conn.getsockname()[:2]
        with open(PROC_NET_TCP) as f:
            rows = f.read().splitlines()[1:]
    except OSError:
        return None
    for row in rows:
        fields = row.split()
        try:
            if _proc_addr(fields[1]) == peer and _proc_addr(fields[2]) == local:
                return int(fields[7])
        except (IndexError, ValueError):
            continue
    return None


def _refuse(conn: socket.socket, uid: Optional[int]) -> None:
    who = "an unknown user" if uid is None else f"uid {uid}"
    text = (f"pylightnix adapter: refused a connection from {who}: this adapter (uid {os.getuid()}) "
            f"serves only its own user\n")
    print(text.strip(), file=sys.stderr, flush=True)
    try:
        Endpoint.from_socket(conn).event("output", {"category": "stderr", "output": text})
    finally:
        conn.close()


def serve_tcp(port: int, log: Optional[Callable[[str], None]], once: bool = False) -> None:
    """Sessions over TCP on 127.0.0.1:port, one per connection (launch.json ``debugServer``),
    for connections of this user only."""
    if not os.path.exists(PROC_NET_TCP):
        raise SystemExit("python -m dap_adapter: --port needs /proc/net/tcp (Linux) to check who "
                         "connects; use stdio (no --port) on this system")
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)
    print(f"dap_adapter: listening on 127.0.0.1:{srv.getsockname()[1]}", file=sys.stderr, flush=True)
    while True:
        conn, _ = srv.accept()
        uid = peer_uid(conn)
        if uid != os.getuid():
            _refuse(conn, uid)
            continue
        session = Session(Endpoint.from_socket(conn), log)
        t = threading.Thread(target=session.serve, name="dap-session", daemon=True)
        t.start()
        if once:
            t.join()
            return


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m dap_adapter",
                                description="pylightnix Debug Adapter (debugpy + build breakpoints)")
    p.add_argument("--port", type=int, default=None, help="serve DAP on 127.0.0.1:PORT instead of stdio")
    p.add_argument("--once", action="store_true", help="with --port: exit after the first session")
    p.add_argument("--log", default=None,
                   help="append diagnostics and every DAP message (client and debugpy side) to this file")
    ns = p.parse_args(argv)
    events.drop_frontends()  # this process realizes nothing: no progress display, no terminal fallback
    bundle.use()  # debugpy, if this interpreter has none
    log = _logger(ns.log)
    try:
        if ns.port is None:
            serve_stdio(log)
        else:
            serve_tcp(ns.port, log, ns.once)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
