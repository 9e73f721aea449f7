"""The session's debugpy side: client requests forwarded to a real debugpy adapter, its
events (``<event>_event``) and reverse requests relayed to the client.

Forwarded requests get debugpy's own seq numbers; the answer goes back to the
client under its request's seq (:meth:`DebugpyPeer.forward`), or as an error if
debugpy does not answer within :data:`REQUEST_TIMEOUT`. Events without a handler
here are relayed unchanged.
"""
from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from dap_adapter.adapter.debugpy_proxy import DebugpyGone, DebugpyProxy
from dap_adapter.adapter.watchdog import Watchdog
from dap_adapter.common import dispatch
from dap_adapter.common.messaging import Message
from pylightnix.wire.channel import new_secret

if TYPE_CHECKING:
    from dap_adapter.adapter.session import Session

#: debugpy's one-time note when a step passes through code justMyCode hides. Our own
#: steps (stopOnEntry through runpy, Step Into from a build pause through the engine)
#: always do that, so in the Debug Console it would be noise the user did not cause.
SKIPPED_FRAME_NOTE = "Frame skipped from debugging during step-in."
#: how long any forwarded request may take before the client gets an error instead
REQUEST_TIMEOUT = 60.0


class DebugpyPeer:
    """The debugpy adapter of one session (spawned at ``initialize``)."""

    def __init__(self, session: "Session") -> None:
        self.session = session
        self.proxy: Optional[DebugpyProxy] = None
        #: what the program's pydevd must present to our debugpy adapter (attach and launch)
        self.token = new_secret()
        self.server_port: Optional[int] = None
        self.server_listening = threading.Event()
        self.entry_pending = False  # launch with stopOnEntry: the first stop is the entry
        self.program_label: Optional[str] = None
        self.disconnected = False   # the client's disconnect went to debugpy already
        self._terminated_sent = False
        self._watchdog = Watchdog(REQUEST_TIMEOUT)

    @property
    def running(self) -> bool:
        return self.proxy is not None and not self.proxy.closed

    def start(self) -> None:
        """Spawn the debugpy adapter; raises DebugpyGone."""
        self.proxy = DebugpyProxy.spawn(self.token, sys.executable, on_event=self._on_event,
                                        on_reverse_request=self._on_reverse_request,
                                        on_close=self._on_close, log=self.session.trace)

    def call(self, command: str, arguments: Optional[Dict[str, Any]] = None, timeout: float = 10.0) -> Message:
        """Blocking request; raises DebugpyGone (also when there is no debugpy)."""
        if self.proxy is None:
            raise DebugpyGone("no debugpy adapter")
        return self.proxy.call(command, arguments, timeout)

    def forward(self, req: Message, arguments: Optional[Dict[str, Any]] = None,
                command: Optional[str] = None,
                rewrite: Optional[Callable[[Message], Optional[Dict[str, Any]]]] = None,
                finished: Optional[Callable[[], None]] = None) -> None:
        """Send the client's ``req`` to debugpy; answer the client under its own seq when
        debugpy answers. ``finished`` is called once the client has its answer (or an error)."""
        client = self.session.client
        if self.proxy is None or self.proxy.closed:
            client.error(req, f"{req['command']}: no debug session (launch or attach first)")
            return
        answered = threading.Event()

        def on_response(resp: Message) -> None:
            self._watchdog.discard(resp.get("request_seq", -1))
            if answered.is_set() or client.was_answered(req):
                return
            answered.set()
            body = resp.get("body")
            if rewrite is not None and resp.get("success"):
                body = rewrite(resp)
            client.respond(req["seq"], req["command"], body, bool(resp.get("success")), resp.get("message"))
            if finished is not None:
                finished()

        try:
            dseq = self.proxy.request(command or req["command"],
                                      req.get("arguments") if arguments is None else arguments, on_response)
        except DebugpyGone as e:
            client.error(req, f"{req['command']}: {e}")
            if finished is not None:
                finished()
            return

        def on_timeout() -> None:
            if not answered.is_set():
                answered.set()
                client.error(req, f"{req['command']}: debugpy did not answer in {REQUEST_TIMEOUT:.0f}s")
                if finished is not None:
                    finished()

        self._watchdog.add(dseq, on_timeout)

    # -- debugpy's messages ----------------------------------------------------
    def _on_event(self, msg: Message) -> None:
        name, body = msg.get("event"), msg.get("body")
        handler = dispatch.handler(self, name, dispatch.EVENT)
        if handler is not None:
            handler(body)
        else:
            self.session.client.event(str(name), body)

    def stopped_event(self, body: Optional[Dict[str, Any]]) -> None:
        self.session.client.event("stopped", self._map_stopped(dict(body or {})))

    def _map_stopped(self, body: Dict[str, Any]) -> Dict[str, Any]:
        if self.entry_pending:  # only the first stop can be the entry
            self.entry_pending = False
            if body.get("reason") == "step":
                return dict(body, reason="entry")
        s = self.session

        def hit_ids(name: str) -> list:
            with s.lock:
                return s.book.hit_ids(name)

        return s.pauses.on_stopped(body, hit_ids)

    def exited_event(self, body: Optional[Dict[str, Any]]) -> None:
        self.session.progress.end("Program ended")
        self.session.exited.set()
        self.session.client.event("exited", body)

    def terminated_event(self, body: Optional[Dict[str, Any]]) -> None:
        self.session.progress.end("Program ended")
        self.session.exited.set()
        self._terminated_sent = True
        self.session.client.event("terminated", body)

    def process_event(self, body: Optional[Dict[str, Any]]) -> None:
        if body and self.program_label:
            body = dict(body, name=self.program_label)
        self.session.client.event("process", body)

    def output_event(self, body: Optional[Dict[str, Any]]) -> None:
        if not str((body or {}).get("output", "")).startswith(SKIPPED_FRAME_NOTE):
            self.session.client.event("output", body)

    def debugpyWaitingForServer_event(self, body: Optional[Dict[str, Any]]) -> None:
        if self.session.mode == "attach":
            self.server_port = int((body or {}).get("port") or 0) or None
            self.server_listening.set()
        self.session.client.event("debugpyWaitingForServer", body)

    def _on_reverse_request(self, msg: Message) -> None:
        """debugpy asks the client something (runInTerminal): relay it, and the answer back."""
        proxy, dseq = self.proxy, msg["seq"]

        def answer(resp: Optional[Message]) -> None:
            if resp is not None and proxy is not None:
                proxy.respond(dseq, resp.get("command", ""), resp.get("body"), bool(resp.get("success")),
                              resp.get("message"))

        self.session.client.request(msg["command"], msg.get("arguments"), answer)

    def _on_close(self, proxy: DebugpyProxy) -> None:
        if proxy is not self.proxy:
            return  # the local adapter we replaced when attaching
        s = self.session
        s.exited.set()
        if s.mode is not None and not self._terminated_sent and not s.shut:
            # debugpy died without saying so: tell the client the session is over
            self._terminated_sent = True
            s.client.event("output", {"category": "stderr",
                                      "output": "pylightnix adapter: debugpy exited unexpectedly\n"})
            s.client.event("terminated")

    def close(self) -> None:
        """End of the session: a launched program ends with it, an attached one goes on."""
        self._watchdog.stop()
        if self.proxy is None:
            return
        if not self.proxy.closed and not self.disconnected:
            try:
                self.proxy.call("disconnect", {"terminateDebuggee": self.session.mode == "launch"}, timeout=3)
            except DebugpyGone:
                pass
        self.proxy.close()
