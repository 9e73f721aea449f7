"""The realization engine: walks a closure in dependency order, matches cached
realizations, builds the rest, and emits :class:`~pylightnix.engine.events.BuildPause`
objects where a frontend may step in.

The engine is a generator. It *yields* each pause and continues when resumed;
the pause's state then says what to do. Drivers decide how pauses are handled:
``realizeMany`` hands them to the registered frontend, ``repl_realize`` hands
``interrupt`` pauses to the user at the prompt. The engine never prints and
knows no protocol: progress is shown by a frontend (:mod:`pylightnix.frontends.progress`)
fed by ``on_realize_start``, ``on_progress``, ``on_built`` and ``on_realize_end``.

The public calls here are what both drivers use: :func:`needed`, :func:`match`,
:func:`build_one`, the :func:`realization` context manager (gc pin, temporary
folder, start and end events) and :func:`drive`, which runs the steps and hands
each pause to a handler. The sequential driver is :func:`realize_steps`; the
parallel one (:mod:`pylightnix.scale.driver`) builds with the same calls.

Cost is linear in the closure: each needed derivation is matched once from an
in-memory context of its direct dependencies; nothing is re-read from disk
except the matcher's listing of that derivation's realizations.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Dict, Generator, Iterator, List, Optional, Sequence, Set, Union, overload

from pylightnix.engine import events
from pylightnix.engine.breakpoints import break_on_failure, match_breakpoint
from pylightnix.engine.build import BuildSession, build_class, building, mkbuildargs, timestring
from pylightnix.core.config import config_name, config_promises
from pylightnix.core.errors import BuildCancelled, BuildError, ClosureError, MatcherError, PromiseError, StoreError
from pylightnix.core.gcpause import GCPause
from pylightnix.engine.events import BEFORE, CANCELLED, COMMITTED, FAILURE, BuildPause
from pylightnix.engine.manager import Closure, Derivation, derivation_stage_function
from pylightnix.core.refs import undref
from pylightnix.core.store import (rmtree, derivation_lock, store_pin, store_realize, store_remove, store_rrefs_,
                                   store_tmp_area)
from pylightnix.types import BuildArgs, Context, DRef, RRef, RealizeArg

Steps = Generator[BuildPause, None, List[RRef]]


class TmpArea:
    """One realization's temporary folder, made on first use and locked so gc
    can tell it is alive. Every build of the realization creates its output
    folders inside; whatever is left when the realization ends (a failure, a
    cancel) goes with the folder."""

    def __init__(self) -> None:
        self.path = ""
        self._fd = -1

    def session(self, dref: DRef) -> BuildSession:
        if not self.path:
            self.path, self._fd = store_tmp_area(f"{timestring()}_{undref(dref)[0][:8]}_")
        return BuildSession(dref, self.path)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            rmtree(self.path)


def stage_name(drv: Derivation) -> str:
    """The derivation's name, as events and breakpoints know it."""
    return config_name(drv.config)


def needed(closure: Closure) -> List[Derivation]:
    """The target's derivations in build order (instantiation order is topological)."""
    if not isinstance(closure, Closure):
        raise ClosureError(f"expected a Closure from instantiate(...), got {type(closure).__name__}")
    by_dref = {d.dref: d for d in closure.derivations}
    needed: Set[DRef] = set()
    stack = [closure.dref]
    while stack:
        d = stack.pop()
        if d in needed:
            continue
        drv = by_dref.get(d)
        if drv is None:
            raise ClosureError(f"{d} is needed by the closure of {closure.dref} but has no derivation in it",
                               dref=d)
        needed.add(d)
        stack.extend(drv.deps)
    return [d for d in closure.derivations if d.dref in needed]


def _check_promises(drv: Derivation, paths: Sequence[str]) -> None:
    if not drv.check_promises:
        return
    for p in config_promises(drv.config):
        for o in paths:
            target = os.path.join(o, *[str(x) for x in p[1:]])
            if not os.path.lexists(target):
                raise PromiseError(f"{drv.dref}: promised output {'/'.join(map(str, p[1:]))!r} was not "
                                   f"produced in {o}", dref=drv.dref)


def _commit(drv: Derivation, ctx: Context, paths: Sequence[str]) -> List[RRef]:
    if isinstance(paths, (str, bytes)) or not all(isinstance(p, str) for p in paths):
        raise BuildError(f"{drv.dref}: the realizer must return a list of folder paths, got {paths!r}",
                         dref=drv.dref)
    _check_promises(drv, paths)
    return [store_realize(drv.dref, ctx, p) for p in paths]


