"""The REPL frontend: pause a realization and finish it by hand at the prompt.

``repl_realize`` runs the engine until the first interrupted derivation and
returns a :class:`ReplHelper` holding the paused engine. The ``repl_*``
functions act on *the active pause*: a pause being shown by another frontend
right now (a terminal or VS Code build breakpoint) if there is one, otherwise
the given or the global ReplHelper.
"""
from __future__ import annotations

import shutil
from typing import Dict, List, Optional, Tuple, Union

from pylightnix.engine import events
from pylightnix.engine.build import Build
from pylightnix.engine.steps import Steps, drefs_arg, drive, is_interrupt, realize_steps
from pylightnix.core.errors import BuildCancelled, ReplError
from pylightnix.engine.events import BuildPause
from pylightnix.engine.manager import Closure
from pylightnix.types import BuildArgs, DRef, Path, RRef, RealizeArg


class ReplHelper:
    """A realization paused at the prompt (``pause``), or finished (``rrefs``)."""

    def __init__(self, steps: Steps, target: DRef) -> None:
        self.steps: Optional[Steps] = steps
        self.target = target
        self.pause: Optional[BuildPause] = None
        self.rrefs: Optional[List[RRef]] = None

    @property
    def dref(self) -> Optional[DRef]:
        return DRef(self.pause.dref) if self.pause else None

    @property
    def context(self):  # type: ignore[no-untyped-def]
        return self.pause.context if self.pause else None

    def __repr__(self) -> str:
        if self.pause is not None:
            return f"<ReplHelper paused before building {self.pause.name} ({self.pause.dref})>"
        if self.rrefs is not None:
            return f"<ReplHelper done: {self.rrefs}>"
        return "<ReplHelper inactive>"

    def _advance(self) -> None:
        """Resume the engine until it pauses at an interrupt again or finishes."""
        steps = self.steps
        if steps is None:
            raise ReplError("this realization is no longer running")
        self.pause = None
        try:
            out = drive(steps, events.dispatch_pause, stop=is_interrupt)
        except BaseException:
            self.steps = None
            raise
        if isinstance(out, BuildPause):
            self.pause = out
        else:
            self.steps = None
            self.rrefs = out


PYLIGHTNIX_REPL_HELPER: Optional[ReplHelper] = None


def repl_realize(closure: Closure, force_interrupt: Union[bool, List[DRef]] = True,
                 realize_args: Optional[Dict[DRef, RealizeArg]] = None) -> ReplHelper:
    """Start realizing ``closure`` and pause before the target (or the given drefs).

    Returns the helper and records it as the global one.
    """
    global PYLIGHTNIX_REPL_HELPER
    cur = PYLIGHTNIX_REPL_HELPER
    if cur is not None and cur.pause is not None and cur.steps is not None:
        raise ReplError(f"a realization is already paused before building {cur.pause.name} ({cur.pause.dref}); "
                        f"finish it with repl_continueBuild(b)/repl_continue() or drop it with repl_cancel() "
                        f"first", dref=cur.pause.dref)
    rh = ReplHelper(realize_steps(closure, set(), drefs_arg(closure, force_interrupt, "repl_realize: force_interrupt"),
                                  set(), realize_args), closure.dref)
    PYLIGHTNIX_REPL_HELPER = rh
    rh._advance()
    return rh


def _active(rh: Optional[ReplHelper]) -> Tuple[BuildPause, Optional[ReplHelper]]:
    if rh is None:
        p = events.current_pause()
        if p is not None:
            return p, None
        rh = PYLIGHTNIX_REPL_HELPER
    if rh is None or rh.pause is None or rh.steps is None:
        raise ReplError("no paused realization: start one with repl_realize(instantiate(stage)), "
                        "or stop at a build breakpoint")
    return rh.pause, rh


def repl_buildargs(rh: Optional[ReplHelper] = None, buildtime: bool = True) -> BuildArgs:
    """Arguments for making this stage's Build by hand: ``Model(repl_buildargs())``."""
    pause, _ = _active(rh)
    ba = pause.buildargs()
    return ba if buildtime else ba._replace(timeprefix=None, buildtime=False)


def repl_build(rh: Optional[ReplHelper] = None, buildtime: bool = True) -> Build:
    """A plain Build for the paused derivation."""
    return Build(repl_buildargs(rh, buildtime))


