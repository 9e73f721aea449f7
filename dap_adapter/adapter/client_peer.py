"""The session's client side: the editor's DAP requests, each handled by ``<command>_request``.

Requests with a handler here are answered here (often by forwarding to debugpy
with changes: build breakpoints, the Debug Console; launch, attach and terminate
go to the program's lifecycle, :mod:`dap_adapter.adapter.program`); the others
in :data:`FORWARDED` go to debugpy unchanged; anything else is an error response.
Every handler runs under ``session.lock`` (the rule: :mod:`dap_adapter.adapter.session`). Reverse requests to the client (debugpy's
``runInTerminal``) are matched to their answers by :class:`pylightnix.wire.pending.Pending`.
"""
from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from dap_adapter.adapter import console
from dap_adapter.adapter.debugpy_proxy import DebugpyGone
from dap_adapter.adapter.pauses import exception_info
from dap_adapter.common import dispatch, protocol
from dap_adapter.common.messaging import BadMessage, Endpoint, Message
from pylightnix.wire.channel import ChannelError
from pylightnix.wire.pending import Pending

if TYPE_CHECKING:
    from dap_adapter.adapter.session import Session

FAILURE_FILTER = {"filter": protocol.FAILURE_FILTER_ID, "label": "Failed builds",
                  "description": "Pause when a pylightnix stage's realizer raises; the failed build "
                                 "is alive as `b`", "default": False}

#: requests debugpy answers; anything else is answered here
FORWARDED = {
    "initialize", "configurationDone", "threads", "terminate", "completions", "launch", "attach",
    "pause", "continue", "next", "stepIn", "stepInTargets", "stepOut", "disconnect",
    "setFunctionBreakpoints", "setBreakpoints", "setExceptionBreakpoints", "stackTrace",
    "exceptionInfo", "scopes", "evaluate", "setExpression", "variables", "setVariable", "modules",
    "source", "gotoTargets", "goto", "setDebuggerProperty", "pydevdSystemInfo",
    "debugpySystemInfo", "setPydevdSourceMap",
}

