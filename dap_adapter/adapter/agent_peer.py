"""The session's side of the agent in the debuggee: the authenticated side channel.

Launch: the session listens (:meth:`AgentPeer.listen`) and the launched program's
agent connects with the secret from its environment. Attach: the session connects
to the program's listener (:meth:`AgentPeer.connect`), proving the secret of its
attach file. Either way one agent at a time; what it says (build pauses,
instantiated derivations, progress, output) is handled by name: ``<method>_request``
and ``<event>_event`` (names in :mod:`dap_adapter.common.protocol`).
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Dict, Optional

from dap_adapter.common import dispatch, protocol
from pylightnix.wire.channel import Channel, ChannelError, Listener, connect, new_secret

if TYPE_CHECKING:
    from dap_adapter.adapter.session import Session


class AgentPeer:
    """The connection to the debuggee's agent (none until launch or attach)."""

    def __init__(self, session: "Session") -> None:
        self.session = session
        self.secret = new_secret()
        self.channel: Optional[Channel] = None
        self.listener: Optional[Listener] = None
        self._paused_build: Any = None  # a child session: (the hub's attach info, the pause's id)
        self.program_pid: Optional[int] = None  # from the agent's hello (authenticated)
        self._lock = threading.Lock()

    @property
    def connected(self) -> Optional[Channel]:
        """The open channel, or None."""
        ch = self.channel
        return ch if ch is not None and not ch.closed else None

    def listen(self) -> Listener:
        """Launch: a listener for the program's agent (the caller starts :meth:`serve`)."""
        return Listener(self.secret, log=self.session.client.log_refused)

    def serve(self, listener: Listener) -> None:
        """Keep accepting for the whole session: later attempts are refused and logged."""
        self.listener = listener
        listener.serve_forever(self._connected)

    def connect(self, host: str, port: int, secret: str) -> None:
        """Attach: prove we know the program's secret on its side channel; raises
        ChannelError or OSError."""
        self._use(connect(host, port, secret))

    def connect_paused_build(self, hub: Dict[str, Any], pause_id: str) -> Dict[str, Any]:
        """A child session: reach the agent of a build paused on a worker through the
        driver's pause hub (its secret from the hub's attach file); returns what the hub
        says about the build. Raises ``pylightnix.AttachError``."""
        from pylightnix.scale.remote_pause import DEBUG, open_service
        sock, info = open_service(pause_id, DEBUG, hub)
        self._paused_build = (hub, pause_id)
        self._use(sock)
        return info

    def debugger_stream(self) -> Any:
        """A child session: a second stream through the hub to its paused build, for the
        worker's pydevd (which cannot be assumed to reach this host). Raises AttachError."""
        from pylightnix.scale.remote_pause import DEBUGGER_STREAM, open_service
        hub, pause_id = self._paused_build
        return open_service(pause_id, DEBUGGER_STREAM, hub)[0]

    def _connected(self, sock: Any) -> None:
        with self._lock:
            busy = self.connected is not None
        if busy:
            self.session.client.log_refused("pylightnix side channel: refused a second agent connection")
            sock.close()
            return
        self._use(sock)

    def _use(self, sock: Any) -> None:
        post = self.session.post  # the channel's reader thread never waits for the session's lock
        ch = Channel(sock, on_request=self._on_request, on_event=lambda e, b: post(self._on_event, e, b),
                     on_close=lambda: post(self._on_close), name="adapter-channel")
        with self._lock:
            self.channel = ch
        ch.start()

    def call(self, method: str, params: Optional[Dict[str, Any]] = None, timeout: float = 10.0) -> Any:
        """A request to the agent; raises ChannelError (also when none is connected)."""
        ch = self.channel
        if ch is None:
            raise ChannelError("no agent connected")
        return ch.call(method, params or {}, timeout=timeout)

    def configure(self) -> None:
        """Send the current build breakpoints and break-on-failure (no agent: nothing to do)."""
        if self.connected is None:
            return
        try:
            self.call(protocol.CONFIGURE, self.session.agent_config(), timeout=5)
        except ChannelError as e:
            self.session.log(f"configure failed: {e}")

    # -- the agent's messages ------------------------------------------------------
    def _on_request(self, method: str, params: Dict[str, Any]) -> Any:
        """In the channel's thread for this request: handled in the session's inbox, after
        the events the agent sent before it (a pause after the progress that led to it)."""
        handler = dispatch.handler(self, method, dispatch.REQUEST)
        if handler is None:
            raise ChannelError(f"unknown method {method}")
        try:
            return self.session.call(handler, params)
        except TimeoutError as e:
            raise ChannelError(str(e)) from None

    def _on_event(self, event: str, body: Dict[str, Any]) -> None:
        handler = dispatch.handler(self, event, dispatch.EVENT)
        if handler is not None:
            handler(body)

    def hello_request(self, params: Dict[str, Any]) -> Dict[str, Any]:
        pid = params.get("pid")
        self.program_pid = pid if isinstance(pid, int) and pid > 0 else None
        return self.session.agent_config()

    def pause_request(self, params: Dict[str, Any]) -> Dict[str, Any]:
        s = self.session
        s.pauses.announce(params)
        s.progress.paused(str(params.get("name", "?")), params.get("kind") == protocol.FAILURE)
        if s.paused_build is None:  # a child session's build is listed by its parent
            s.builds.paused(str(params.get("dref")), str(params.get("name", "?")))
        return {"ok": True}

    def instantiated_event(self, body: Dict[str, Any]) -> None:
        s = self.session
        s.builds.instantiated(list(body.get("derivations", [])))
        names = [str(n) for _, n in body.get("derivations", [])]
        with s.lock:
            changed = s.book.learn(names)
        for b in changed:
            s.client.event("breakpoint", {"reason": "changed", "breakpoint": b.dap()})

    def resumed_event(self, body: Dict[str, Any]) -> None:
        s = self.session
        s.pauses.resumed(str(body.get("dref", "")))
        if s.paused_build is None:
            s.builds.resumed(str(body.get("dref", "")), "", str(body.get("state", "")))

    def progress_event(self, body: Dict[str, Any]) -> None:
        self.session.progress.update(body)
        self.session.builds.progress(body)

    def built_event(self, body: Dict[str, Any]) -> None:
        self.session.builds.built(str(body.get("dref")), str(body.get("name")))

    def worker_paused_event(self, body: Dict[str, Any]) -> None:
        self.session.workers.paused(body)

    def worker_resumed_event(self, body: Dict[str, Any]) -> None:
        self.session.workers.resumed(body)

    def output_event(self, body: Dict[str, Any]) -> None:
        self.session.client.event("output", {"category": body.get("category", "console"),
                                             "output": str(body.get("output", ""))})

    def _on_close(self) -> None:
        s = self.session
        s.pauses.clear()
        if s.paused_build is not None and not s.shut:
            # the worker's build went on (or away): this child session is over
            threading.Thread(target=self._end_child_session, name="dap-child-end", daemon=True).start()

    def _end_child_session(self) -> None:
        """Detach the worker's pydevd at once (the worker serves other builds and must be able
        to exit; a client may be slow to disconnect), then tell the client the session ended."""
        self.session.debugpy.disconnect(terminate=False)
        self.session.client.terminated()

    def close(self) -> None:
        if self.channel is not None:
            self.channel.close()
        if self.listener is not None:
            self.listener.close()
