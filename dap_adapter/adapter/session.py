"""One debug session: what its peers share, and one component per peer.

A session serves one DAP client. It holds one component per peer, each in its
own module, each handling its peer's messages by name
(:mod:`dap_adapter.common.dispatch`):

- :class:`~dap_adapter.adapter.client_peer.ClientPeer`: the editor (DAP requests
  ``<command>_request``; what debugpy cannot answer is answered here);
- :class:`~dap_adapter.adapter.debugpy_peer.DebugpyPeer`: a real debugpy adapter
  (requests forwarded under its own seq numbers, events ``<event>_event``);
- :class:`~dap_adapter.adapter.agent_peer.AgentPeer`: the agent in the debuggee,
  over the authenticated side channel (``<method>_request``, ``<event>_event``);
  in a child session, the agent of a build paused on a worker;
- :class:`~dap_adapter.adapter.worker_sessions.WorkerSessions`: builds paused on
  workers, each shown as a child session the client opens (``startDebugging``).

Adding a kind of peer is adding a module with its component and one attribute
here. The session itself only keeps the shared state (build breakpoints,
pauses, progress, the mode) and the steps that involve several peers.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional

from dap_adapter.adapter.agent_peer import AgentPeer
from dap_adapter.adapter.build_progress import BuildProgress
from dap_adapter.adapter.builds import Builds
from dap_adapter.adapter.client_peer import ClientPeer
from dap_adapter.adapter.debugpy_peer import DebugpyPeer
from dap_adapter.adapter.debugpy_proxy import DebugpyGone
from dap_adapter.adapter.function_breakpoints import Book
from dap_adapter.adapter.pauses import Pauses
from dap_adapter.adapter.program import Program
from dap_adapter.adapter.worker_sessions import WorkerSessions
from dap_adapter.common import protocol
from dap_adapter.common.messaging import Endpoint
from pylightnix.channel import ChannelError


class Session:
    """Serve one client connection until it disconnects."""

    def __init__(self, client: Endpoint, log: Optional[Callable[[str], None]] = None) -> None:
        """``log``, if given, receives diagnostics and every DAP message (``--log FILE``)."""
        self.trace = log
        self.log: Callable[[str], None] = log or (lambda s: None)
        self.lock = threading.RLock()
        self.book = Book()
        self.pauses = Pauses()
        self.break_on_failure = False          # the "Failed builds" exception filter
        self.launch_break_on_failure = False   # launch.json's breakOnFailedBuilds
        self.configuration_done = False
        #: a child session: the build paused on a worker it shows (its ``pylightnixPause``)
        self.paused_build: Optional[Dict[str, Any]] = None
        self.exited = threading.Event()        # the program (or debugpy) is gone
        self.done = threading.Event()
        self.shut = False
        self.client = ClientPeer(self, client)
        self.progress = BuildProgress(self.client.event)
        self.builds = Builds(self.client.event)
        self.debugpy = DebugpyPeer(self)
        self.agent = AgentPeer(self)
        self.workers = WorkerSessions(self)
        self.program = Program(self)

    def serve(self) -> None:
        """Read the client until EOF or disconnect."""
        try:
            self.client.serve()
        finally:
            self.shutdown()

    def agent_config(self) -> Dict[str, Any]:
        """What the agent pauses on (its ``hello`` answer and ``configure`` request)."""
        with self.lock:
            return {"buildBreakpoints": self.book.patterns(),
                    "breakOnFailure": self.break_on_failure or self.launch_break_on_failure,
                    "ready": self.configuration_done}

    def cancel_paused_builds(self) -> None:
        """Disconnect/terminate at a build pause cancels the build: the agent marks the
        pause cancelled, the thread resumes, the engine removes its temporary outputs
        and ``realize`` raises ``BuildCancelled``; then the program ends."""
        paused = self.pauses.threads()
        if not (paused or self.workers.active()) or self.agent.channel is None:
            return
        if paused and not self.debugpy.running:
            return
        try:  # the agent cancels its pause, and in a driver every build paused on a worker
            self.agent.call(protocol.CANCEL, timeout=3)
        except ChannelError:
            return
        if not paused:
            return
        try:  # do not stop again on the BuildCancelled that follows
            self.debugpy.call("setExceptionBreakpoints", {"filters": []}, timeout=3)
        except DebugpyGone:
            return
        if self.debugpy.resume(paused):
            self.exited.wait(1.5)

    def shutdown(self) -> None:
        if self.shut:
            return
        self.shut = True
        self.done.set()
        try:
            self.cancel_paused_builds()
        except Exception:
            pass
        self.debugpy.close()
        self.agent.close()
        self.client.close()
