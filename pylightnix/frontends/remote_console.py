"""The console of a build paused on a worker: IPython there, your terminal here.

``pylightnix attach ID`` (and the driver's terminal, when it attaches in place)
connects through the driver's pause hub (:mod:`pylightnix.scale.hub`) to the
paused build and runs this protocol over the authenticated channel (this module is
the worker's side; the terminal's is :mod:`pylightnix.frontends.attach`):

- the worker runs each cell in an IPython shell *in the paused build's thread*,
  with the namespace the local terminal fallback has (the stage module's globals,
  ``name``, ``dref``, ``config``, ``buildargs``, ``b`` and ``exc`` at a failure,
  the ``repl_*`` helpers), and streams what the cell prints back as it runs;
- the client reads cells with prompt_toolkit (IPython's own line editor), with
  multi-line input and completion from the worker's shell.

Why our own protocol and not an IPython kernel (ipykernel + jupyter_console):
a kernel wants the process's main thread and its own event loop, five ZeroMQ
ports and a connection file; a paused build is one thread among a Dask worker's
others. Cells here go over the one authenticated loopback connection the hub
already gives us, and nothing new listens anywhere.

Requests (client -> worker): ``hello`` -> banner; ``execute {code}`` -> starts
the cell, which ends with the event ``done {exit, state}``; ``complete {code, cursor}`` -> ``matches [{text, start}]`` (IPython's completer);
``interrupt`` (KeyboardInterrupt in the running cell; the answer says whether it
lands at once or only when a blocking call returns); ``cancel`` (cancel the build
and leave); ``exit`` (leave: the build resumes). Events (worker -> client): ``output
{text}``, ``done``.

Ctrl-C: a cell runs in the paused build's thread. In the worker process's main
thread (``Processes``) a SIGINT sent to that thread interrupts anything, a
``time.sleep`` or a blocking read included. In any other thread (a Dask worker's
task thread) CPython can only raise the KeyboardInterrupt between bytecodes: a
loop stops at once, a blocking call only when it returns. The console says so at
once and offers to cancel the build (a second Ctrl-C).

A client that leaves by ``exit``/``quit``/Ctrl-D resumes the build; a client whose
connection drops (killed, a lost SSH session) does not: :func:`serve` returns
:data:`DROPPED` and the build stays paused for a re-attach (see
:func:`pylightnix.scale.worker.serve`).
"""
from __future__ import annotations

import queue
import re
import signal
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, TextIO

from pylightnix.wire.channel import Channel, ChannelError
from pylightnix.engine.events import BuildPause
from pylightnix.wire.process import let_land, raise_in_thread
from pylightnix.scale.remote_pause import DROPPED

#: ``exit``, ``quit``, ``exit()``, ``quit()``, with or without a trailing comment
_EXIT = re.compile(r"\s*(exit|quit)\s*(\(\s*\))?\s*(#.*)?")

# =========================================================================== worker side


class _Router:
    """``sys.stdout``/``sys.stderr`` while remote consoles run: what a console's thread
    writes goes to its client, everything else where it went before."""

    def __init__(self, original: TextIO) -> None:
        self.original = original
        self.sinks: Dict[int, Callable[[str], None]] = {}

    def write(self, text: str) -> int:
        sink = self.sinks.get(threading.get_ident())
        if sink is None:
            return self.original.write(text)
        sink(text)
        return len(text)

    def flush(self) -> None:
        if threading.get_ident() not in self.sinks:
            self.original.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


_routers_lock = threading.Lock()


def _route(ident: int, sink: Optional[Callable[[str], None]]) -> None:
    with _routers_lock:
        for name in ("stdout", "stderr"):
            cur = getattr(sys, name)
            if not isinstance(cur, _Router):
                if sink is None:
                    continue
                cur = _Router(cur)
                setattr(sys, name, cur)
            if sink is None:
                cur.sinks.pop(ident, None)
                if not cur.sinks:
                    setattr(sys, name, cur.original)
            else:
                cur.sinks[ident] = sink


def namespace(pause: BuildPause) -> Dict[str, Any]:
    """The console's namespace: the driver's ``__main__`` globals (shipped with the build),
    the stage module's globals, and the pause's variables."""
    from pylightnix.scale.remote_pause import pause_globals
    from pylightnix.frontends.terminal import pause_namespace
    ns: Dict[str, Any] = dict(pause_globals(pause) or {})
    ns.update(pause_namespace(pause))
    return ns


def _make_shell(pause: BuildPause) -> Any:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    class ConsoleShell(InteractiveShell):
        def ask_exit(self) -> None:  # what ``exit``/``quit`` call; the base shell lacks it
            self.exit_now = True

    cfg = Config()
    cfg.HistoryManager.enabled = False  # no sqlite file and thread on the worker
    cfg.InteractiveShell.colors = "NoColor"
    saved = (sys.excepthook, InteractiveShell._instance)
    shell = ConsoleShell(config=cfg, user_ns=namespace(pause))
    sys.excepthook, InteractiveShell._instance = saved
    return shell