def match(drv: Derivation, ctx: Context) -> Optional[List[RRef]]:
    """The realizations ``drv``'s matcher picks in the context ``ctx``, or None: it needs a build."""
    rrefs = drv.matcher(drv.dref, ctx)
    if rrefs is not None and not isinstance(rrefs, list):
        raise MatcherError(f"{drv.dref}: the matcher returned {type(rrefs).__name__}; expected a list of RRefs "
                           f"or None", dref=drv.dref)
    return rrefs


def _pause(kind: str, drv: Derivation, ctx: Context, session: BuildSession, rarg: RealizeArg, reason: str,
           bp: Optional[str] = None, build: Any = None, exc: Optional[BaseException] = None) -> BuildPause:
    def make_buildargs() -> BuildArgs:
        return mkbuildargs(drv.dref, ctx, timestring(), {}, dict(rarg), session.outdir)

    def commit_paths(paths: Sequence[str]) -> List[str]:
        return list(_commit(drv, ctx, paths))

    return BuildPause(kind=kind, name=stage_name(drv), dref=drv.dref, config=drv.config.val, context=dict(ctx),
                      reason=reason, stage_function=derivation_stage_function(drv),
                      build_class=build_class(drv.realizer),
                      make_buildargs=make_buildargs, commit_paths=commit_paths, build=build, exception=exc,
                      breakpoint=bp, origin=drv.origin)


def _run_realizer(drv: Derivation, ctx: Context, session: BuildSession, rarg: RealizeArg) -> Steps:
    with building(session):
        try:
            paths = drv.realizer(drv.dref, dict(ctx), rarg) if drv.arity == 3 else drv.realizer(drv.dref, dict(ctx))
        except Exception as e:
            if not break_on_failure():
                raise
            pause = _pause(FAILURE, drv, ctx, session, rarg, "failure", build=session.build, exc=e)
            yield pause
            if pause.state == COMMITTED:
                return list(pause.rrefs or [])
            if pause.state == CANCELLED:
                raise BuildCancelled(f"build of {drv.dref} was cancelled after it failed", dref=drv.dref) from e
            raise
    return _commit(drv, ctx, paths)


def build_one(drv: Derivation, ctx: Context, index: int, total: int, forced: bool, interrupt: bool,
              rarg: RealizeArg, area: TmpArea) -> Steps:
    """Build one derivation under its lock, in ``area``; yields pauses; returns the matched RRefs.
    ``index``/``total`` are for the progress event; ``forced`` builds even if a match exists;
    ``interrupt`` pauses before the build."""
    dref = drv.dref
    with derivation_lock(drv.config):  # (re)instantiates it: the folder may have been collected meanwhile
        if not (forced or interrupt):
            rrefs = match(drv, ctx)  # another process may have built it while we waited
            if rrefs is not None:
                return rrefs
        before = set(store_rrefs_(dref))
        session = area.session(dref)
        try:
            built: Optional[List[RRef]] = None
            bp = match_breakpoint(stage_name(drv))
            if interrupt or bp is not None:
                pause = _pause(BEFORE, drv, ctx, session, rarg, "interrupt" if interrupt else "breakpoint", bp)
                yield pause
                if pause.state == CANCELLED:
                    raise BuildCancelled(f"build of {dref} was cancelled; nothing was stored", dref=dref)
                if pause.state == COMMITTED:
                    built = list(pause.rrefs or [])
                elif interrupt and not forced:
                    rrefs = match(drv, ctx)  # continue without outputs: do what realize would do
                    if rrefs is not None:
                        return rrefs
            if built is None:
                events.notify("on_progress", index, total, dref, stage_name(drv))
                built = yield from _run_realizer(drv, ctx, session, rarg)
            rrefs = match(drv, ctx)
            if rrefs is None and not built:
                raise BuildError(f"{dref}: the realizer {getattr(derivation_stage_function(drv), '__name__', '?')} "
                                 f"of {stage_name(drv)} wrote nothing to build_outpath(b): it stored no realization, "
                                 f"and the matcher still asks for one. Write the stage's files into the folder "
                                 f"build_outpath(b) returns (a raw realizer returns its output folders)",
                                 dref=dref)
            if rrefs is None:
                raise MatcherError(f"{dref}: the matcher still asks for a build after the realizer produced "
                                   f"{len(built)} realization(s) {built}; the matcher and the realizer disagree",
                                   dref=dref)
        except BaseException:
            store_remove([], [r for r in store_rrefs_(dref) if r not in before])
            raise
    events.notify("on_built", dref, stage_name(drv), list(rrefs))
    return rrefs


