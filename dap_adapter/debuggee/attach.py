"""``pylightnix debug --listen``: make a running program attachable by the adapter.

The core finds :func:`serve_attach` through the entry point ``pylightnix.debugger:listen``
(pyproject.toml), so ``pylightnix.debug`` never imports this package by name.
"""
from __future__ import annotations

import atexit
import ipaddress
import os
import sys
import time
from typing import Any, Dict, Optional

import debugpy  # noqa: F401  (the "dap" extra: a missing one is reported before listening)

from pylightnix import attach_info, settings
from pylightnix.channel import Listener, new_secret

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
    return {"ok": True, "pid": os.getpid()}


def serve_attach(host: str, port: int, wait: Optional[bool] = None) -> str:
    """Make this process attachable by ``dap_adapter`` (``pylightnix debug --listen``).

    Listens on ``host:port`` (loopback) for the side channel only, writes the attach
    file with the per-session secret (:mod:`pylightnix.attach_info`) and installs the
    agent. Nothing here listens for a debugger: an adapter that proved the secret asks
    the program (``connect_debugger``) to connect pydevd out to the adapter's own
    debugpy, with that adapter's access token. With ``wait`` (default:
    ``$PYLIGHTNIX_DEBUG_WAIT``), blocks until an adapter has attached and sent its
    breakpoints. Returns the attach file's path; the caller runs the script.
    Raises :class:`pylightnix.attach_info.AttachInfoError` for an unusable attach-file
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
