"""The console of a build paused on a worker: IPython there, your terminal here.

``pylightnix attach ID`` (and the driver's terminal, when it attaches in place)
connects through the driver's pause hub (:mod:`pylightnix.scale.hub`) to the
paused build and runs this protocol over the authenticated channel:

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
:func:`pylightnix.scale.hub.serve`).
"""
from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, TextIO

from pylightnix.wire.channel import Channel, ChannelError
from pylightnix.engine.events import BuildPause
from pylightnix.wire.process import raise_in_thread, unraise_in_thread
from pylightnix.scale.hub import DROPPED, worker_label

#: seconds Tab waits for the worker's completions (the first one imports jedi there)
COMPLETE_TIMEOUT = 15.0
#: seconds the client waits for an interrupted cell before it says the interrupt waits
INTERRUPT_GRACE = 1.0
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
    from pylightnix.scale.hub import pause_globals
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
            return "between" if raise_in_thread(self.ident, KeyboardInterrupt) else ""

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
                    if not self.main:
                        unraise_in_thread(self.ident)  # one that has not landed yet
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


# =========================================================================== client side
def attach(key: Optional[str] = None, out: Optional[TextIO] = None) -> int:
    """``pylightnix attach [ID]``: an IPython console in a build paused on a worker.
    Returns the exit status (0 after leaving the console)."""
    from pylightnix.scale import hub as remote
    out = out or sys.stdout
    info, hub = remote.choose(key)
    sock, answer = remote.open_service(str(info["id"]), remote.CONSOLE, hub)
    return run_client(sock, answer, out)


def run_client(sock: Any, answer: Dict[str, Any], out: TextIO) -> int:
    """Read cells in this terminal and run them in the paused build until the user leaves."""
    done = threading.Event()
    result: Dict[str, Any] = {}
    closed = threading.Event()

    def on_event(event: str, body: Dict[str, Any]) -> None:
        if event == "output":
            out.write(str(body.get("text", "")))
            out.flush()
        elif event == "done":
            result.clear()
            result.update(body)
            done.set()

    def on_close() -> None:
        closed.set()
        done.set()

    ch = Channel(sock, on_event=on_event, on_close=on_close, name="pylightnix-attach").start()
    hello = ch.call("hello", {}, timeout=30)
    out.write(f"pylightnix: attached to {answer.get('name')} on {worker_label(answer.get('where'), answer.get('pid'))}"
              f"; Ctrl-D continues the build\n")
    out.write(str(hello.get("banner", "")) + "\n")
    out.flush()
    read = _reader(ch)
    n = 1
    cancelled = False
    try:
        while not closed.is_set() and not cancelled:
            try:
                code = read(n)
            except EOFError:
                break
            except KeyboardInterrupt:
                out.write("\nKeyboardInterrupt\n")
                continue
            if not code.strip():
                continue
            done.clear()
            ch.call("execute", {"code": code}, timeout=30)
            n += 1
            cancelled = _wait_cell(ch, done, out, str(answer.get("name")))
            if result.get("exit"):
                break
    except ChannelError:
        pass
    finally:
        gone = closed.is_set()  # the worker's side ended it (before our own close below)
        if not gone and not cancelled:
            try:
                ch.call("exit", {}, timeout=5)
            except ChannelError:
                pass
        ch.close()
    if cancelled:
        out.write(f"pylightnix: detached from {answer.get('name')}; its build is cancelled\n")
    elif not gone or result.get("exit"):
        out.write(f"pylightnix: detached from {answer.get('name')}; the build goes on\n")
    else:
        out.write(f"pylightnix: the paused build of {answer.get('name')} went away (cancelled by its driver, "
                  f"or the driver ended)\n")
    out.flush()
    return 0


