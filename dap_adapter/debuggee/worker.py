"""The debug service of a build paused on a worker (entry point ``pylightnix.debugger: worker``).

When a VS Code child session attaches to a build paused on a worker,
:func:`pylightnix.scale.worker.serve` calls :func:`serve` in the paused build's own
thread, with a connection spliced through the driver's pause hub to that child
session's adapter. The adapter speaks to it exactly as to a ``pylightnix debug
--listen`` program: hello and configuration, ``connect_debugger`` (pydevd
connects out to the child adapter's own debugpy, with its token), then the
build pause, served by a :class:`~dap_adapter.debuggee.agent.DapAgent` of its
own (not a frontend of the worker: this one pause is all it serves). When the
user continues, the pause frame returns, the agent says ``resumed`` and the
child session ends; the build goes on with what the pause says.
"""
from __future__ import annotations

import socket
from typing import Any, Dict, Optional

from pylightnix.engine.events import BuildPause
from pylightnix.scale.remote_pause import LINGER
from pylightnix.scale.worker import debugger_stream

from dap_adapter.common import protocol
from dap_adapter.debuggee import agent as agent_mod, attach, console, tracing

#: seconds the child session has to configure itself before the pause is shown anyway
CONFIGURE_TIMEOUT = 30.0


def warm_up() -> None:
    """While the build waits for its child session: import what attaching needs (pydevd,
    IPython), so the session stops sooner. Called in a background thread."""
    try:
        import debugpy.server.api  # noqa: F401  (pydevd, which debugpy.connect imports)
    except Exception:
        pass
    console.warm_up()


def serve(pause: BuildPause, sock: socket.socket) -> Optional[str]:
    """Serve ``pause`` to the child session's adapter on ``sock``; returns when the
    pause frame returns (Continue, Stop, Step Into) or the adapter goes away. After Step
    Into it returns ``LINGER``: the session stays (``sock`` open) while the build runs its
    realizer in this thread, so that stepping and line breakpoints stop there; the worker
    closes it when the build ends."""
    agent = agent_mod.DapAgent(in_worker=True)
    agent._warmed = True  # warm_up ran while the pause waited

    def connect_debugger(params: Dict[str, Any]) -> Dict[str, Any]:
        if params.get("via") == protocol.VIA_HUB:  # through the hub: the adapter may be on another host
            return attach.connect_debugger_over(debugger_stream(pause), str(params.get("token", "")))
        return attach.connect_debugger(params)
    agent.methods[protocol.CONNECT_DEBUGGER] = connect_debugger
    agent.attach_channel(sock)
    ch = agent.channel
    if ch is None or ch.closed:
        return
    configured = agent.configured.wait(CONFIGURE_TIMEOUT)
    if ch.closed:
        return  # the child session went away before it was set up: the pause takes its default
    if configured:
        tracing.go_untraced()  # only the pause frame needs pydevd; the worker's other threads run free
    try:
        agent.stop(pause)
    finally:
        if agent.stepped:  # Step Into: the session goes on through the realizer, until the build ends
            return LINGER
        ch.close()  # the child session ends with this pause (its adapter then detaches pydevd)
    return None
