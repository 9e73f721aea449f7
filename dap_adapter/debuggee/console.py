"""The Debug Console: IPython cells evaluated in the selected frame.

The adapter turns a ``repl`` evaluate into the pydevd expression
``__import__('dap_adapter.debuggee.console').debuggee.console.run_cell(<cell>, vars())``
(:mod:`dap_adapter.adapter.console`).
pydevd evaluates it in the selected frame with one merged namespace (frame
globals + locals) and, after the call, writes every changed or new name back
into the frame's locals; that is how assignments persist. Here the cell goes
through IPython's ``transform_cell`` (so ``%magic``, ``x?``, ``!cmd`` and
multi-line cells work), runs in that namespace with stdout/stderr captured, and
the last expression is displayed like IPython's ``Out``. The result is a
:class:`CellResult` whose ``repr`` is exactly that text, so the console shows it
verbatim.
"""
from __future__ import annotations

import ast
import contextlib
import io
import signal
import sys
import threading
import traceback
from typing import Any, Dict, Optional

from pylightnix.wire.process import let_land, raise_in_thread

_shell: Any = None
_shell_lock = threading.Lock()

#: names the console adds to the namespace when the program does not define them
HELPERS = ("repl_buildargs", "repl_continueBuild", "repl_cancel", "get_ipython",
           "lsref", "catref", "rmref", "shell", "shellref", "du")  # the last six: pylightnix.bashlike


#: threads running a console cell's code -> whether an interrupt was sent to it already
_running: Dict[int, bool] = {}
_running_lock = threading.Lock()


def _enter(tid: int) -> None:
    with _running_lock:
        _running[tid] = False


def _leave(tid: int) -> None:
    """The thread leaves the cell's code: no interrupt is sent after this, and one sent but
    not raised yet is raised and swallowed here (idempotent).

    (Clearing it with ``PyThreadState_SetAsyncExc(tid, NULL)`` instead leaves CPython's
    eval breaker set: the thread then spins.)"""
    try:
        with _running_lock:
            sent = _running.pop(tid, False)
        if sent:
            let_land()
    except KeyboardInterrupt:
        pass


