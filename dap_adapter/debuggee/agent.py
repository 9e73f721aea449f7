"""The agent inside the debuggee: a pylightnix frontend that serves pauses to the adapter.

It subscribes to the engine (:class:`pylightnix.events.Frontend`) and talks to
the adapter over the authenticated side channel (:mod:`pylightnix.channel`):

- ``on_instantiate`` -> ``instantiated`` notification (the adapter verifies
  build breakpoints);
- ``on_pause`` / ``on_failure`` -> ``pause`` request (the adapter learns what
  the next ``stopped`` event means), then the thread enters the renamed pause
  frame (:mod:`dap_adapter.debuggee.pause_frame`) under a transient pydevd function
  breakpoint, so pydevd stops there with all its features (variables, console,
  stepping). When the user continues, the frame returns and the engine does
  whatever the pause says (commit, cancel, or run the realizer);
- ``on_realize_start`` / ``on_progress`` / ``on_realize_end`` -> ``progress``
  notifications (the adapter shows them as DAP progress);
- adapter requests: ``configure`` (build breakpoints, break-on-failure),
  ``step_into`` (arm pydevd's step-into for when the pause frame returns),
  ``cancel`` (cancel the pending pause) and ``cancel_realization`` (the user
  cancelled the progress: cancel the pause, or stop the running build with
  :class:`CancelledFromEditor` raised in the realizing thread).

The engine knows nothing about DAP; without a connected adapter the agent does
nothing and every pause takes the engine's default.
"""
from __future__ import annotations

import os
import socket
import sys
import threading
import traceback
from typing import Any, Callable, Dict, List, Optional, Tuple

from pylightnix import breakpoints, events
from pylightnix import remote as pylightnix_remote
from pylightnix.errors import BuildCancelled
from pylightnix.process import raise_in_thread
from pylightnix.events import FAILURE, BuildPause, Frontend, user_traceback

from pylightnix.channel import Channel, ChannelError, connect

from dap_adapter.common import dispatch, protocol
from dap_adapter.debuggee import console, pause_frame, pydevd_socket, tracing


def _exception_info(e: BaseException) -> Dict[str, Any]:
    t = type(e)
    mod = t.__module__
    return {"typeName": t.__name__,
            "fullTypeName": t.__qualname__ if mod in ("builtins", "__main__") else f"{mod}.{t.__qualname__}",
            "message": str(e),
            "stackTrace": "".join(traceback.format_exception(t, e, user_traceback(e.__traceback__)))}


class CancelledFromEditor(BuildCancelled):
    """Raised inside the running build when the user cancels its progress in the editor;
    the engine then removes what the build left, as for any failed build."""

    def __init__(self, message: str = "the build was cancelled from the editor; nothing was stored",
                 **kw: Any) -> None:
        super().__init__(message, **kw)