class ClientPeer:
    """The DAP client of one session (the editor)."""

    def __init__(self, session: "Session", endpoint: Endpoint) -> None:
        self.session = session
        self.ep = endpoint
        if session.trace is not None:
            trace = session.trace
            endpoint._on_send = lambda m: trace("-> client " + json.dumps(m))
        self.init_args: Dict[str, Any] = {}
        self.capabilities: Dict[str, Any] = {}
        self._answered: set = set()  # requests already answered with an error here
        self._cells: set = set()     # seqs of console cells (repl evaluates) running
        self._reverse = Pending()    # our requests to the client (relayed for debugpy)
        self._terminated = False     # the client has its ``terminated`` event

    # -- the connection -----------------------------------------------------------
    def event(self, event: str, body: Optional[Dict[str, Any]] = None) -> None:
        self.ep.event(event, body)

    def respond(self, request_seq: int, command: str, body: Optional[Dict[str, Any]] = None,
                success: bool = True, message: Optional[str] = None) -> None:
        self.ep.respond(request_seq, command, body, success, message)

    def error(self, req: Message, text: str) -> None:
        self.ep.error(req, text)

    def request(self, command: str, arguments: Optional[Dict[str, Any]],
                on_answer: Callable[[Optional[Message]], None]) -> None:
        """A reverse request; ``on_answer`` gets the client's response (None: the client left)."""
        msg: Message = {"type": "request", "command": command}
        if arguments is not None:
            msg["arguments"] = arguments
        self.ep.send(msg, lambda m: self._reverse.expect(m["seq"], on_answer))

    def was_answered(self, req: Message) -> bool:
        """Whether ``req`` was already answered with an error here (a late answer is dropped)."""
        with self.session.lock:
            return req["seq"] in self._answered

    def log_refused(self, text: str) -> None:
        self.session.log(text)
        self.event("output", {"category": "console", "output": text + "\n"})

    def serve(self) -> None:
        """Read the client until EOF or the session is done."""
        s = self.session
        for msg in self.ep.messages():
            if s.trace is not None:
                s.trace("client -> " + (json.dumps(msg) if isinstance(msg, dict) else repr(msg)))
            if isinstance(msg, BadMessage):
                self._bad_input(msg)
                continue
            kind = msg.get("type")
            with s.lock:  # the lock rule (:mod:`dap_adapter.adapter.session`)
                if kind == "request":
                    try:
                        self._on_request(msg)
                    except Exception as e:  # never die on one request
                        self.error(msg, f"{msg.get('command')} failed in the adapter: {type(e).__name__}: {e}")
                elif kind == "response":
                    self._reverse.resolve(msg.get("request_seq", -1), msg)
            if s.done.is_set():
                break

    def _bad_input(self, bad: BadMessage) -> None:
        self.session.log(f"bad input: {bad.kind}: {bad.detail}")
        req = bad.parsed if isinstance(bad.parsed, dict) else None
        seq = req.get("seq") if req is not None else None
        if req is not None and req.get("type") == "request" and isinstance(seq, int) and not isinstance(seq, bool):
            self.error({"seq": req["seq"], "command": str(req.get("command", ""))}, f"invalid request: {bad.detail}")
            return
        self.event("output", {"category": "stderr",
                              "output": f"pylightnix adapter: ignored invalid input ({bad.kind}): {bad.detail}\n"})

    def _on_request(self, req: Message) -> None:
        cmd = req["command"]
        handler = dispatch.handler(self, cmd, dispatch.REQUEST)
        if handler is not None:
            handler(req)
        elif cmd in FORWARDED:
            self.session.debugpy.forward(req)
        else:
            self.error(req, f"unknown or unsupported command: {cmd!r}")

    def close(self) -> None:
        self._reverse.close()
        self.ep.close()

    # -- initialize ----------------------------------------------------------------
    def initialize_request(self, req: Message) -> None:
        self.init_args = dict(req.get("arguments") or {})
        debugpy = self.session.debugpy
        try:
            debugpy.start()
            resp = debugpy.call("initialize", self.init_args, timeout=30)
        except DebugpyGone as e:
            self.error(req, f"cannot start debugpy: {e}")
            return
        if not resp.get("success"):
            self.respond(req["seq"], "initialize", resp.get("body"), False, resp.get("message"))
            return
        caps = dict(resp.get("body") or {})
        caps["supportsFunctionBreakpoints"] = True
        caps["supportsCompletionsRequest"] = True
        caps["supportsConfigurationDoneRequest"] = True
        caps["supportsExceptionInfoRequest"] = True
        caps["supportsCancelRequest"] = True  # cancels a running console cell, or the realization's progress
        self.session.progress.enabled = bool(self.init_args.get("supportsProgressReporting"))
        filters = [f for f in caps.get("exceptionBreakpointFilters", [])
                   if f.get("filter") != FAILURE_FILTER["filter"]]
        caps["exceptionBreakpointFilters"] = filters + [dict(FAILURE_FILTER)]
        self.capabilities = caps
        self.respond(req["seq"], "initialize", caps)

    # -- launch / attach: the program's lifecycle (:mod:`dap_adapter.adapter.program`) --
    def launch_request(self, req: Message) -> None:
        self.session.program.launch(req)

    def attach_request(self, req: Message) -> None:
        self.session.program.attach(req)

    def fail(self, req: Message, text: str, late: bool = False) -> None:
        """Answer ``req`` with an error, also shown in the Debug Console. ``late``: an answer
        debugpy may still give to ``req`` is then dropped."""
        if late:
            with self.session.lock:
                self._answered.add(req["seq"])
        self.event("output", {"category": "stderr", "output": text + "\n"})
        self.error(req, text)

    @property
    def was_terminated(self) -> bool:
        return self._terminated

    def terminated(self) -> None:
        """Tell the client the session is over: once, whoever notices first (debugpy's own
        ``terminated``, debugpy dying, the end of a child session's paused build)."""
        with self.session.lock:
            if self._terminated:
                return
            self._terminated = True
        self.event("terminated")

    # -- breakpoints -------------------------------------------------------------------
    def setFunctionBreakpoints_request(self, req: Message) -> None:
        s = self.session
        requested = list((req.get("arguments") or {}).get("breakpoints") or [])
        with s.lock:
            plan, python = s.book.split(requested)
        s.agent.configure()

        def merge(resp: Message) -> Dict[str, Any]:
            got = list((resp.get("body") or {}).get("breakpoints") or [])
            out = []
            for p in plan:
                if isinstance(p, int):
                    out.append(got[p] if p < len(got) else {"verified": False})
                else:
                    out.append(p.dap())
            return {"breakpoints": out}

        if s.debugpy.proxy is None:
            self.respond(req["seq"], req["command"], merge({}))
            return
        s.debugpy.forward(req, {"breakpoints": python}, rewrite=merge)

    def setExceptionBreakpoints_request(self, req: Message) -> None:
        s = self.session
        args = dict(req.get("arguments") or {})
        ours = FAILURE_FILTER["filter"]
        filters = list(args.get("filters") or [])
        options = list(args.get("filterOptions") or [])
        on = ours in filters or any(o.get("filterId") == ours for o in options)
        # positions of our filter in the answer: DAP answers filters, then filterOptions
        slots = [i for i, f in enumerate(filters) if f == ours]
        slots += [len(filters) + i for i, o in enumerate(options) if o.get("filterId") == ours]
        args["filters"] = [f for f in filters if f != ours]
        if options:
            args["filterOptions"] = [o for o in options if o.get("filterId") != ours]
        s.break_on_failure = on
        s.agent.configure()

        def merge(resp: Message) -> Optional[Dict[str, Any]]:
            body = resp.get("body")
            if not body or "breakpoints" not in body:
                return body
            got = list(body["breakpoints"])
            for i in slots:
                got.insert(i, {"verified": True})
            return {**body, "breakpoints": got}

        s.debugpy.forward(req, args, rewrite=merge)

    def configurationDone_request(self, req: Message) -> None:
        s = self.session

        def done(resp: Message) -> Optional[Dict[str, Any]]:
            s.configuration_done = True
            threading.Thread(target=s.agent.configure, daemon=True).start()
            return resp.get("body")

        s.debugpy.forward(req, rewrite=done)

    # -- execution control -----------------------------------------------------------
    def stepIn_request(self, req: Message) -> None:
        s = self.session
        tid = (req.get("arguments") or {}).get("threadId")
        pause = s.pauses.at(tid)
        if pause is None or pause.kind != protocol.BEFORE or s.agent.channel is None:
            s.debugpy.forward(req)
            return
        # Step Into from a build pause (also on a worker, where the child session then stays
        # until the build ends): the agent arms pydevd's step-into for when the
        # pause frame returns, then the thread continues into the stage's realizer.
        try:
            s.agent.call(protocol.STEP_INTO, {"dref": pause.dref}, timeout=5)
        except ChannelError as e:
            self.error(req, f"stepIn: {e}")
            return
        s.debugpy.forward(req, {"threadId": tid}, command="continue", rewrite=lambda r: None)

    def _interrupt_cells(self) -> bool:
        """KeyboardInterrupt in the running console cells, like Ctrl-C in IPython."""
        s = self.session
        with s.lock:
            running = bool(self._cells)
        if not running or s.agent.connected is None:
            return False
        try:
            s.agent.call(protocol.INTERRUPT, timeout=5)
        except ChannelError as e:
            s.log(f"interrupt failed: {e}")
            return False
        return True

    def pause_request(self, req: Message) -> None:
        s = self.session
        self._interrupt_cells()  # Pause while a console cell runs: interrupt the cell
        # an untraced thread cannot be suspended by pydevd: switch tracing on first
        if s.agent.connected is not None:
            try:
                s.agent.call(protocol.TRACE_ALL, timeout=5)
            except ChannelError as e:
                s.log(f"trace_all failed: {e}")
        s.debugpy.forward(req)

    def exceptionInfo_request(self, req: Message) -> None:
        tid = (req.get("arguments") or {}).get("threadId")
        pause = self.session.pauses.at(tid)
        if pause is None or pause.kind != protocol.FAILURE or not pause.exception:
            self.session.debugpy.forward(req)
            return
        self.respond(req["seq"], "exceptionInfo", exception_info(pause))

    def evaluate_request(self, req: Message) -> None:
        s = self.session
        args = dict(req.get("arguments") or {})
        if args.get("context") == "repl" and args.get("frameId") is not None:
            args["expression"] = console.expression_for(str(args.get("expression", "")))

            def clean(resp: Message) -> Dict[str, Any]:
                body = dict(resp.get("body") or {})
                body.pop("type", None)
                body.pop("presentationHint", None)
                return body

            with s.lock:
                self._cells.add(req["seq"])

            def finished() -> None:
                with s.lock:
                    self._cells.discard(req["seq"])

            def failed(resp: Message) -> Optional[str]:  # a cell that raised: its text, traceback included
                body = resp.get("body") or {}
                return str(body.get("result", "")) if body.get("type") == protocol.CELL_ERROR_TYPE else None

            s.debugpy.forward(req, args, rewrite=clean, finished=finished, failure=failed)
            return
        s.debugpy.forward(req, args)

    def completions_request(self, req: Message) -> None:
        args = dict(req.get("arguments") or {})
        if args.get("frameId") is None:
            self.session.debugpy.forward(req)
            return
        text = str(args.get("text", ""))
        base = 1 if self.init_args.get("columnsStartAt1", True) else 0
        line = int(args.get("line", 1) or 1) - (1 if self.init_args.get("linesStartAt1", True) else 0)
        lines = text.split("\n")
        offset = sum(len(x) + 1 for x in lines[:line]) + int(args.get("column", base)) - base
        expr = console.completions_expression(text, max(0, min(offset, len(text))))

        def convert(resp: Message) -> Dict[str, Any]:
            raw = (resp.get("body") or {}).get("result", "[]")
            try:
                items = json.loads(raw)
            except ValueError:
                items = []
            return {"targets": console.dap_completion_items(items, offset, base)}

        self.session.debugpy.forward(req, {"expression": expr, "frameId": args["frameId"], "context": "watch"},
                                     command="evaluate", rewrite=convert)

    # -- the end -------------------------------------------------------------------------
    def disconnect_request(self, req: Message) -> None:
        s = self.session
        s.cancel_paused_builds()
        args = dict(req.get("arguments") or {})
        # a worker serves other builds: Stop on a child session cancels this build only
        resp = s.debugpy.disconnect(False if s.paused_build is not None else None, args)
        if resp.get("success"):
            self.respond(req["seq"], "disconnect")
        else:
            self.respond(req["seq"], "disconnect", resp.get("body") or {}, False, resp.get("message"))
        s.done.set()

    def cancel_request(self, req: Message) -> None:
        """``cancel`` of a running console cell (``requestId``) interrupts it; its evaluate
        then answers with the KeyboardInterrupt traceback. Cancel of the realization's
        progress (``progressId``) cancels the build (nothing partial is stored;
        ``realize`` raises ``BuildCancelled``); a paused build is cancelled and resumed.
        Other cancels are no-ops (allowed by DAP)."""
        s = self.session
        args = req.get("arguments") or {}
        rid, pid = args.get("requestId"), args.get("progressId")
        with s.lock:
            running = rid is not None and rid in self._cells
        if running:
            self._interrupt_cells()
        if pid is None or not s.progress.is_current(pid) or s.agent.connected is None:
            self.respond(req["seq"], "cancel")
            return
        try:
            answer = s.agent.call(protocol.CANCEL_REALIZATION, timeout=5) or {}
        except ChannelError as e:
            self.error(req, f"cancel: {e}")
            return
        self.respond(req["seq"], "cancel")
        if answer.get("paused"):
            s.debugpy.resume(s.pauses.threads())

    def terminate_request(self, req: Message) -> None:
        if self.session.paused_build is not None:  # a child session: cancel its build, keep the worker
            self._interrupt_cells()
            self.session.cancel_paused_builds()
            self.respond(req["seq"], "terminate")
            return
        self.session.program.end_within()
        self._interrupt_cells()
        self.session.cancel_paused_builds()
        self.session.debugpy.forward(req)
