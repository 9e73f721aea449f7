"""``python -m pylightnix debug``: run a script with build breakpoints.

    python -m pylightnix debug [--break NAME]... [--break-on-failure]
                               [--no-tty=continue|fail]
                               [--listen HOST:PORT [--wait|--no-wait]] SCRIPT [ARGS...]

The script runs as ``__main__`` (``runpy.run_path``) with ``sys.argv`` set to
``[SCRIPT, *ARGS]``, exactly as ``python SCRIPT ARGS...`` would run it, and its
exit status or exception comes out the same way. Build pauses open an IPython
shell in the terminal (:mod:`pylightnix.terminal`); with ``--listen`` they are
served instead to a VS Code ``attach`` on a loopback address: only an adapter
that proves the secret of the attach file can make the program connect its
debugger (see docs/security.md). With build breakpoints, ``--listen`` holds the
script until a debugger has attached (else the first pause would come before
anyone could see it); ``--no-wait`` starts it at once. The debugger side
provides the listener through the entry point ``listen`` of group
:data:`ENTRY_POINT_GROUP` (``dap_adapter`` declares it in pyproject.toml); the
core never imports the adapter by name.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import ipaddress
import json
import os
import runpy
import shlex
import sys
import urllib.parse
from typing import Any, Callable, List, Optional, Tuple

from pylightnix import attach_info, breakpoints, events, settings
from pylightnix.errors import PylightnixError
from pylightnix.terminal import NO_TTY_CHOICES, TerminalFrontend, no_tty_policy

PROG = "python -m pylightnix debug"


def _parser(prog: str = PROG) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        allow_abbrev=False,  # split_argv must know exactly which options take a value
        usage=f"{prog} [-h] [--break NAME]... [--break-on-failure] [--no-tty {{continue,fail}}] "
              f"[--listen HOST:PORT [--wait | --no-wait]] SCRIPT [ARGS ...]",
        description="Run SCRIPT with build breakpoints: before building a matching "
                    "derivation (or after a failed build) an IPython shell opens in the "
                    "terminal, or a VS Code attach session with --listen.")
    p.add_argument("--break", dest="breaks", action="append", default=[], metavar="NAME",
                   help="pause before building derivations with this name or glob "
                        "(repeatable; adds to $PYLIGHTNIX_BREAK)")
    p.add_argument("--break-on-failure", action="store_true",
                   help="pause when a stage's realizer raises, with the failed build "
                        "alive as b")
    p.add_argument("--no-tty", choices=NO_TTY_CHOICES, default=None,
                   help="what a pause does when stdin is not a terminal: continue the "
                        "build or cancel it (default: $PYLIGHTNIX_NO_TTY or continue)")
    p.add_argument("--listen", metavar="HOST:PORT", default=None,
                   help="serve pauses to a VS Code attach on this loopback address "
                        "instead of the terminal")
    waiting = p.add_mutually_exclusive_group()
    waiting.add_argument("--wait", action="store_const", const=True, default=None,
                         help="with --listen: do not start the script until VS Code has attached "
                              "(the default with build breakpoints; else $PYLIGHTNIX_DEBUG_WAIT)")
    waiting.add_argument("--no-wait", dest="wait", action="store_const", const=False,
                         help="with --listen: start the script at once, even with build breakpoints")
    p.add_argument("script", metavar="SCRIPT",
                   help="the Python program to run; the arguments after it go to it verbatim")
    return p


_VALUED = ("--break", "--listen", "--no-tty")


def split_argv(argv: List[str]) -> Tuple[List[str], List[str]]:
    """Split at SCRIPT: ``(our options + [SCRIPT], the script's arguments)``.

    Everything after SCRIPT belongs to the script, even if it looks like one of
    our options, exactly like ``python [options] script [args]``."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return argv[:i + 2], argv[i + 2:]
        if not a.startswith("-") or a == "-":
            return argv[:i + 1], argv[i + 1:]
        if a in _VALUED:  # "--opt VALUE"; "--opt=VALUE" is one token
            i += 2
        else:
            i += 1
    return argv, []


def parse_listen(value: str) -> Tuple[str, int]:
    """Split ``HOST:PORT`` (``[::1]:PORT`` for IPv6) and refuse non-loopback hosts:
    the attach channel can run code in this process."""
    host, sep, port_s = value.rpartition(":")
    if not sep or not host or not port_s:
        raise PylightnixError(f"--listen {value!r}: expected HOST:PORT, e.g. 127.0.0.1:5678")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_s)
    except ValueError:
        raise PylightnixError(f"--listen {value!r}: port {port_s!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise PylightnixError(f"--listen {value!r}: port {port} is out of range 0-65535")
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise PylightnixError(
                f"--listen {value!r}: refusing to listen on non-loopback host {host!r}; "
                f"a debug attach can run arbitrary code in this process. Listen on "
                f"127.0.0.1 and forward the port (e.g. ssh -L {port}:127.0.0.1:{port} HOST; "
                f"docs/security.md tells how to attach from another machine)")
    return host, port


DIST = "pylightnix-breakpoints"
#: entry points of a debugger: ``listen`` = ``serve_attach(host, port, wait)`` for --listen
ENTRY_POINT_GROUP = "pylightnix.debugger"


def installed_from() -> Tuple[Optional[str], bool]:
    """Where this pylightnix was installed from, as ``(path, editable)``: pip's record
    (PEP 610 ``direct_url.json``), else the source checkout it is imported from."""
    try:
        info = json.loads(importlib.metadata.distribution(DIST).read_text("direct_url.json") or "{}")
    except (importlib.metadata.PackageNotFoundError, ValueError):
        info = {}
    url = str(info.get("url", ""))
    if url.startswith("file://"):
        return urllib.parse.unquote(url[len("file://"):]), bool(info.get("dir_info", {}).get("editable"))
    checkout = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.isfile(os.path.join(checkout, "pyproject.toml")):
        return checkout, True
    return None, False


def install_hint(missing: str) -> str:
    """A command that installs ``missing`` (``debugpy`` or ``dap_adapter``) into this interpreter.

    debugpy comes from the package index. dap_adapter ships with pylightnix itself
    (distribution ``pylightnix-breakpoints``, not on the index), so the hint reinstalls
    from the wheel or checkout this pylightnix came from."""
    py = shlex.quote(sys.executable)
    if missing == "debugpy":
        return f"{py} -m pip install 'debugpy>=1.8.0'"
    source, editable = installed_from()
    if source is None:
        return (f"{py} -m pip install --force-reinstall --no-deps WHEEL, where WHEEL is the "
                f"{DIST} wheel (the VS Code extension ships it in its bundled/wheels folder)")
    return f"{py} -m pip install --force-reinstall --no-deps {'-e ' if editable else ''}{shlex.quote(source)}"


def _listen_entry_point() -> Callable[..., Any]:
    """The debugger's ``serve_attach`` (entry point ``listen`` of :data:`ENTRY_POINT_GROUP`);
    loading it imports the adapter's debuggee side and debugpy (the "dap" extra)."""
    found = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == "listen"]
    try:
        if not found:
            raise ModuleNotFoundError(f"no entry point 'listen' in group {ENTRY_POINT_GROUP!r}",
                                      name="dap_adapter")
        return found[0].load()
    except ImportError as e:
        missing = "debugpy" if e.name == "debugpy" else "dap_adapter"
        raise PylightnixError(
            f"--listen needs {missing}, which cannot be imported ({e}); "
            f"install it with: {install_hint(missing)}") from e
    except AttributeError as e:
        raise PylightnixError(f"--listen: the installed dap_adapter is too old ({e}); "
                              f"install it with: {install_hint('dap_adapter')}") from e


