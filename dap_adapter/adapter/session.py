"""One debug session: the client on one side, debugpy and the agent on the other.

The session proxies the client's requests to a real debugpy adapter (its own
seq numbers, answers copied back under the client's ``request_seq``), answers
what debugpy cannot (unknown commands, ``exceptionInfo`` at a failed build,
the build breakpoints in ``setFunctionBreakpoints``) and maps what the agent in
the debuggee reports (instantiated derivations, build pauses) to DAP:
``breakpoint`` events and rewritten ``stopped`` events.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional

from pylightnix import attach_info
from pylightnix.channel import Channel, ChannelError, Listener, connect, new_secret

from dap_adapter.adapter import console, launch_config
from dap_adapter.adapter.build_progress import BuildProgress
from dap_adapter.adapter.debugpy_proxy import DebugpyGone, DebugpyProxy
from dap_adapter.adapter.function_breakpoints import Book
from dap_adapter.adapter.pauses import BEFORE, FAILURE, Pauses, exception_info
from dap_adapter.adapter.watchdog import Watchdog
from dap_adapter.common import protocol
from dap_adapter.common.messaging import BadMessage, Endpoint, Message

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
#: debugpy's one-time note when a step passes through code justMyCode hides. Our own
#: steps (stopOnEntry through runpy, Step Into from a build pause through the engine)
#: always do that, so in the Debug Console it would be noise the user did not cause.
SKIPPED_FRAME_NOTE = "Frame skipped from debugging during step-in."
#: how long any forwarded request may take before the client gets an error instead
REQUEST_TIMEOUT = 60.0
#: seconds ``terminate`` waits for the program to exit before ending it
TERMINATE_GRACE = 1.2


def _descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is a descendant of ``ancestor`` (Linux /proc; False elsewhere)."""
    for _ in range(64):
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