def interrupt(params: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Raise KeyboardInterrupt in every thread running a console cell, as Ctrl-C does in
    IPython (side-channel method ``interrupt``). Each cell is interrupted at most once.
    In the main thread this is a real SIGINT (if the program kept Python's handler), which
    also ends a blocking call such as ``time.sleep``; in other threads an asynchronous
    exception, which code blocked in C sees only when it returns to Python."""
    with _running_lock:
        targets = [tid for tid, sent in _running.items() if not sent]
        for tid in targets:
            _running[tid] = True
            if tid == threading.main_thread().ident and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
                # a real SIGINT also wakes a blocking call (sleep, I/O) of the main thread
                signal.pthread_kill(tid, signal.SIGINT)
            else:
                raise_in_thread(tid, KeyboardInterrupt)
    return {"interrupted": len(targets)}


class CellResult:
    """What IPython would have printed for a cell; ``value`` is the displayed object."""

    __slots__ = ("text", "value", "error")

    def __init__(self, text: str, value: Any = None, error: bool = False) -> None:
        self.text = text
        self.value = value
        self.error = error

    def __repr__(self) -> str:
        return self.text

    __str__ = __repr__


class CellError(CellResult):
    """A cell that raised or was interrupted; its text ends with the traceback. pydevd
    reports the type's name (``protocol.CELL_ERROR_TYPE``), so the adapter can answer
    the cell's ``evaluate`` with ``success: false``."""

    __slots__ = ()


def _cell_result(text: str, value: Any, error: bool) -> CellResult:
    return CellError(text, value, True) if error else CellResult(text, value)


def shell() -> Any:
    """The process-wide IPython shell used for transforms, magics and display."""
    global _shell
    with _shell_lock:
        if _shell is None:
            from IPython.core.interactiveshell import InteractiveShell
            from traitlets.config import Config
            cfg = Config()
            # no history database and, above all, no history thread in the user's program
            cfg.HistoryManager.enabled = False
            sh = InteractiveShell.instance(config=cfg)
            try:
                sh.colors = "nocolor"
            except Exception:
                pass
            # IPython's own `!cmd` goes through pexpect and a pty, which under the
            # debugger's fork hooks takes seconds; a plain pipe is enough here.
            sh.system = _system
            _shell = sh
        return _shell


def _system(cmd: str) -> None:
    """``!cmd``: run through the shell, print its combined output, set ``_exit_code``."""
    import subprocess
    sh = _shell
    try:
        cmd = sh.var_expand(cmd, depth=1)
    except Exception:
        pass
    p = subprocess.run(cmd, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, errors="replace")
    sys.stdout.write(p.stdout)
    sh.user_ns["_exit_code"] = p.returncode


def warm_up() -> None:
    """Import IPython ahead of the first pause (in a background thread)."""
    try:
        shell()
    except Exception:
        pass


def _helpers(sh: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {"get_ipython": sh.get_ipython}
    try:
        import pylightnix
        for name in HELPERS:
            if hasattr(pylightnix, name):
                out[name] = getattr(pylightnix, name)
    except ImportError:
        pass
    return out


def _display_text(sh: Any, value: Any) -> str:
    try:
        data, _ = sh.display_formatter.format(value)
        return str(data.get("text/plain", repr(value)))
    except Exception:
        return repr(value)


def _split_last_expr(source: str) -> tuple:
    """(module without the last expression, last expression or None)."""
    tree = ast.parse(source, "<console>", "exec")
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
        return tree, last
    return tree, None


def run_cell(cell: str, ns: Dict[str, Any]) -> CellResult:
    """Run one console cell in namespace ``ns`` and return what it printed/displayed.

    The cell's code can be interrupted (:func:`interrupt`); the KeyboardInterrupt shows
    as the cell's traceback and the pause stays usable."""
    tid = threading.get_ident()
    try:
        return _run_cell(cell, ns, tid)
    except KeyboardInterrupt:  # landed in our bookkeeping right around the user's code
        return CellError("KeyboardInterrupt", None, True)
    finally:
        _leave(tid)


def _run_cell(cell: str, ns: Dict[str, Any], tid: int) -> CellResult:
    sh = shell()
    added = {k: v for k, v in _helpers(sh).items() if k not in ns}
    ns.update(added)
    saved_ns, saved_hidden = sh.user_ns, dict(sh.user_ns_hidden)
    sh.user_ns = ns
    sh.user_ns_hidden.update(added)
    buf = io.StringIO()
    value: Any = None
    error = False
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
            try:
                source = sh.transform_cell(cell)
                body, last = _split_last_expr(source)
                code = compile(body, "<console>", "exec")
                expr = compile(last, "<console>", "eval") if last is not None else None
                _enter(tid)
                try:
                    exec(code, ns)
                    if expr is not None:
                        value = eval(expr, ns)
                finally:
                    _leave(tid)
                if last is not None:
                    silent = source.rstrip().endswith(";")
                    if value is not None and not silent:
                        print(_display_text(sh, value))
            except SyntaxError as e:
                error = True
                print("".join(traceback.format_exception_only(type(e), e)), end="")
            except BaseException as e:  # the user's code: show it like IPython does
                if isinstance(e, (SystemExit,)):
                    raise
                error = True
                tb = e.__traceback__
                # drop this module's frames from the traceback
                while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
                    tb = tb.tb_next
                print("".join(traceback.format_exception(type(e), e, tb)), end="")
    finally:
        sh.user_ns = saved_ns
        sh.user_ns_hidden.clear()
        sh.user_ns_hidden.update(saved_hidden)
        for k in added:
            if ns.get(k) is added[k]:
                del ns[k]
    text = buf.getvalue()
    if text.endswith("\n"):
        text = text[:-1]
    return _cell_result(text, value, error)


def complete(text: str, column: int, ns: Optional[Dict[str, Any]] = None) -> list:
    """IPython completions for ``text`` at 0-based ``column`` in namespace ``ns``."""
    sh = shell()
    comp = sh.Completer
    saved = sh.user_ns, comp.namespace, comp.global_namespace
    if ns is not None:
        sh.user_ns = comp.namespace = comp.global_namespace = ns
    try:
        from IPython.core.completer import provisionalcompleter
        comp.use_jedi = False  # fast and deterministic: namespace + attribute completion
        with provisionalcompleter():
            comps = list(comp.completions(text, column))
        out = []
        for c in comps[:200]:
            t, start = c.text, c.start
            if t.startswith(".") and text[start:start + 1] == ".":  # attribute: complete the name
                t, start = t[1:], start + 1
            out.append({"text": t, "start": start, "end": c.end, "type": c.type or ""})
        return out
    finally:
        sh.user_ns, comp.namespace, comp.global_namespace = saved


class _JSONText:
    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def complete_json(text: str, column: int, ns: Dict[str, Any]) -> _JSONText:
    import json
    return _JSONText(json.dumps(complete(text, column, ns)))