def _serve_attach(host: str, port: int, wait: Optional[bool]) -> None:
    serve = _listen_entry_point()  # lazy: the adapter is optional for terminal use
    try:
        serve(host, port, wait=wait)
    except attach_info.AttachInfoError as e:
        raise PylightnixError(f"--listen: {e}") from e
    except OSError as e:
        raise PylightnixError(f"--listen {host}:{port}: cannot listen: {e}") from e


#: environment variable: hold a ``--listen`` script until a debugger has attached (1/0)
ENV_WAIT = "PYLIGHTNIX_DEBUG_WAIT"


def listen_waits(flag: Optional[bool]) -> Optional[bool]:
    """Whether ``--listen`` holds the script until a debugger attaches: ``--wait``/``--no-wait``,
    else ``$PYLIGHTNIX_DEBUG_WAIT`` if set (``None``: the debugger side reads it), else yes when
    there are build breakpoints, which would otherwise be passed before anyone could attach."""
    if flag is not None or settings.debug_wait() is not None:
        return flag
    return bool(breakpoints.build_breakpoints() or breakpoints.break_on_failure())


def _script_traceback(exc: BaseException, script: str):
    """The traceback from the script's first frame on, as plain python shows it."""
    tb = exc.__traceback__
    target = os.path.abspath(script)
    t = tb
    while t is not None:
        if os.path.abspath(t.tb_frame.f_code.co_filename) == target:
            return t
        t = t.tb_next
    return tb


def run_script(script: str, args: List[str]) -> int:
    """Run ``script`` as ``__main__`` with ``sys.argv = [script, *args]``.

    Returns 0 on success, 1 after printing an uncaught exception like the interpreter,
    from the script's first frame on, with pylightnix's own frames folded into one line
    (through ``sys.excepthook`` if the script or a pause installed one: the terminal's
    prints only the last line of a traceback it showed at the pause). ``SystemExit``
    and ``KeyboardInterrupt`` propagate untouched, so exit codes are the script's.
    """
    if not os.path.exists(script):
        raise PylightnixError(f"can't open file {script!r}: no such file")
    saved_argv, saved_path0 = sys.argv, list(sys.path)
    sys.argv = [script, *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        runpy.run_path(script, run_name="__main__")
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as e:  # noqa: BLE001 - report like the interpreter does
        tb = _script_traceback(e, script)
        if sys.excepthook is not sys.__excepthook__:
            sys.excepthook(type(e), e.with_traceback(tb), tb)
        else:
            sys.stderr.write(events.format_folded(e, tb))
        return 1
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path0
    return 0


def main(argv: Optional[List[str]] = None, prog: str = PROG) -> int:
    """Entry point of ``pylightnix debug``; returns the process exit status.
    ``prog`` is how the user called it (``pylightnix debug`` or ``python -m pylightnix debug``)."""
    ours, script_args = split_argv(list(sys.argv[1:] if argv is None else argv))
    ns = _parser(prog).parse_args(ours)
    try:
        no_tty = no_tty_policy(ns.no_tty)
        listen = parse_listen(ns.listen) if ns.listen else None
        for name in ns.breaks:
            breakpoints.add_build_breakpoint(name)
        if ns.break_on_failure:
            breakpoints.set_break_on_failure(True)
        if ns.wait is not None and listen is None:
            raise PylightnixError(f"--{'' if ns.wait else 'no-'}wait only makes sense with --listen HOST:PORT")
        if listen is not None:
            _serve_attach(*listen, wait=listen_waits(ns.wait))
        else:
            events.add_frontend(TerminalFrontend(no_tty))
        return run_script(ns.script, script_args)
    except PylightnixError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
