"""The attacher: ``pylightnix attach [ID]`` (and the driver's terminal attaching in
place) finds a build paused on a worker through the attach files of this user's
hubs, connects through the driver's hub (:mod:`pylightnix.scale.hub`) and runs the
build's console in this terminal: cells are read here with prompt_toolkit and run
there (:mod:`pylightnix.frontends.remote_console`, the protocol)."""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, TextIO, Tuple

from pylightnix.core.errors import AttachError
from pylightnix.scale.remote_pause import CONSOLE, open_service, worker_label
from pylightnix.wire import attach_info
from pylightnix.wire.channel import Channel, ChannelError
from pylightnix.wire.process import pid_alive

#: seconds Tab waits for the worker's completions (the first one imports jedi there)
COMPLETE_TIMEOUT = 15.0
#: seconds the client waits for an interrupted cell before it says the interrupt waits
INTERRUPT_GRACE = 1.0


def hubs(problems: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """The attach files of live hubs of this user, newest first. The debug folder must
    pass :func:`attach_info.private_directory` (else :class:`AttachInfoError`); an attach
    file there that cannot be trusted or read is skipped, with one line in ``problems``."""
    found = []
    d = attach_info.private_directory(create=False)
    try:
        names = os.listdir(d) if d is not None else []
    except OSError as e:
        raise attach_info.AttachInfoError(f"cannot list {attach_info.ENV_DIR} {d}: {e.strerror}") from e
    for n in sorted(names):
        if not (n.startswith("attach-") and n.endswith(".json")):
            continue
        try:
            info, st = attach_info.read_stat(os.path.join(d, n))  # type: ignore[arg-type]
        except attach_info.AttachInfoError as e:
            if problems is not None:
                problems.append(f"skipped {e}")
            continue
        if info.get("role") != "hub" or not ("pid" in info and pid_alive(info["pid"])):
            continue
        info["pauses"] = [p for p in info.get("pauses") or [] if isinstance(p, dict)] \
            if isinstance(info.get("pauses"), list) else []
        found.append((st.st_mtime, info))
    return [info for _, info in sorted(found, key=lambda f: -f[0])]


def paused_builds(problems: Optional[List[str]] = None) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """Every paused build of this user's drivers: ``(pause info, hub info)`` pairs."""
    return [(p, h) for h in hubs(problems) for p in h["pauses"]]


def choose(key: Optional[str]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The paused build ``key`` (an id or a derivation name) names; without a key, the
    only one there is. Raises :class:`AttachError` saying what there is instead."""
    problems: List[str] = []
    builds = paused_builds(problems)
    if key:
        hits = [b for b in builds if b[0].get("id") == key] or [b for b in builds if b[0].get("name") == key]
    else:
        hits = builds
    if len(hits) == 1:
        return hits[0]
    listing = "\n".join(f"  {p.get('id')}  {p.get('name')} on {worker_label(p.get('where'), p.get('pid'))} "
                        f"(driver pid {h.get('pid')})"
                        for p, h in builds)
    skipped = "".join(f"\n  {p}" for p in problems)
    if not builds:
        raise AttachError("no build is paused on a worker of this user's drivers"
                          + (f" (looked for {key!r})" if key else "") +
                          f"; attach files are in {attach_info.directory()}" + skipped)
    if not hits:
        raise AttachError(f"no paused build is called {key!r}; paused now:\n{listing}{skipped}")
    raise AttachError(f"{len(hits)} builds are paused; say which: pylightnix attach ID\n{listing}")


def attach(key: Optional[str] = None, out: Optional[TextIO] = None) -> int:
    """``pylightnix attach [ID]``: an IPython console in a build paused on a worker.
    Returns the exit status (0 after leaving the console)."""
    out = out or sys.stdout
    info, hub = choose(key)
    sock, answer = open_service(str(info["id"]), CONSOLE, hub)
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
