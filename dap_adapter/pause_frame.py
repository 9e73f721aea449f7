"""The Python frame the debugger shows at a build pause.

pydevd stops on a *function breakpoint* when a frame whose ``co_name`` equals
the breakpoint name starts. We make such a frame on purpose: the template
functions below are copied with their code object renamed to the derivation's
name (``code.replace(co_name=...)``) and rebuilt with the user's module
globals, so in the call stack the top frame is called ``convnn_mnist``, its
locals are the pause's ``name``, ``dref``, ``config`` and ``buildargs`` (or the
failed build ``b`` and its exception ``exc``), and the Debug Console sees the
user's stage functions.

This file must stay "user code" for pydevd even when the package is installed
in site-packages (the session adds an include rule for it), so keep it tiny.
"""
from __future__ import annotations

import re
import sys
import types
from typing import Any, Callable, Dict, Tuple

from pylightnix.events import FAILURE, BuildPause


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
    """Globals of the module that defined the stage (the script's, usually)."""
    fn = pause.stage_function
    g = getattr(fn, "__globals__", None)
    main = getattr(sys.modules.get("__main__"), "__dict__", None)
    if isinstance(g, dict) and not str(g.get("__name__", "")).startswith(("pylightnix", "dap_adapter")):
        return g
    return main if isinstance(main, dict) else {}


def make(pause: BuildPause) -> Tuple[Callable[..., None], tuple]:
    """The renamed pause function and the arguments to enter it with (the caller
    calls it, so no extra frame of this file shows in the call stack)."""
    template = build_failed if pause.kind == FAILURE else paused_before_build
    fname = code_name(pause.name)
    renames: Dict[str, Any] = {"co_name": fname}
    if hasattr(template.__code__, "co_qualname"):  # Python >= 3.11
        renames["co_qualname"] = fname
    code = template.__code__.replace(**renames)
    fn = types.FunctionType(code, user_globals(pause), fname)
    if pause.kind == FAILURE:
        args = (pause.name, pause.dref, pause.config, pause.build, pause.exception)
    else:
        args = (pause.name, pause.dref, pause.config, pause.buildargs())
    return fn, args
