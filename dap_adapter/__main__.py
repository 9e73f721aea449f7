"""``python -m dap_adapter [--port N] [--log FILE]``: serve DAP on stdio or on 127.0.0.1:N."""
from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from typing import Callable, List, Optional

from dap_adapter import bundle
from dap_adapter.messaging import Endpoint
from dap_adapter.session import Session


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


def serve_tcp(port: int, log: Optional[Callable[[str], None]], once: bool = False) -> None:
    """Sessions over TCP on 127.0.0.1:port, one per connection (launch.json ``debugServer``)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)
    print(f"dap_adapter: listening on 127.0.0.1:{srv.getsockname()[1]}", file=sys.stderr, flush=True)
    while True:
        conn, _ = srv.accept()
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
