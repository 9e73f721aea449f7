"""The realization engine: walks a closure in dependency order, matches cached
realizations, builds the rest, and emits :class:`~pylightnix.events.BuildPause`
objects where a frontend may step in.

The engine is a generator. It *yields* each pause and continues when resumed;
the pause's state then says what to do. Drivers decide how pauses are handled:
``realizeMany`` hands them to the registered frontend, ``repl_realize`` hands
``interrupt`` pauses to the user at the prompt. The engine never prints and
knows no protocol: progress is shown by a frontend (:mod:`pylightnix.progress`)
fed by ``on_realize_start``, ``on_progress``, ``on_built`` and ``on_realize_end``.

Cost is linear in the closure: each needed derivation is matched once from an
in-memory context of its direct dependencies; nothing is re-read from disk
except the matcher's listing of that derivation's realizations.
"""
from __future__ import annotations

import os
from typing import Any, Dict, Generator, List, Optional, Sequence, Set

from pylightnix import build as _build_mod
from pylightnix import events
from pylightnix.breakpoints import break_on_failure, match_breakpoint
from pylightnix.build import BuildSession, build_class, mkbuildargs, timestring
from pylightnix.config import config_name, config_promises
from pylightnix.errors import BuildCancelled, BuildError, ClosureError, MatcherError, PromiseError, StoreError
from pylightnix.gcpause import GCPause
from pylightnix.events import BEFORE, CANCELLED, COMMITTED, FAILURE, BuildPause
from pylightnix.manager import Closure, Derivation, derivation_stage_function
from pylightnix.refs import undref
from pylightnix.store import _rmtree, derivation_lock, store_pin, store_realize, store_remove, store_rrefs_, \
    store_tmp_area
from pylightnix.types import BuildArgs, Context, DRef, RRef, RealizeArg

Steps = Generator[BuildPause, None, List[RRef]]


class _TmpArea:
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
            _rmtree(self.path)


def _name(drv: Derivation) -> str:
    return config_name(drv.config)


def _needed(closure: Closure) -> List[Derivation]:
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


def _match(drv: Derivation, ctx: Context) -> Optional[List[RRef]]:
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

    return BuildPause(kind=kind, name=_name(drv), dref=drv.dref, config=drv.config.val, context=dict(ctx),
                      reason=reason, stage_function=derivation_stage_function(drv),
                      build_class=build_class(drv.realizer),
                      make_buildargs=make_buildargs, commit_paths=commit_paths, build=build, exception=exc,
                      breakpoint=bp, origin=drv.origin)


def _run_realizer(drv: Derivation, ctx: Context, session: BuildSession, rarg: RealizeArg) -> Steps:
    token = _build_mod._session.set(session)
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
    finally:
        _build_mod._session.reset(token)
    return _commit(drv, ctx, paths)


def _build(drv: Derivation, ctx: Context, index: int, total: int, forced: bool, interrupt: bool,
           rarg: RealizeArg, area: _TmpArea) -> Steps:
    """Build one derivation under its lock; yields pauses; returns the matched RRefs."""
    dref = drv.dref
    with derivation_lock(drv.config):  # (re)instantiates it: the folder may have been collected meanwhile
        if not (forced or interrupt):
            rrefs = _match(drv, ctx)  # another process may have built it while we waited
            if rrefs is not None:
                return rrefs
        before = set(store_rrefs_(dref))
        session = area.session(dref)
        try:
            built: Optional[List[RRef]] = None
            bp = match_breakpoint(_name(drv))
            if interrupt or bp is not None:
                pause = _pause(BEFORE, drv, ctx, session, rarg, "interrupt" if interrupt else "breakpoint", bp)
                yield pause
                if pause.state == CANCELLED:
                    raise BuildCancelled(f"build of {dref} was cancelled; nothing was stored", dref=dref)
                if pause.state == COMMITTED:
                    built = list(pause.rrefs or [])
                elif interrupt and not forced:
                    rrefs = _match(drv, ctx)  # continue without outputs: do what realize would do
                    if rrefs is not None:
                        return rrefs
            if built is None:
                events.notify("on_progress", index, total, dref, _name(drv))
                built = yield from _run_realizer(drv, ctx, session, rarg)
            rrefs = _match(drv, ctx)
            if rrefs is None and not built:
                raise BuildError(f"{dref}: the realizer {getattr(derivation_stage_function(drv), '__name__', '?')} "
                                 f"of {_name(drv)} wrote nothing to build_outpath(b): it stored no realization, "
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
    events.notify("on_built", dref, _name(drv), list(rrefs))
    return rrefs


def realize_steps(closure: Closure, force_rebuild: Set[DRef] = frozenset(),  # type: ignore[assignment]
                  interrupt: Set[DRef] = frozenset(),  # type: ignore[assignment]
                  assert_realized: Set[DRef] = frozenset(),  # type: ignore[assignment]
                  realize_args: Optional[Dict[DRef, RealizeArg]] = None) -> Steps:
    """Realize ``closure``'s target; yield a pause before each interrupt or breakpoint
    derivation that gets built, and after each failure when break-on-failure is on."""
    order = _needed(closure)
    total = len(order)
    results: Dict[DRef, List[RRef]] = {}
    rargs = realize_args or {}
    area = _TmpArea()
    pin = store_pin([d.dref for d in order])  # gc spares what this realize matches and builds
    gc_pause = GCPause()  # off while matching cached stages; on while building and while paused
    error: Optional[BaseException] = None
    events.notify("on_realize_start", closure.dref, total)
    try:
        for i, drv in enumerate(order):
            gc_pause.pause()
            forced = drv.dref in force_rebuild
            interrupt_here = drv.dref in interrupt
            ctx: Context = {d: results[d] for d in sorted(drv.deps)}
            rrefs = None if (forced or interrupt_here) else _match(drv, ctx)
            if rrefs is None:
                gc_pause.resume()
                if drv.dref in assert_realized:
                    raise StoreError(f"{drv.dref} was expected to be realized already, but it needs a build",
                                     dref=drv.dref)
                rrefs = yield from _build(drv, ctx, i, total, forced, interrupt_here,
                                          dict(rargs.get(drv.dref, {})), area)
            results[drv.dref] = rrefs
    except BaseException as e:
        error = e
        raise
    finally:
        gc_pause.resume()
        area.close()
        pin.close()
        events.notify("on_realize_end", closure.dref, total, error)
    return results[closure.dref]