class DapAgent(Frontend):
    """Frontend that turns build pauses into debugger stops."""

    #: builds paused on workers get a child debug session (pylightnix.remote's "debug" service)
    remote_service = "debug"

    def __init__(self, in_worker: bool = False) -> None:
        #: serves one build paused on a worker (:mod:`dap_adapter.debuggee.worker`), not a program
        self.in_worker = in_worker
        self.channel: Optional[Channel] = None
        self.configured = threading.Event()
        self._pause: Optional[BuildPause] = None
        self._step = False
        self._warmed = False
        self._lock = threading.Lock()
        self._realizing: List[int] = []  # threads of the running realizations, innermost last
        self._cancelling = False
        #: side-channel requests served besides the ``<method>_request`` methods, by how the
        #: program was started (``connect_debugger`` in --listen mode)
        self.methods: Dict[str, Any] = {}
        #: called before the ``exit`` request ends the process (--listen: remove the attach file)
        self.before_exit: List[Callable[[], None]] = []

    # -- channel ------------------------------------------------------------
    def attach_channel(self, sock: socket.socket) -> None:
        """Use an authenticated socket to the adapter (replaces an older one)."""
        old = self.channel
        ch = Channel(sock, on_request=self._on_request, on_close=self._on_close, name="agent-channel")
        self.channel = ch
        ch.start()
        if old is not None:
            old.close()
        try:
            self._configure(ch.call(protocol.HELLO, {"pid": os.getpid(), "python": sys.version}, timeout=10) or {})
        except ChannelError:
            pass

    def _connected(self) -> Optional[Channel]:
        ch = self.channel
        return ch if ch is not None and not ch.closed else None

    def _on_close(self) -> None:
        self.configured.clear()

    def _warm_up_console(self) -> None:
        """Import IPython while the program is paused (not while it runs: no contention),
        so the user's first console cell is fast."""
        if self._warmed:
            return
        self._warmed = True
        t = threading.Thread(target=console.warm_up, name="pylightnix-console-warmup", daemon=True)
        t.pydev_do_not_trace = True  # type: ignore[attr-defined]
        t.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
        t.start()

    def _configure(self, cfg: Dict[str, Any]) -> None:
        if "buildBreakpoints" in cfg:
            breakpoints.set_build_breakpoints(cfg["buildBreakpoints"])
        if "breakOnFailure" in cfg:
            breakpoints.set_break_on_failure(bool(cfg["breakOnFailure"]))
        if cfg.get("ready"):
            self.configured.set()

    def _on_request(self, method: str, params: Dict[str, Any]) -> Any:
        handler = dispatch.handler(self, method, dispatch.REQUEST) or self.methods.get(method)
        if handler is None:
            raise ChannelError(f"unknown method {method}")
        return handler(params)

    # -- the adapter's requests (names: dap_adapter.common.protocol) ---------------
    def configure_request(self, params: Dict[str, Any]) -> Dict[str, Any]:
        self._configure(params)
        return {"ok": True}

    def step_into_request(self, params: Dict[str, Any]) -> Dict[str, Any]:
        with self._lock:
            if self._pause is None:
                raise ChannelError("not paused at a build")
            self._step = True
        return {"ok": True}

    def trace_all_request(self, params: Dict[str, Any]) -> Dict[str, Any]:
        tracing.trace_all()
        return {"ok": True}

    def cancel_request(self, params: Dict[str, Any]) -> Dict[str, Any]:
        """Cancel the pending build pause, and in a driver every build paused on a worker."""
        with self._lock:
            p = self._pause
        if p is not None:
            p.cancel()
        remote = 0 if self.in_worker else pylightnix_remote.cancel_all()
        return {"ok": True, "cancelled": p is not None or remote > 0}

    def cancel_realization_request(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return self._cancel_realization()

    def interrupt_request(self, params: Dict[str, Any]) -> Dict[str, Any]:
        return console.interrupt(params)

    def exit_request(self, params: Dict[str, Any]) -> None:
        """``terminate`` found the program still running: end the process now (never a
        worker's: its session is about one build, which Stop cancels)."""
        if self.in_worker:
            raise ChannelError("this is a build paused on a worker: Stop cancels the build, "
                               "the worker process stays")
        for hook in self.before_exit:
            hook()
        exit_now()

    def _cancel_realization(self) -> Dict[str, Any]:
        """The user cancelled the progress: cancel the pause if the build is paused (the
        adapter then resumes the thread), else stop the running build."""
        with self._lock:
            p = self._pause
            if not self._realizing:
                return {"ok": True, "cancelled": False, "paused": False}
            ident, self._cancelling = self._realizing[0], True
        remote = pylightnix_remote.cancel_all()  # builds paused on workers: cancelled too
        if p is not None:
            p.cancel()
            return {"ok": True, "cancelled": True, "paused": True}
        return {"ok": True, "cancelled": raise_in_thread(ident, CancelledFromEditor) or remote > 0,
                "paused": False}

    # -- engine hooks ---------------------------------------------------------
    def on_instantiate(self, *, derivations: List[Tuple[str, str]], **kw: Any) -> None:
        ch = self._connected()
        if ch is not None:
            ch.notify(protocol.INSTANTIATED, {"derivations": [[str(d), str(n)] for d, n in derivations]})

    def on_realize_start(self, *, target: str, total: int, **kw: Any) -> None:
        with self._lock:
            if not self._realizing:
                self._cancelling = False
            self._realizing.append(threading.get_ident())

    def on_progress(self, *, index: int, total: int, dref: str, name: str, where: str = "driver",
                    **kw: Any) -> None:
        ch = self._connected()
        if ch is not None:
            ch.notify(protocol.PROGRESS, {"index": index, "total": total, "dref": str(dref), "name": str(name),
                                          "where": str(where)})

    def on_realize_end(self, *, target: str, total: int, error: Optional[BaseException], **kw: Any) -> None:
        with self._lock:
            if threading.get_ident() in self._realizing:
                self._realizing.remove(threading.get_ident())
            if self._realizing:
                return  # a realization run from a pause's console ended; the outer one goes on
            cancelled = self._cancelling or isinstance(error, BuildCancelled)
        ch = self._connected()
        if ch is not None:
            ch.notify(protocol.PROGRESS, {"done": True, "target": str(target),
                                   "outcome": "cancelled" if cancelled else "failed" if error else "done"})

    def on_pause(self, *, pause: BuildPause, **kw: Any) -> None:
        self.stop(pause)

    def on_failure(self, *, pause: BuildPause, **kw: Any) -> None:
        self.stop(pause)

    def on_built(self, *, dref: str, name: str, rrefs: List[str], **kw: Any) -> None:
        ch = self._connected()
        if ch is not None:
            ch.notify(protocol.BUILT, {"dref": str(dref), "name": str(name)})

    def on_remote_pause(self, *, remote: Any, **kw: Any) -> None:
        """A build paused on a worker: the adapter opens a child session for it. With no
        adapter attached (yet), the build goes on as a pause nobody serves does."""
        ch = self._connected()
        if ch is None or self._cancelling:
            (remote.cancel if self._cancelling else remote.resume)()
            return
        ch.notify(protocol.WORKER_PAUSED, {**remote.info(), "exception": remote.exception})

    def on_notice(self, *, text: str, **kw: Any) -> None:
        """A build is served elsewhere than asked: VS Code shows "important" output as a
        notification too (the progress display prints the same line in the Debug Console)."""
        ch = self._connected()
        if ch is not None:
            ch.notify(protocol.OUTPUT, {"category": "important", "output": f"pylightnix: {text}\n"})

    def on_remote_resumed(self, *, remote: Any, **kw: Any) -> None:
        ch = self._connected()
        if ch is not None:
            ch.notify(protocol.WORKER_RESUMED, {"id": remote.id, "dref": remote.dref, "name": remote.name,
                                                "state": remote.state})

    def stop(self, pause: BuildPause) -> None:
        """Stop in the debugger at ``pause`` (announced to the adapter first) until the
        user continues; no adapter: return at once (the pause takes its default)."""
        ch = self._connected()
        if ch is None:
            return
        if self._cancelling:  # the user cancelled this realization: no stop, just cancel
            pause.cancel()
            return
        info: Dict[str, Any] = {"kind": pause.kind, "name": pause.name, "dref": pause.dref,
                                "breakpoint": pause.breakpoint}
        if pause.kind == FAILURE and pause.exception is not None:
            info["exception"] = _exception_info(pause.exception)
        try:
            ch.call(protocol.PAUSE, info, timeout=10)
        except ChannelError:
            return
        fn, args = pause_frame.make(pause, pause_frame.shown_location(pause))
        with self._lock:
            self._pause, self._step = pause, False
        self._warm_up_console()
        try:
            pydevd_socket.set_nodelay()  # cheap; the writer socket may be new (attach)
            tracing.enter_pause()
            with tracing.transient_function_breakpoint(pause_frame.code_name(pause.name)):
                fn(*args)
        finally:
            with self._lock:
                self._pause, step = None, self._step
            if step and pause.pending:
                tracing.step_into()
            else:
                tracing.leave_pause()
            ch.notify(protocol.RESUMED, {"dref": pause.dref, "state": pause.state})


def exit_now() -> None:
    """End the process as the adapter's ``terminate`` does (stderr flushed, nothing else run)."""
    sys.stderr.flush()
    os._exit(protocol.EXIT_TERMINATED)


_agent: Optional[DapAgent] = None


def install() -> DapAgent:
    """Register the (single) agent as the engine's active frontend."""
    global _agent
    if _agent is None:
        _agent = DapAgent()
        events.add_frontend(_agent)
    return _agent


def start_from_env() -> Optional[DapAgent]:
    """Launch mode: connect to the adapter named in the environment (and scrub it)."""
    where = os.environ.pop(protocol.ENV_CHANNEL, "")
    secret = os.environ.pop(protocol.ENV_SECRET, "")
    if not where or not secret:
        return None
    host, _, port = where.rpartition(":")
    agent = install()
    pydevd_socket.set_nodelay()
    try:
        sock = connect(host, int(port), secret)
    except (ChannelError, OSError, ValueError) as e:
        print(f"pylightnix: cannot reach the debug adapter at {where}: {e}", file=sys.stderr)
        return agent
    agent.attach_channel(sock)
    return agent
