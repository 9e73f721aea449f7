"""``pylightnix debug --listen``: make a running program attachable by the adapter.

The core finds :func:`serve_attach` through the entry point ``pylightnix.debugger:listen``
(pyproject.toml), so ``pylightnix.frontends.debug`` never imports this package by name.
"""
from __future__ import annotations

import atexit
import ipaddress
import os
import sys
import time
from typing import Any, Dict, Optional

import debugpy  # noqa: F401  (the "dap" extra: a missing one is reported before listening)

from pylightnix.wire import attach_info

from pylightnix.core import settings
from pylightnix.wire.channel import Listener, new_secret

from dap_adapter.common import protocol
from dap_adapter.debuggee import agent as agent_mod, tracing


def _wait_for_previous_debugger(timeout: float = 10.0) -> None:
    """A re-attach: pydevd disposes of the previous adapter's connection shortly after it
    went away; until then ``debugpy.connect`` would not connect anew."""
    if "pydevd" not in sys.modules:
        return
    from pydevd import get_global_debugger
    deadline = time.monotonic() + timeout
    while get_global_debugger() is not None:
        if time.monotonic() > deadline:
            raise RuntimeError("a debugger is still connected to this program")
        time.sleep(0.05)


def connect_debugger(params: Dict[str, Any]) -> Dict[str, Any]:
    """Side-channel request of an authenticated adapter: connect pydevd out to its debugpy
    adapter, presenting the adapter's access token."""
    host, port, token = str(params.get("host", "")), int(params.get("port", 0)), str(params.get("token", ""))
    if not ipaddress.ip_address(host).is_loopback or not 0 < port < 65536 or not token:
        raise ValueError(f"connect_debugger: need a loopback host, a port and a token, got {host}:{port}")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # stdlib breakpoints are not our use
    _wait_for_previous_debugger()
    debugpy.connect((host, port), access_token=token)
    tracing.new_session()
    return {"ok": True, "pid": os.getpid()}


def connect_debugger_over(sock: Any, token: str) -> Dict[str, Any]:
    """Like :func:`connect_debugger`, for a build paused on a worker: pydevd talks to the
    adapter's debugpy through ``sock``, a stream the driver's pause hub spliced to it
    (the adapter may run on a host this worker cannot reach), instead of dialing a port."""
    if not token:
        raise ValueError("connect_debugger: need the adapter's token")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    import debugpy.server.api  # noqa: F401  (puts pydevd on the path)
    import pydevd
    _wait_for_previous_debugger()
    dial = pydevd.start_client  # what PyDB.connect calls for a client connection
    pydevd.start_client = lambda host, port: sock
    try:
        debugpy.connect(("127.0.0.1", 1), access_token=token)  # the address is not dialed
    finally:
        pydevd.start_client = dial
    tracing.new_session()
    return {"ok": True, "pid": os.getpid()}


def serve_attach(host: str, port: int, wait: Optional[bool] = None) -> str:
    """Make this process attachable by ``dap_adapter`` (``pylightnix debug --listen``).

    Listens on ``host:port`` (loopback) for the side channel only, writes the attach
    file with the per-session secret (:mod:`pylightnix.wire.attach_info`) and installs the
    agent. Nothing here listens for a debugger: an adapter that proved the secret asks
    the program (``connect_debugger``) to connect pydevd out to the adapter's own
    debugpy, with that adapter's access token. With ``wait`` (default:
    ``$PYLIGHTNIX_DEBUG_WAIT``), blocks until an adapter has attached and sent its
    breakpoints. Returns the attach file's path; the caller runs the script.
    Raises :class:`pylightnix.wire.attach_info.AttachInfoError` for an unusable attach-file
    directory, OSError when the port cannot be bound.
    """
    if wait is None:
        wait = bool(settings.debug_wait())
    attach_info.private_directory()  # refuse a shared directory before listening
    secret = new_secret()
    listener = Listener(secret, port=port, host=host)
    path = attach_info.write(listener.port, {"pid": os.getpid(), "host": listener.host,
                                             "port": listener.port, "secret": secret})
    atexit.register(attach_info.remove, listener.port, os.getpid())
    agent = agent_mod.install()
    agent.methods[protocol.CONNECT_DEBUGGER] = connect_debugger
    agent.before_exit.append(lambda: attach_info.remove(listener.port, os.getpid()))
    listener.serve_forever(agent.attach_channel)
    print(f"pylightnix: waiting for a debugger to attach on {listener.host}:{listener.port} "
          f"(attach file {path}){'' if wait else '; the script runs meanwhile'}", file=sys.stderr, flush=True)
    if wait:
        agent.configured.wait()
        tracing.go_untraced()
    return path