def _continue_args(out_rrefs: object, rh: object) -> Tuple[Optional[List[RRef]], Optional[ReplHelper]]:
    """The second positional argument is ``rh`` in the original of the design
    document's date (``repl_continue(out_paths, rh)``) and ``out_rrefs`` in 0.1.0;
    tell them apart by type."""
    if isinstance(out_rrefs, ReplHelper) and (rh is None or isinstance(rh, list)):
        out_rrefs, rh = rh, out_rrefs
    if rh is not None and not isinstance(rh, ReplHelper):
        raise ReplError(f"repl_continue: rh: expected a ReplHelper from repl_realize, got {type(rh).__name__}")
    if out_rrefs is not None and not isinstance(out_rrefs, list):
        raise ReplError(f"repl_continue: out_rrefs: expected a list of RRefs, got {type(out_rrefs).__name__}")
    return out_rrefs, rh  # type: ignore[return-value]


def repl_continueMany(out_paths: Optional[List[Path]] = None, out_rrefs: Optional[List[RRef]] = None,
                      rh: Optional[ReplHelper] = None) -> Optional[List[RRef]]:
    """Resume: commit ``out_paths`` (or adopt ``out_rrefs``) as the paused stage's
    realizations, or with neither let the stage build itself.

    ``repl_continueMany(out_paths, rh)`` (the original's order) works too.
    Returns the target's realizations when everything is done, ``None`` if the
    engine paused again. Inside a pause shown by another frontend (terminal,
    VS Code) the engine resumes when that frontend continues; then this returns
    the realizations just committed.
    """
    out_rrefs, rh = _continue_args(out_rrefs, rh)
    pause, helper = _active(rh)
    if out_paths is not None and out_rrefs is not None:
        raise ReplError("repl_continue: give out_paths or out_rrefs, not both", dref=pause.dref)
    if out_paths is not None:
        pause.commit(out_paths)
    elif out_rrefs is not None:
        pause.adopt(out_rrefs)
    if helper is None:
        return pause.rrefs
    helper._advance()
    return helper.rrefs


def repl_continue(out_paths: Optional[List[Path]] = None, out_rrefs: Optional[List[RRef]] = None,
                  rh: Optional[ReplHelper] = None) -> Optional[RRef]:
    """Single-output :func:`repl_continueMany`; ``repl_continue(out_paths, rh)`` works too."""
    rrefs = repl_continueMany(out_paths, out_rrefs, rh)
    if rrefs is None:
        return None
    if len(rrefs) != 1:
        raise ReplError(f"repl_continue: expected one realization, got {len(rrefs)}: {rrefs}; "
                        f"use repl_continueMany")
    return rrefs[0]


def repl_continueBuild(b: Build, rh: Optional[ReplHelper] = None) -> Optional[RRef]:
    """Commit the folders of a Build made by hand and resume."""
    if not isinstance(b, Build):
        raise ReplError(f"repl_continueBuild: expected a Build, got {type(b).__name__}")
    if not b.outpaths:
        raise ReplError(f"repl_continueBuild: {b.dref} has no output folder yet; the stage must call "
                        f"build_outpath(b) before its result can be committed", dref=b.dref)
    return repl_continue(out_paths=list(b.outpaths), rh=rh)


def repl_cancel(rh: Optional[ReplHelper] = None) -> None:
    """Abandon the paused realization; the store stays as it was."""
    pause, helper = _active(rh)
    pause.cancel()
    if helper is not None and helper.steps is not None:
        try:
            helper._advance()
        except BuildCancelled:
            pass
        helper.steps = None
        helper.pause = None


def repl_cancelBuild(b: Build, rh: Optional[ReplHelper] = None) -> None:
    """Cancel and remove the Build's output folders."""
    repl_cancel(rh)
    for o in b.outpaths:
        shutil.rmtree(o, ignore_errors=True)


def repl_rrefs(rh: Optional[ReplHelper] = None) -> Optional[List[RRef]]:
    """The finished realization's RRefs (``None`` while paused)."""
    rh = rh or PYLIGHTNIX_REPL_HELPER
    return rh.rrefs if rh is not None else None


def repl_rref(rh: Optional[ReplHelper] = None) -> Optional[RRef]:
    rrefs = repl_rrefs(rh)
    if rrefs is None:
        return None
    if len(rrefs) != 1:
        raise ReplError(f"repl_rref: expected one realization, got {len(rrefs)}: {rrefs}")
    return rrefs[0]
