"""Turn off Nagle's algorithm on pydevd's socket to the debugpy adapter (debuggee side).

pydevd writes each DAP message as two ``sendall`` calls (header, then body).
With Nagle on, the body waits for the peer's delayed ACK of the header: about
40 ms on every response and event, which alone would eat the console's latency
budget. Setting ``TCP_NODELAY`` makes a round trip take about a millisecond.
"""
from __future__ import annotations

import socket
import sys


def set_nodelay() -> bool:
    """Set TCP_NODELAY on pydevd's writer socket; returns whether it was found."""
    if "pydevd" not in sys.modules:
        return False
    try:
        from pydevd import get_global_debugger
        sock = getattr(getattr(get_global_debugger(), "writer", None), "sock", None)
        if sock is None:
            return False
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return True
    except (ImportError, OSError, AttributeError):
        return False