class _Cell:
    """The cell running in one paused build's thread, and how to interrupt it."""

    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.main = ident == threading.main_thread().ident
        self.running = threading.Event()
        self.lock = threading.Lock()
        self.raised = False  # an asynchronous KeyboardInterrupt was set for this cell

    def interrupt(self) -> str:
        """KeyboardInterrupt in the running cell: ``"now"`` (the build runs in the main
        thread, where a SIGINT also breaks a blocking call), ``"between"`` (another
        thread: CPython raises it at the next bytecode, so a blocking call first returns),
        or ``""`` (no cell runs)."""
        with self.lock:  # never after the cell ended: it would hit the console's own loop
            if not self.running.is_set():
                return ""
            if self.main:
                signal.pthread_kill(self.ident, signal.SIGINT)
                return "now"
            self.raised = raise_in_thread(self.ident, KeyboardInterrupt)
            return "between" if self.raised else ""

    def on_sigint(self, signum: int, frame: Any) -> None:
        """SIGINT in the main thread while a console serves it: only a running cell is
        interrupted (a Ctrl-C at the driver's terminal between cells must not end the build)."""
        if self.running.is_set():
            raise KeyboardInterrupt

    def run(self, shell: Any, code: str) -> None:
        self.running.set()
        try:
            try:
                if _EXIT.fullmatch(code):  # IPython turns ``exit  # note`` into a SyntaxError
                    shell.ask_exit()
                else:
                    shell.run_cell(code, store_history=True)
            except KeyboardInterrupt:  # arrived between the cell's statements
                print("KeyboardInterrupt")
            finally:
                with self.lock:
                    self.running.clear()
                    raised, self.raised = self.raised, False
                if raised:  # one that has not landed yet lands here, not in the console's loop
                    let_land()
        except KeyboardInterrupt:  # landed while the cell was ending
            pass


_cells: Dict[int, _Cell] = {}


def interrupt(ident: int) -> str:
    """Interrupt the console cell running in thread ``ident`` (the driver cancels the
    build while a cell runs); see :meth:`_Cell.interrupt`."""
    cell = _cells.get(ident)
    return cell.interrupt() if cell is not None else ""


def serve(pause: BuildPause, sock: Any) -> Optional[str]:
    """Serve one console client on ``sock`` in the paused build's thread, until the
    client leaves (``exit``, Ctrl-D: returns None) or its connection drops (returns
    :data:`DROPPED`; the caller decides whether the build waits for a re-attach)."""
    from pylightnix.frontends.terminal import banner
    jobs: "queue.Queue[Optional[Dict[str, Any]]]" = queue.Queue()
    me = threading.get_ident()
    cell = _Cell(me)
    shell_box: List[Any] = []
    left: List[bool] = []  # the client asked to leave

    def on_request(method: str, params: Dict[str, Any]) -> Any:
        if method == "hello":
            return {"banner": banner(pause), "name": pause.name, "dref": pause.dref, "kind": pause.kind}
        if method == "execute":
            jobs.put({"code": str(params.get("code", ""))})
            return {"ok": True}
        if method == "complete":
            if not shell_box or cell.running.is_set():
                return {"matches": []}
            from IPython.core.completer import provisionalcompleter
            code, cursor = str(params.get("code", "")), int(params.get("cursor", 0))
            with provisionalcompleter():  # the shell is idle: safe to use from this thread
                got = list(shell_box[0].Completer.completions(code, cursor))[:200]
            return {"matches": [{"text": c.text, "start": c.start - cursor} for c in got]}
        if method == "interrupt":
            how = cell.interrupt()
            return {"interrupted": bool(how), "how": how}
        if method in ("exit", "cancel"):
            if method == "cancel":
                pause.cancel()
                cell.interrupt()
            left.append(True)
            jobs.put(None)
            return {"ok": True}
        raise ChannelError(f"unknown method {method}")

    ch = Channel(sock, on_request=on_request, on_close=lambda: jobs.put(None), name="pylightnix-remote-console")
    shell_box.append(_make_shell(pause))
    shell = shell_box[0]
    ch.start()
    _route(me, lambda text: ch.notify("output", {"text": text}))
    _cells[me] = cell
    old_sigint = signal.signal(signal.SIGINT, cell.on_sigint) if cell.main else None
    try:
        while True:
            try:
                job = jobs.get(timeout=0.25)  # a timeout: interrupts from the driver get delivered
            except queue.Empty:
                continue
            if job is None:
                break
            cell.run(shell, job["code"])
            ch.notify("done", {"exit": bool(shell.exit_now), "state": pause.state})
            if shell.exit_now:
                left.append(True)
                break
    finally:
        if old_sigint is not None:
            signal.signal(signal.SIGINT, old_sigint)
        _cells.pop(me, None)
        _route(me, None)
        ch.close()
    return None if left else DROPPED