def drefs_arg(closure: Closure, value: Union[bool, List[DRef], None], what: str) -> Set[DRef]:
    """``True`` means the target, a list means those derivations, ``False``/``None`` none."""
    if value is None or value is False:
        return set()
    if value is True:
        return {closure.dref}
    if isinstance(value, (list, tuple, set, frozenset)):
        return {DRef(d) for d in value}
    raise ClosureError(f"{what}: expected True, False or a list of DRefs, got {type(value).__name__}")


def is_interrupt(pause: BuildPause) -> bool:
    """Whether ``pause`` is one the caller asked for (``force_interrupt``), handled at its prompt."""
    return pause.reason == "interrupt"


class Realization:
    """One realize of a closure, set up by :func:`realization`: the derivations it
    needs in build order, the results so far, and the temporary folder its builds share."""

    def __init__(self, closure: Closure, assert_realized: Set[DRef]) -> None:
        self.closure = closure
        self.order = needed(closure)
        self.total = len(self.order)
        self.results: Dict[DRef, List[RRef]] = {}
        self.area = TmpArea()
        self.assert_realized = assert_realized

    def context(self, drv: Derivation) -> Context:
        """``drv``'s context: the results of its direct dependencies (all realized by now)."""
        return {d: self.results[d] for d in sorted(drv.deps)}

    def must_build(self, drv: Derivation) -> None:
        """Say ``drv`` is about to be built: a StoreError if it was asserted realized."""
        if drv.dref in self.assert_realized:
            raise StoreError(f"{drv.dref} was expected to be realized already, but it needs a build", dref=drv.dref)

    def target(self) -> List[RRef]:
        return self.results[self.closure.dref]


@contextlib.contextmanager
def realization(closure: Closure, assert_realized: Set[DRef] = frozenset()  # type: ignore[assignment]
                ) -> Iterator[Realization]:
    """Set up one realize of ``closure``: pin its derivations against gc, tell the
    frontends it starts, and at the end (however it ends) drop the temporary folder,
    unpin and tell them it ended, with the error if any."""
    r = Realization(closure, assert_realized)
    pin = store_pin([d.dref for d in r.order])  # gc spares what this realize matches and builds
    error: Optional[BaseException] = None
    events.notify("on_realize_start", closure.dref, r.total)
    try:
        yield r
    except BaseException as e:
        error = e
        raise
    finally:
        r.area.close()
        pin.close()
        events.notify("on_realize_end", closure.dref, r.total, error)


def ignore(pause: BuildPause) -> None:
    """A pause handler that lets every pause do its default (build, or raise)."""


@overload
def drive(steps: Steps, on_pause: Callable[[BuildPause], None]) -> List[RRef]: ...


@overload
def drive(steps: Steps, on_pause: Callable[[BuildPause], None],
          stop: Callable[[BuildPause], bool]) -> Union[List[RRef], BuildPause]: ...


def drive(steps: Steps, on_pause: Callable[[BuildPause], None],
          stop: Optional[Callable[[BuildPause], bool]] = None) -> Union[List[RRef], BuildPause]:
    """Run the engine's ``steps``: hand each pause to ``on_pause``, resume, and return
    the RRefs the engine returns. A pause ``stop`` picks is returned instead, not
    handled, with the engine suspended at it: ``drive`` again resumes it."""
    try:
        while True:
            pause = steps.send(None)  # also starts a fresh generator
            if stop is not None and stop(pause):
                return pause
            on_pause(pause)
    except StopIteration as e:
        return e.value


def realize_steps(closure: Closure, force_rebuild: Set[DRef] = frozenset(),  # type: ignore[assignment]
                  interrupt: Set[DRef] = frozenset(),  # type: ignore[assignment]
                  assert_realized: Set[DRef] = frozenset(),  # type: ignore[assignment]
                  realize_args: Optional[Dict[DRef, RealizeArg]] = None) -> Steps:
    """Realize ``closure``'s target; yield a pause before each interrupt or breakpoint
    derivation that gets built, and after each failure when break-on-failure is on."""
    rargs = realize_args or {}
    with realization(closure, assert_realized) as r:
        gc_pause = GCPause()  # off while matching cached stages; on while building and while paused
        try:
            for i, drv in enumerate(r.order):
                gc_pause.pause()
                forced = drv.dref in force_rebuild
                interrupt_here = drv.dref in interrupt
                ctx = r.context(drv)
                rrefs = None if (forced or interrupt_here) else match(drv, ctx)
                if rrefs is None:
                    gc_pause.resume()
                    r.must_build(drv)
                    rrefs = yield from build_one(drv, ctx, i, r.total, forced, interrupt_here,
                                                 dict(rargs.get(drv.dref, {})), r.area)
                r.results[drv.dref] = rrefs
        finally:
            gc_pause.resume()
        return r.target()
