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

The program's lifecycle (launch, the attach handshake, terminate) is
:class:`~dap_adapter.adapter.program.Program`. Adding a kind of peer is adding a
module with its component and one attribute here. The session itself only keeps
the shared state (build breakpoints, pauses, progress) and the steps that
involve several peers.

**The lock rule** (debugpy's): every message handler of every peer runs under
``session.lock``, so only one handler runs at a time and the session's state
and the peers' own fields are touched by one thread at a time. The client's
requests (and its answers to our reverse requests) run in the client's reader
thread; what debugpy says (events, reverse requests, answers to forwarded
requests, its exit), the agent's events and its channel closing, and request
deadlines are posted by their reader threads to the session's inbox
(:meth:`Session.post`), one thread that runs them in order. The agent's
requests go there too, in order with its events (:meth:`Session.call`: the
channel's thread for the request waits for the answer). A reader thread
itself never waits for the lock, so a handler may make a blocking call to a
peer (its answer is matched in the reader thread). A handler that waits for
another handler's effect uses :meth:`SessionLock.wait_for`, which lets go of
the lock meanwhile. Threads a handler starts (the attach step 3, the terminate
watch, ending a child session) take the lock only to touch shared state, never
across a call: their calls may need a handler to run first.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Dict, Optional, Tuple

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
from pylightnix.wire.channel import ChannelError


class SessionLock:
    """The session's reentrant lock, which knows which thread holds it (:meth:`held`) and
    lets its holder wait for a change made by another handler (:meth:`wait_for`)."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._owner: Optional[int] = None
        self._depth = 0

    def __enter__(self) -> "SessionLock":
        self._cond.__enter__()
        self._owner = threading.get_ident()
        self._depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._cond.notify_all()  # a holder waiting for a change looks again
        self._cond.__exit__(*exc)

    def held(self) -> bool:
        """Whether the calling thread holds the lock."""
        return self._owner == threading.get_ident()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Holding the lock: let go of it until ``predicate()`` (checked after every
        handler) or ``timeout`` seconds; returns the predicate's last value."""
        depth, self._owner, self._depth = self._depth, None, 0
        try:
            return self._cond.wait_for(predicate, timeout)
        finally:
            self._owner, self._depth = threading.get_ident(), depth


class Session:
    """Serve one client connection until it disconnects."""

    def __init__(self, client: Endpoint, log: Optional[Callable[[str], None]] = None) -> None:
        """``log``, if given, receives diagnostics and every DAP message (``--log FILE``)."""
        self.trace = log
        self.log: Callable[[str], None] = log or (lambda s: None)
        self.lock = SessionLock()
        self._inbox: "queue.SimpleQueue[Optional[Tuple[Callable[..., Any], Tuple[Any, ...]]]]" = queue.SimpleQueue()
        threading.Thread(target=self._run_inbox, name="dap-session-inbox", daemon=True).start()
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

    def post(self, handler: Callable[..., Any], *args: Any) -> None:
        """Run ``handler(*args)`` under the lock in the session's inbox thread, after what
        was posted before (reader threads never wait for the lock themselves)."""
        self._inbox.put((handler, args))

    def call(self, handler: Callable[..., Any], *args: Any, timeout: float = 60.0) -> Any:
        """:meth:`post` and wait for the result (or the exception); raises ``TimeoutError``
        if it has not run within ``timeout`` seconds."""
        done = threading.Event()
        out: Dict[str, Any] = {}

        def job() -> None:
            try:
                out["result"] = handler(*args)
            except Exception as e:
                out["error"] = e
            finally:
                done.set()

        self.post(job)
        if not done.wait(timeout):
            raise TimeoutError(f"the session did not get to {getattr(handler, '__name__', handler)} "
                               f"within {timeout:g} s")
        if "error" in out:
            raise out["error"]
        return out.get("result")

    def _run_inbox(self) -> None:
        while True:
            item = self._inbox.get()
            if item is None:
                return
            handler, args = item
            try:
                with self.lock:
                    handler(*args)
            except Exception as e:  # one broken handler must not end the session
                self.log(f"handler {getattr(handler, '__name__', handler)!r} failed: {type(e).__name__}: {e}")

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
            self.lock.wait_for(self.exited.is_set, 1.5)

    def shutdown(self) -> None:
        with self.lock:
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
        self._inbox.put(None)
