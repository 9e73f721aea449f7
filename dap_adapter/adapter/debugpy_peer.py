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
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

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
        self._server_port: Optional[int] = None
        self._server_listening = threading.Event()
        self._entry_pending = False  # launch with stopOnEntry: the first stop is the entry
        self._program_label: Optional[str] = None
        self._disconnected = False   # debugpy was told to disconnect already
        self._watchdog = Watchdog(REQUEST_TIMEOUT)

    @property
    def running(self) -> bool:
        return self.proxy is not None and not self.proxy.closed

    @property
    def pid(self) -> Optional[int]:
        """The debugpy adapter's process id (a launched program descends from it)."""
        proc = self.proxy.proc if self.proxy is not None else None
        return proc.pid if proc is not None else None

    def expect_program(self, label: Optional[str], entry_pending: bool) -> None:
        """Launch: the name the program's ``process`` event shows, and whether its first
        stop is the entry (stopOnEntry)."""
        self._program_label, self._entry_pending = label, entry_pending

    def server_port(self, timeout: float) -> Optional[int]:
        """Attach: the port debugpy listens on for the program's debug server, once it says
        (``debugpyWaitingForServer``); None if it does not within ``timeout`` seconds."""
        self._server_listening.wait(timeout)
        return self._server_port

    def disconnect(self, terminate: Optional[bool], arguments: Optional[Dict[str, Any]] = None) -> Message:
        """Tell debugpy to let the program go (``terminate``: end it too; None: as
        ``arguments`` say, else debugpy's default), once per session; returns debugpy's
        answer. A debugpy that is gone, or already told, counts as done."""
        with self.session.lock:
            told, self._disconnected = self._disconnected, True
        if told or not self.running:
            return {"success": True}
        try:
            args = dict(arguments or {})
            if terminate is not None:
                args["terminateDebuggee"] = terminate
            resp = self.call("disconnect", args, timeout=5)
        except DebugpyGone:
            return {"success": True}
        # debugpy exiting before it answers still means: disconnected
        return resp if self.running else {"success": True}

    def resume(self, thread_ids: List[int]) -> bool:
        """Continue these threads (paused builds being cancelled); False if debugpy is gone."""
        try:
            for tid in thread_ids:
                self.call("continue", {"threadId": tid}, timeout=3)
        except DebugpyGone:
            return False
        return True

    def start(self) -> None:
        """Spawn the debugpy adapter; raises DebugpyGone."""
        post = self.session.post  # debugpy's reader thread never waits for the session's lock
        self.proxy = DebugpyProxy.spawn(self.token, sys.executable, on_event=lambda m: post(self._on_event, m),
                                        on_reverse_request=lambda m: post(self._on_reverse_request, m),
                                        on_close=lambda p: post(self._on_close, p), log=self.session.trace)

    def call(self, command: str, arguments: Optional[Dict[str, Any]] = None, timeout: float = 10.0) -> Message:
        """Blocking request; raises DebugpyGone (also when there is no debugpy)."""
        if self.proxy is None:
            raise DebugpyGone("no debugpy adapter")
        return self.proxy.call(command, arguments, timeout)

    def forward(self, req: Message, arguments: Optional[Dict[str, Any]] = None,
                command: Optional[str] = None,
                rewrite: Optional[Callable[[Message], Optional[Dict[str, Any]]]] = None,
                finished: Optional[Callable[[], None]] = None,
                failure: Optional[Callable[[Message], Optional[str]]] = None) -> None:
        """Send the client's ``req`` to debugpy; answer the client under its own seq when
        debugpy answers. ``finished`` is called once the client has its answer (or an error).
        ``failure`` may turn a successful answer into an error: it returns the message."""
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
            body, success, message = resp.get("body"), bool(resp.get("success")), resp.get("message")
            why = failure(resp) if failure is not None and success else None
            if why is not None:
                body, success, message = None, False, why
            elif rewrite is not None and success:
                body = rewrite(resp)
            client.respond(req["seq"], req["command"], body, success, message)
            if finished is not None:
                finished()

        try:
            dseq = self.proxy.request(command or req["command"],
                                      req.get("arguments") if arguments is None else arguments,
                                      lambda resp: self.session.post(on_response, resp))
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

        self._watchdog.add(dseq, lambda: self.session.post(on_timeout))

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
        if self._entry_pending:  # only the first stop can be the entry
            self._entry_pending = False
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
        self.session.client.terminated()

    def process_event(self, body: Optional[Dict[str, Any]]) -> None:
        if body and self._program_label:
            body = dict(body, name=self._program_label)
        self.session.client.event("process", body)

    def output_event(self, body: Optional[Dict[str, Any]]) -> None:
        if not str((body or {}).get("output", "")).startswith(SKIPPED_FRAME_NOTE):
            self.session.client.event("output", body)

    def debugpyWaitingForServer_event(self, body: Optional[Dict[str, Any]]) -> None:
        if self.session.program.mode == "attach":
            self._server_port = int((body or {}).get("port") or 0) or None
            self._server_listening.set()
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
        if s.program.mode is not None and not s.shut and not s.client.was_terminated:
            # debugpy died without saying so: tell the client the session is over
            s.client.event("output", {"category": "stderr",
                                      "output": "pylightnix adapter: debugpy exited unexpectedly\n"})
            s.client.terminated()

    def close(self) -> None:
        """End of the session: a launched program ends with it, an attached one goes on."""
        self._watchdog.stop()
        if self.proxy is None:
            return
        self.disconnect(terminate=self.session.program.mode == "launch")
        self.proxy.close()