class Session:
    """Serve one client connection until it disconnects."""

    def __init__(self, client: Endpoint, log: Optional[Callable[[str], None]] = None) -> None:
        """``log``, if given, receives diagnostics and every DAP message (``--log FILE``)."""
        self.client = client
        self.trace = log
        self.log: Callable[[str], None] = log or (lambda s: None)
        if log is not None:
            client._on_send = lambda m: log("-> client " + json.dumps(m))
        self.debugpy: Optional[DebugpyProxy] = None
        self.agent: Optional[Channel] = None
        self.listener: Optional[Listener] = None
        self.secret = new_secret()
        #: what the program's pydevd must present to our debugpy adapter (attach and launch)
        self.debugpy_token = new_secret()
        self._server_port: Optional[int] = None
        self._server_listening = threading.Event()
        self._answered: set = set()  # client requests already answered with an error here
        self._cells: set = set()     # client seqs of console cells (repl evaluates) running
        self.program_pid: Optional[int] = None  # from the agent's hello (authenticated)
        self.book = Book()
        self.break_on_failure = False          # the "Failed builds" exception filter
        self.launch_break_on_failure = False   # launch.json's breakOnFailedBuilds
        self.init_args: Dict[str, Any] = {}
        self.capabilities: Dict[str, Any] = {}
        self.mode: Optional[str] = None
        self.program_label: Optional[str] = None
        self._lock = threading.RLock()
        self.pauses = Pauses()
        self._reverse: Dict[int, int] = {}       # our seq to client -> debugpy's seq
        self._exited = threading.Event()
        self.done = threading.Event()
        self.configuration_done = False
        self._shut = False
        self._disconnected = False
        self._entry_pending = False
        self._terminated_sent = False
        self._watchdog = Watchdog(REQUEST_TIMEOUT)
        self.progress = BuildProgress(lambda event, body: self.client.event(event, body))

    # =====================================================================
    # client side
    # =====================================================================
    def serve(self) -> None:
        """Read the client until EOF or disconnect."""
        try:
            for msg in self.client.messages():
                if self.trace is not None:
                    self.trace("client -> " + (json.dumps(msg) if isinstance(msg, dict) else repr(msg)))
                if isinstance(msg, BadMessage):
                    self._bad_input(msg)
                    continue
                kind = msg.get("type")
                if kind == "request":
                    try:
                        self.on_request(msg)
                    except Exception as e:  # never die on one request
                        self.client.error(msg, f"{msg.get('command')} failed in the adapter: "
                                               f"{type(e).__name__}: {e}")
                elif kind == "response":
                    self._client_response(msg)
                if self.done.is_set():
                    break
        finally:
            self.shutdown()

    def _bad_input(self, bad: BadMessage) -> None:
        self.log(f"bad input: {bad.kind}: {bad.detail}")
        req = bad.parsed if isinstance(bad.parsed, dict) else None
        seq = req.get("seq") if req is not None else None
        if req is not None and req.get("type") == "request" and isinstance(seq, int) and not isinstance(seq, bool):
            self.client.error({"seq": req["seq"], "command": str(req.get("command", ""))},
                              f"invalid request: {bad.detail}")
            return
        self.client.event("output", {"category": "stderr",
                                     "output": f"pylightnix adapter: ignored invalid input ({bad.kind}): "
                                               f"{bad.detail}\n"})

    def on_request(self, req: Message) -> None:
        cmd = req["command"]
        handler = getattr(self, f"_req_{cmd}", None)
        if handler is not None:
            handler(req)
        elif cmd in FORWARDED:
            self.forward(req)
        else:
            self.client.error(req, f"unknown or unsupported command: {cmd!r}")

    def forward(self, req: Message, arguments: Optional[Dict[str, Any]] = None,
                command: Optional[str] = None,
                rewrite: Optional[Callable[[Message], Optional[Dict[str, Any]]]] = None,
                finished: Optional[Callable[[], None]] = None) -> None:
        """Send ``req`` to debugpy; answer the client under its own seq when debugpy answers.
        ``finished`` is called once the client has its answer (or an error)."""
        if self.debugpy is None or self.debugpy.closed:
            self.client.error(req, f"{req['command']}: no debug session (launch or attach first)")
            return
        answered = threading.Event()

        def on_response(resp: Message) -> None:
            self._watchdog.discard(resp.get("request_seq", -1))
            if answered.is_set() or req["seq"] in self._answered:
                return
            answered.set()
            body = resp.get("body")
            if rewrite is not None and resp.get("success"):
                body = rewrite(resp)
            self.client.respond(req["seq"], req["command"], body, bool(resp.get("success")),
                                resp.get("message"))
            if finished is not None:
                finished()

        try:
            dseq = self.debugpy.request(command or req["command"],
                                        req.get("arguments") if arguments is None else arguments,
                                        on_response)
        except DebugpyGone as e:
            self.client.error(req, f"{req['command']}: {e}")
            if finished is not None:
                finished()
            return

        def on_timeout() -> None:
            if not answered.is_set():
                answered.set()
                self.client.error(req, f"{req['command']}: debugpy did not answer in {REQUEST_TIMEOUT:.0f}s")
                if finished is not None:
                    finished()

        self._watchdog.add(dseq, on_timeout)

    def _client_response(self, resp: Message) -> None:
        """The client answered a reverse request we relayed (runInTerminal...)."""
        with self._lock:
            dseq = self._reverse.pop(resp.get("request_seq", -1), None)
        if dseq is not None and self.debugpy is not None:
            self.debugpy.respond(dseq, resp.get("command", ""), resp.get("body"),
                                 bool(resp.get("success")), resp.get("message"))

    # -- initialize -----------------------------------------------------------
    def _req_initialize(self, req: Message) -> None:
        self.init_args = dict(req.get("arguments") or {})
        try:
            self.debugpy = self._spawn_debugpy()
            resp = self.debugpy.call("initialize", self.init_args, timeout=30)
        except DebugpyGone as e:
            self.client.error(req, f"cannot start debugpy: {e}")
            return
        if not resp.get("success"):
            self.client.respond(req["seq"], "initialize", resp.get("body"), False, resp.get("message"))
            return
        caps = dict(resp.get("body") or {})
        caps["supportsFunctionBreakpoints"] = True
        caps["supportsCompletionsRequest"] = True
        caps["supportsConfigurationDoneRequest"] = True
        caps["supportsExceptionInfoRequest"] = True
        caps["supportsCancelRequest"] = True  # cancels a running console cell, or the realization's progress
        self.progress.enabled = bool(self.init_args.get("supportsProgressReporting"))
        filters = [f for f in caps.get("exceptionBreakpointFilters", [])
                   if f.get("filter") != FAILURE_FILTER["filter"]]
        caps["exceptionBreakpointFilters"] = filters + [dict(FAILURE_FILTER)]
        self.capabilities = caps
        self.client.respond(req["seq"], "initialize", caps)

    def _handlers(self) -> Dict[str, Any]:
        return {"on_event": self._debugpy_event, "on_reverse_request": self._debugpy_reverse,
                "on_close": self._debugpy_closed, "log": self.trace}

    def _spawn_debugpy(self) -> DebugpyProxy:
        return DebugpyProxy.spawn(self.debugpy_token, sys.executable, **self._handlers())

    # -- launch / attach --------------------------------------------------------
    def _req_launch(self, req: Message) -> None:
        args = dict(req.get("arguments") or {})
        self.mode = "launch"
        listener = Listener(self.secret, log=self._log_refused)
        try:
            out, self.program_label, self._entry_pending = launch_config.launch_args(
                args, listener.port, self.secret)
            self.launch_break_on_failure = launch_config.break_on_failed_builds(args)
        except launch_config.LaunchError as e:
            listener.close()
            self._fail_launch(req, str(e))
            return
        self.listener = listener
        self.book.launch_patterns = [str(p) for p in args.get("buildBreakpoints") or []]
        # keep accepting for the whole session: later attempts are refused and logged
        listener.serve_forever(self._agent_connected)
        self.forward(req, out)

    def _fail_launch(self, req: Message, text: str) -> None:
        self.client.event("output", {"category": "stderr", "output": text + "\n"})
        self.client.error(req, text)

    def _log_refused(self, text: str) -> None:
        self.log(text)
        self.client.event("output", {"category": "console", "output": text + "\n"})

    def _agent_connected(self, sock: Any) -> None:
        with self._lock:
            busy = self.agent is not None and not self.agent.closed
        if busy:
            self._log_refused("pylightnix side channel: refused a second agent connection")
            sock.close()
            return
        self._set_agent(sock)

    def _set_agent(self, sock: Any) -> None:
        ch = Channel(sock, on_request=self._agent_request, on_event=self._agent_event,
                     on_close=self._agent_closed, name="adapter-channel")
        with self._lock:
            self.agent = ch
        ch.start()

    def _req_attach(self, req: Message) -> None:
        args = dict(req.get("arguments") or {})
        self.mode = "attach"
        conn = args.get("connect") or {}
        host = str(conn.get("host") or args.get("host") or "127.0.0.1")
        port = conn.get("port", args.get("port"))
        if port is None:
            self._fail_launch(req, "attach: give `connect: {host, port}` of a process started with "
                                   "`python -m pylightnix debug --listen HOST:PORT SCRIPT`")
            return
        try:
            chan = attach_info.resolve(args, int(port))
            self.launch_break_on_failure = launch_config.break_on_failed_builds(args)
        except (attach_info.AttachInfoError, launch_config.LaunchError, ValueError) as e:
            self._fail_launch(req, f"attach: {e}")
            return
        self.book.launch_patterns = [str(p) for p in args.get("buildBreakpoints") or []]
        if self.debugpy is None or self.debugpy.closed:
            self._fail_launch(req, "attach: no debugpy adapter (send initialize first)")
            return
        # 1. prove we know the program's secret on its side channel
        try:
            sock = connect(chan["host"], int(chan["port"]), chan["secret"])
        except (ChannelError, OSError) as e:
            self._fail_launch(req, f"attach: cannot open the pylightnix side channel at "
                                   f"{chan['host']}:{chan['port']}: {e}")
            return
        self._set_agent(sock)
        # 2. our debugpy adapter listens for the program's debug server (token-checked) ...
        # (a fixed port for a remote program: `ssh -R PORT:127.0.0.1:PORT` carries it back)
        back = args.get("pylightnixConnectBack") or {}
        out = launch_config.attach_args(args, host, int(port))
        out.pop("connect", None)
        out.pop("pylightnixConnectBack", None)
        out["listen"] = {"host": "127.0.0.1", "port": int(back.get("port", 0) or 0)}
        self.forward(req, out)
        # not in the client's reader thread: debugpy.connect returns after configurationDone
        threading.Thread(target=self._connect_program, args=(req,), name="dap-attach", daemon=True).start()

    def _connect_program(self, req: Message) -> None:
        """Attach, step 3: the program connects out to our debugpy, presenting its token."""
        ch = self.agent
        if not self._server_listening.wait(10) or self._server_port is None or ch is None:
            self._fail_attach(req, "attach: debugpy did not open its server port")
            return
        try:
            ch.call("connect_debugger", {"host": "127.0.0.1", "port": self._server_port,
                                         "token": self.debugpy_token}, timeout=REQUEST_TIMEOUT)
        except ChannelError as e:
            self._fail_attach(req, f"attach: the program could not connect its debugger: {e}")
            return
        self._configure_agent()

    def _fail_attach(self, req: Message, text: str) -> None:
        with self._lock:
            self._answered.add(req["seq"])
        self._fail_launch(req, text)

    # -- breakpoints ----------------------------------------------------------
    def _req_setFunctionBreakpoints(self, req: Message) -> None:
        requested = list((req.get("arguments") or {}).get("breakpoints") or [])
        with self._lock:
            plan, python = self.book.split(requested)
        self._configure_agent()

        def merge(resp: Message) -> Dict[str, Any]:
            got = list((resp.get("body") or {}).get("breakpoints") or [])
            out = []
            for p in plan:
                if isinstance(p, int):
                    out.append(got[p] if p < len(got) else {"verified": False})
                else:
                    out.append(p.dap())
            return {"breakpoints": out}

        if self.debugpy is None:
            self.client.respond(req["seq"], req["command"], merge({}))
            return
        self.forward(req, {"breakpoints": python}, rewrite=merge)

    def _req_setExceptionBreakpoints(self, req: Message) -> None:
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
        self.break_on_failure = on
        self._configure_agent()

        def merge(resp: Message) -> Optional[Dict[str, Any]]:
            body = resp.get("body")
            if not body or "breakpoints" not in body:
                return body
            got = list(body["breakpoints"])
            for i in slots:
                got.insert(i, {"verified": True})
            return {**body, "breakpoints": got}

        self.forward(req, args, rewrite=merge)

    def _configure_agent(self) -> None:
        ch = self.agent
        if ch is None or ch.closed:
            return
        try:
            ch.call("configure", self._agent_config(), timeout=5)
        except ChannelError as e:
            self.log(f"configure failed: {e}")

    def _agent_config(self) -> Dict[str, Any]:
        with self._lock:
            return {"buildBreakpoints": self.book.patterns(),
                    "breakOnFailure": self.break_on_failure or self.launch_break_on_failure,
                    "ready": self.configuration_done}

    def _req_configurationDone(self, req: Message) -> None:
        def done(resp: Message) -> Optional[Dict[str, Any]]:
            self.configuration_done = True
            threading.Thread(target=self._configure_agent, daemon=True).start()
            return resp.get("body")

        self.forward(req, rewrite=done)

    # -- execution control ----------------------------------------------------
    def _req_stepIn(self, req: Message) -> None:
        tid = (req.get("arguments") or {}).get("threadId")
        pause = self.pauses.at(tid)
        if pause is None or pause.kind != BEFORE or self.agent is None:
            self.forward(req)
            return
        # Step Into from a build pause: the agent arms pydevd's step-into for when the
        # pause frame returns, then the thread continues into the stage's realizer.
        try:
            self.agent.call("step_into", {"dref": pause.dref}, timeout=5)
        except ChannelError as e:
            self.client.error(req, f"stepIn: {e}")
            return
        self.forward(req, {"threadId": tid}, command="continue", rewrite=lambda r: None)

    def _interrupt_cells(self) -> bool:
        """KeyboardInterrupt in the running console cells, like Ctrl-C in IPython."""
        with self._lock:
            running = bool(self._cells)
        ch = self.agent
        if not running or ch is None or ch.closed:
            return False
        try:
            ch.call("interrupt", {}, timeout=5)
        except ChannelError as e:
            self.log(f"interrupt failed: {e}")
            return False
        return True

    def _req_pause(self, req: Message) -> None:
        self._interrupt_cells()  # Pause while a console cell runs: interrupt the cell
        # an untraced thread cannot be suspended by pydevd: switch tracing on first
        ch = self.agent
        if ch is not None and not ch.closed:
            try:
                ch.call("trace_all", {}, timeout=5)
            except ChannelError as e:
                self.log(f"trace_all failed: {e}")
        self.forward(req)

    def _req_exceptionInfo(self, req: Message) -> None:
        tid = (req.get("arguments") or {}).get("threadId")
        pause = self.pauses.at(tid)
        if pause is None or pause.kind != FAILURE or not pause.exception:
            self.forward(req)
            return
        self.client.respond(req["seq"], "exceptionInfo", exception_info(pause))

    def _req_evaluate(self, req: Message) -> None:
        args = dict(req.get("arguments") or {})
        if args.get("context") == "repl" and args.get("frameId") is not None:
            args["expression"] = console.expression_for(str(args.get("expression", "")))

            def clean(resp: Message) -> Dict[str, Any]:
                body = dict(resp.get("body") or {})
                body.pop("type", None)
                body.pop("presentationHint", None)
                return body

            with self._lock:
                self._cells.add(req["seq"])

            def finished() -> None:
                with self._lock:
                    self._cells.discard(req["seq"])

            self.forward(req, args, rewrite=clean, finished=finished)
            return
        self.forward(req, args)

    def _req_completions(self, req: Message) -> None:
        args = dict(req.get("arguments") or {})
        if args.get("frameId") is None:
            self.forward(req)
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

        self.forward(req, {"expression": expr, "frameId": args["frameId"], "context": "watch"},
                     command="evaluate", rewrite=convert)

    def _req_disconnect(self, req: Message) -> None:
        self._cancel_paused_builds()
        if self.debugpy is not None and not self.debugpy.closed:
            self._disconnected = True
            try:
                resp = self.debugpy.call("disconnect", req.get("arguments") or {}, timeout=5)
            except DebugpyGone:
                resp = {"success": True}
            # debugpy exiting before it answers still means: disconnected
            if resp.get("success") or self.debugpy.closed:
                self.client.respond(req["seq"], "disconnect")
            else:
                self.client.respond(req["seq"], "disconnect", resp.get("body") or {}, False,
                                    resp.get("message"))
        else:
            self.client.respond(req["seq"], "disconnect")
        self.done.set()

    def _req_cancel(self, req: Message) -> None:
        """``cancel`` of a running console cell (``requestId``) interrupts it; its evaluate
        then answers with the KeyboardInterrupt traceback. Cancel of the realization's
        progress (``progressId``) cancels the build (nothing partial is stored;
        ``realize`` raises ``BuildCancelled``); a paused build is cancelled and resumed.
        Other cancels are no-ops (allowed by DAP)."""
        args = req.get("arguments") or {}
        rid, pid = args.get("requestId"), args.get("progressId")
        with self._lock:
            running = rid is not None and rid in self._cells
        if running:
            self._interrupt_cells()
        ch = self.agent
        if pid is None or not self.progress.is_current(pid) or ch is None or ch.closed:
            self.client.respond(req["seq"], "cancel")
            return
        try:
            answer = ch.call("cancel_realization", {}, timeout=5) or {}
        except ChannelError as e:
            self.client.error(req, f"cancel: {e}")
            return
        self.client.respond(req["seq"], "cancel")
        if answer.get("paused") and self.debugpy is not None:
            for tid in self.pauses.threads():
                try:
                    self.debugpy.call("continue", {"threadId": tid}, timeout=3)
                except DebugpyGone:
                    return

    def _req_terminate(self, req: Message) -> None:
        threading.Thread(target=self._kill_if_alive, args=(TERMINATE_GRACE,), daemon=True).start()
        self._interrupt_cells()
        self._cancel_paused_builds()
        self.forward(req)

    def _kill_if_alive(self, grace: float) -> None:
        """``terminate`` ends the program within 2 s whatever it is doing (a console cell
        blocked in C, a stuck thread): after ``grace`` seconds the agent is told to exit
        the process; a launched program that still lives then gets SIGKILL."""
        ch = self.agent
        # the program is gone when its side channel closes (debugpy may say "terminated"
        # for an attached program that still runs)
        gone = (lambda: ch.closed) if ch is not None else self._exited.is_set
        deadline = time.monotonic() + grace
        while not gone() and time.monotonic() < deadline:
            time.sleep(0.05)
        if gone():
            return
        self.log(f"terminate: the program is still running after {grace}s: ending it")
        if ch is not None:
            try:
                ch.call("exit", {}, timeout=0.2)
            except ChannelError:
                pass  # no answer: the process is gone
            time.sleep(0.2)
            if gone():
                return
        pid = self.program_pid
        # only our own descendant: an attached program's pid may be another machine's
        if pid and self.mode == "launch" and self.debugpy is not None and self.debugpy.proc is not None \
                and _descends_from(pid, self.debugpy.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def _cancel_paused_builds(self) -> None:
        """Disconnect/terminate at a build pause cancels the build: the agent marks the
        pause cancelled, the thread resumes, the engine removes its temporary outputs
        and ``realize`` raises ``BuildCancelled``; then the program ends."""
        paused = self.pauses.threads()
        if not paused or self.agent is None or self.debugpy is None or self.debugpy.closed:
            return
        try:
            self.agent.call("cancel", {}, timeout=3)
        except ChannelError:
            return
        try:
            # do not stop again on the BuildCancelled that follows
            self.debugpy.call("setExceptionBreakpoints", {"filters": []}, timeout=3)
            for tid in paused:
                self.debugpy.call("continue", {"threadId": tid}, timeout=3)
        except DebugpyGone:
            return
        self._exited.wait(1.5)

    # =====================================================================
    # debugpy side
    # =====================================================================
    def _debugpy_event(self, msg: Message) -> None:
        name = msg.get("event")
        body = msg.get("body")
        if name == "stopped":
            body = self._map_stopped(dict(body or {}))
        elif name in ("exited", "terminated"):
            self.progress.end("Program ended")
            self._exited.set()
            if name == "terminated":
                self._terminated_sent = True
        elif name == "process" and body and self.program_label:
            body = dict(body, name=self.program_label)
        elif name == "output" and str((body or {}).get("output", "")).startswith(SKIPPED_FRAME_NOTE):
            return
        elif name == "debugpyWaitingForServer" and self.mode == "attach":
            self._server_port = int((body or {}).get("port") or 0) or None
            self._server_listening.set()
        self.client.event(str(name), body)

    def _map_stopped(self, body: Dict[str, Any]) -> Dict[str, Any]:
        if self._entry_pending:  # only the first stop can be the entry
            self._entry_pending = False
            if body.get("reason") == "step":
                return dict(body, reason="entry")

        def hit_ids(name: str) -> list:
            with self._lock:
                return self.book.hit_ids(name)

        return self.pauses.on_stopped(body, hit_ids)

    def _debugpy_reverse(self, msg: Message) -> None:
        """debugpy asks the client something (runInTerminal): relay it."""
        sent = self.client.request(msg["command"], msg.get("arguments"))
        with self._lock:
            self._reverse[sent["seq"]] = msg["seq"]

    def _debugpy_closed(self, proxy: DebugpyProxy) -> None:
        if proxy is not self.debugpy:
            return  # the local adapter we replaced when attaching
        self._exited.set()
        if self.mode is not None and not self._terminated_sent and not self._shut:
            # debugpy died without saying so: tell the client the session is over
            self._terminated_sent = True
            self.client.event("output", {"category": "stderr",
                                         "output": "pylightnix adapter: debugpy exited unexpectedly\n"})
            self.client.event("terminated")

    # =====================================================================
    # agent side
    # =====================================================================
    def _agent_request(self, method: str, params: Dict[str, Any]) -> Any:
        if method == "hello":
            pid = params.get("pid")
            self.program_pid = pid if isinstance(pid, int) and pid > 0 else None
            return self._agent_config()
        if method == "pause":
            self.pauses.announce(params)
            self.progress.paused(str(params.get("name", "?")), params.get("kind") == FAILURE)
            return {"ok": True}
        raise ChannelError(f"unknown method {method}")

    def _agent_event(self, event: str, body: Dict[str, Any]) -> None:
        if event == "instantiated":
            names = [str(n) for _, n in body.get("derivations", [])]
            with self._lock:
                changed = self.book.learn(names)
            for b in changed:
                self.client.event("breakpoint", {"reason": "changed", "breakpoint": b.dap()})
        elif event == "resumed":
            self.pauses.resumed(str(body.get("dref", "")))
        elif event == "progress":
            self.progress.update(body)
        elif event == "output":
            self.client.event("output", {"category": body.get("category", "console"),
                                         "output": str(body.get("output", ""))})

    def _agent_closed(self) -> None:
        self.pauses.clear()

    # =====================================================================
    def shutdown(self) -> None:
        if self._shut:
            return
        self._shut = True
        self._watchdog.stop()
        self.done.set()
        try:
            self._cancel_paused_builds()
        except Exception:
            pass
        if self.debugpy is not None and not self.debugpy.closed and not self._disconnected:
            try:
                if self.mode == "launch":
                    self.debugpy.call("disconnect", {"terminateDebuggee": True}, timeout=3)
                else:
                    self.debugpy.call("disconnect", {"terminateDebuggee": False}, timeout=3)
            except DebugpyGone:
                pass
        if self.debugpy is not None:
            self.debugpy.close()
        if self.agent is not None:
            self.agent.close()
        if self.listener is not None:
            self.listener.close()
        self.client.close()