@contextlib.contextmanager
def _ctrl_c_as_key(done: threading.Event) -> Iterator[Callable[[float], None]]:
    """While a cell runs: a function waiting up to a timeout for the cell's end that
    raises KeyboardInterrupt when Ctrl-C is pressed. On a terminal Ctrl-C is read as a
    key (no SIGINT), since the driver's terminal is shared with its worker processes:
    a Ctrl-C sent to all of them would interrupt the other builds too."""
    fd = -1
    try:
        if sys.stdin.isatty():
            import termios
            fd = sys.stdin.fileno()
            saved = termios.tcgetattr(fd)
            raw = termios.tcgetattr(fd)
            raw[3] &= ~(termios.ISIG | termios.ICANON | termios.ECHO)
            raw[6][termios.VMIN], raw[6][termios.VTIME] = 0, 0
            termios.tcsetattr(fd, termios.TCSANOW, raw)
    except (ImportError, OSError, ValueError):
        fd = -1

    def wait(timeout: float) -> None:
        if fd < 0:
            done.wait(timeout)
            return
        import select
        end = time.monotonic() + timeout
        while not done.is_set() and time.monotonic() < end:
            if select.select([fd], [], [], 0.05)[0] and b"\x03" in os.read(fd, 1024):
                raise KeyboardInterrupt
    try:
        yield wait
    finally:
        if fd >= 0:
            termios.tcsetattr(fd, termios.TCSANOW, saved)


def _wait_cell(ch: Channel, done: threading.Event, out: TextIO, name: str) -> bool:
    """Wait for the running cell; Ctrl-C interrupts it on the worker. Where the interrupt
    must wait for a blocking call to return, say so, and a second Ctrl-C cancels the
    build. Returns whether the build was cancelled (the console is then left)."""
    with _ctrl_c_as_key(done) as wait:
        return _wait_keys(ch, done, out, name, wait)


def _wait_keys(ch: Channel, done: threading.Event, out: TextIO, name: str, wait: Callable[[float], None]) -> bool:
    waiting = False  # the interrupt waits for a blocking call; the next Ctrl-C cancels
    while not done.is_set():
        try:
            wait(0.5)
        except KeyboardInterrupt:
            try:
                if waiting:
                    ch.call("cancel", {}, timeout=5)
                    out.write(f"\npylightnix: cancelling the build of {name}: it ends when the running call "
                              f"returns, and nothing is stored\n")
                    out.flush()
                    return True
                how = ch.call("interrupt", {}, timeout=5).get("how")
            except ChannelError:
                return False
            try:
                if how == "between":
                    wait(INTERRUPT_GRACE)
            except KeyboardInterrupt:  # pressed again at once: the same question, asked below
                pass
            if not done.is_set() and how == "between":
                waiting = True
                out.write(f"\npylightnix: the cell is in a call that Python cannot interrupt in this worker's "
                          f"thread (time.sleep, I/O, ...): the KeyboardInterrupt comes when it returns. "
                          f"Ctrl-C again cancels the build of {name}.\n")
                out.flush()
    return False


def _reader(ch: Channel) -> Callable[[int], str]:
    """A function reading one cell (several lines while incomplete) for prompt ``In [n]``."""
    from IPython.core.inputtransformer2 import TransformerManager
    tm = TransformerManager()

    def complete(text: str) -> bool:
        status, _ = tm.check_complete(text + "\n")
        return status != "incomplete"

    if not sys.stdin.isatty():
        def read_plain(n: int) -> str:
            lines = [input(f"In [{n}]: ")]
            while not complete("\n".join(lines)):
                lines.append(input("   ...: "))
            return "\n".join(lines)
        return read_plain

    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import Completer, Completion

    class Remote(Completer):
        def get_completions(self, document: Any, complete_event: Any) -> Any:
            try:
                got = ch.call("complete", {"code": document.text, "cursor": document.cursor_position},
                              timeout=COMPLETE_TIMEOUT)
            except ChannelError:
                return
            for m in got.get("matches", []):
                yield Completion(str(m.get("text", "")), start_position=min(0, int(m.get("start", 0))))

    session: Any = PromptSession(completer=Remote(), complete_while_typing=False)

    from prompt_toolkit.formatted_text import FormattedText

    def read_prompt(n: int) -> str:  # IPython's prompts, in IPython's colours
        lines = [session.prompt(FormattedText([("ansigreen", "In ["), ("ansibrightgreen bold", str(n)),
                                               ("ansigreen", "]: ")]))]
        while not complete("\n".join(lines)):
            lines.append(session.prompt(FormattedText([("ansigreen", "   ...: ")])))
        return "\n".join(lines)
    return read_prompt
