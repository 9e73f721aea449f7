"""The Python frame the debugger shows at a build pause.

pydevd stops on a *function breakpoint* when a frame whose ``co_name`` equals
the breakpoint name starts. We make such a frame on purpose: the template
functions below are copied with their code object renamed to the derivation's
name (``code.replace(co_name=...)``) and rebuilt with the user's module
globals, so in the call stack the top frame is called ``convnn_mnist``, its
locals are the pause's ``name``, ``dref``, ``config`` and ``buildargs`` (or the
failed build ``b`` and its exception ``exc``), and the Debug Console sees the
user's stage functions.

The copy also *lives in the user's file*: its ``co_filename``/``co_firstlineno``
are the pause's location (:meth:`BuildPause.location`: the ``def`` line of the
stage function that declared the derivation, or the line of the user's realizer
that raised), so the editor opens the user's code, never this file. Its line
table gives the body no line, so no ``line`` event fires in the user's file (a
line breakpoint there does not stop a second time). Only when the location is
unknown, or would be hidden by justMyCode, does the frame stay in this file
(the session adds an include rule for it), so keep it tiny.
"""
from __future__ import annotations

import re
import sys
import types
from typing import Any, Callable, Dict, Optional, Tuple

from pylightnix.scale import remote_pause
from pylightnix.engine.events import FAILURE, BuildPause

from dap_adapter.debuggee import tracing


def paused_before_build(name, dref, config, buildargs):  # type: ignore[no-untyped-def]
    """Paused before building `name`. In the Debug Console: b = <BuildClass>(repl_buildargs());
    ...; repl_continueBuild(b). Continue runs the stage's realizer; Step Into enters it."""
    return None


def build_failed(name, dref, config, b, exc):  # type: ignore[no-untyped-def]
    """The build of `name` failed with `exc`; `b` is the failed build, alive. Fix things in
    the Debug Console, then repl_continueBuild(b); Continue without a commit re-raises."""
    return None


_IDENT = re.compile(r"[^0-9A-Za-z_]")


def code_name(name: str) -> str:
    """The frame name for derivation ``name`` (derivation names may contain ``-``)."""
    return name if name.isidentifier() else _IDENT.sub("_", name)


def user_globals(pause: BuildPause) -> Dict[str, Any]:
    """Globals of the module that defined the stage (the script's, usually); on a
    worker, the driver's ``__main__`` names that came with the build, and the stage's."""
    g = remote_pause.pause_globals(pause) or remote_pause.stage_globals(pause)
    if g is not None:
        return g
    main = getattr(sys.modules.get("__main__"), "__dict__", None)
    return main if isinstance(main, dict) else {}


def _no_body_lines(code: types.CodeType) -> bytes:
    """A line table where only the function's entry has its first line (3.11+: the
    RESUME instruction; 3.10 reads the entry line from ``co_firstlineno``) and every
    other instruction has no line, so tracing sees ``call`` and ``return`` but no
    ``line`` event (format: CPython's InternalDocs/locations.md, PEP 626)."""
    if sys.version_info < (3, 11):
        return bytes([len(code.co_code), 0x80])  # (bytecode delta, line delta -128 = none)
    units = len(code.co_code) // 2
    out = bytes([0x80 | (10 << 3), 0, 0])  # one code unit, "one line" form, line delta 0
    rest = units - 1
    while rest > 0:
        k = min(rest, 8)
        out += bytes([0x80 | (15 << 3) | (k - 1)])  # k code units without a location
        rest -= k
    return out


def hidden_by_debugger(path: str, globals_: Dict[str, Any]) -> bool:
    """Whether pydevd would not trace a frame of ``path`` (justMyCode, ``rules``):
    a pause frame there would never stop."""
    py_db = tracing.pydevd_debugger()  # pydevd internals live in tracing
    if py_db is None or not getattr(py_db, "is_files_filter_enabled", False):
        return False
    code = paused_before_build.__code__.replace(co_filename=path)
    frame = types.SimpleNamespace(f_code=code, f_globals=globals_, f_back=None, f_lineno=code.co_firstlineno)
    try:
        return bool(py_db.apply_files_filter(frame, path, False))
    except Exception:  # pydevd internals changed: trust the user's file
        return False


def shown_location(pause: BuildPause) -> Optional[Tuple[str, int]]:
    """Where the pause frame should live: the pause's user location, unless there is
    none or the debugger would hide that file (then: this file)."""
    loc = pause.location()
    if loc is None or hidden_by_debugger(loc[0], user_globals(pause)):
        return None
    return loc


def make(pause: BuildPause, where: Optional[Tuple[str, int]] = None) -> Tuple[Callable[..., None], tuple]:
    """The renamed pause function and the arguments to enter it with (the caller
    calls it, so no extra frame of this file shows in the call stack). With
    ``where = (file, line)`` the frame shows that line of that file."""
    template = build_failed if pause.kind == FAILURE else paused_before_build
    fname = code_name(pause.name)
    renames: Dict[str, Any] = {"co_name": fname}
    if hasattr(template.__code__, "co_qualname"):  # Python >= 3.11
        renames["co_qualname"] = fname
    if where is not None:
        renames.update(co_filename=where[0], co_firstlineno=where[1],
                       co_linetable=_no_body_lines(template.__code__))
    code = template.__code__.replace(**renames)
    fn = types.FunctionType(code, user_globals(pause), fname)
    if pause.kind == FAILURE:
        args = (pause.name, pause.dref, pause.config, pause.build, pause.exception)
    else:
        args = (pause.name, pause.dref, pause.config, pause.buildargs())
    return fn, args
