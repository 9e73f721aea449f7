"""Drivers that run the engine to completion: ``realize``, ``realizeMany``, ``realizeSeq``."""
from __future__ import annotations

from typing import Dict, Generator, Iterable, List, Optional, Set, Tuple, Union

from pylightnix import events, journal
from pylightnix.engine import Steps, realize_steps
from pylightnix.errors import BuildCancelled, ClosureError
from pylightnix.events import BuildPause, Frontend
from pylightnix.executors import Executor, default_executor
from pylightnix.manager import Closure, Derivation
from pylightnix.types import Context, DRef, RRef, RealizeArg


def drefs_arg(closure: Closure, value: Union[bool, List[DRef], None], what: str) -> Set[DRef]:
    """``True`` means the target, a list means those derivations, ``False``/``None`` none."""
    if value is None or value is False:
        return set()
    if value is True:
        return {closure.dref}
    if isinstance(value, (list, tuple, set, frozenset)):
        return {DRef(d) for d in value}
    raise ClosureError(f"{what}: expected True, False or a list of DRefs, got {type(value).__name__}")


def drive(steps: Steps) -> List[RRef]:
    """Run the engine, handing every pause to the active frontend."""
    try:
        pause = next(steps)
        while True:
            events.dispatch_pause(pause)
            pause = steps.send(None)
    except StopIteration as e:
        return e.value


def realizeMany(closure: Closure, force_rebuild: Union[bool, List[DRef]] = False,
                assert_realized: Optional[List[DRef]] = None,
                realize_args: Optional[Dict[DRef, RealizeArg]] = None,
                executor: Optional["Executor"] = None, keep_going: bool = False,
                frontends: Optional[Iterable[Frontend]] = None) -> List[RRef]:
    """Realize the closure's target and return all the realizations its matcher picked.

    ``executor`` (default: ``PYLIGHTNIX_EXECUTOR``, else ``Sequential()``) says where
    builds run; see :mod:`pylightnix.executors`. ``keep_going`` builds everything
    that does not depend on a failed build before raising the first failure.
    ``frontends`` (default: the global ones, :func:`~pylightnix.events.add_frontend`)
    get this realization's events instead of the global ones; the last that handles
    pauses handles them (none: the terminal fallback, as with the global set).
    """
    force = drefs_arg(closure, force_rebuild, "realizeMany: force_rebuild")
    if executor is None:
        executor = default_executor()
    with events.using(frontends):
        return _realize_many(closure, force, assert_realized, realize_args, executor, keep_going)


def _realize_many(closure: Closure, force: Set[DRef], assert_realized: Optional[List[DRef]],
                  realize_args: Optional[Dict[DRef, RealizeArg]], executor: Optional["Executor"],
                  keep_going: bool) -> List[RRef]:
    journal.begin()  # durability is paid once, when the outermost realize ends
    try:
        if (executor is None or executor.local) and not keep_going:
            return drive(realize_steps(closure, force, set(), set(assert_realized or []), realize_args))
        from pylightnix.executors import Sequential
        from pylightnix.scheduler import realize_parallel
        return realize_parallel(closure, executor or Sequential(), force, set(assert_realized or []),
                                realize_args, keep_going)
    finally:
        journal.end()


def realize(closure: Closure, force_rebuild: Union[bool, List[DRef]] = False,
            assert_realized: Optional[List[DRef]] = None,
            realize_args: Optional[Dict[DRef, RealizeArg]] = None,
            executor: Optional["Executor"] = None, keep_going: bool = False,
            frontends: Optional[Iterable[Frontend]] = None) -> RRef:
    """Realize the closure's target, which must have exactly one matched realization
    (the arguments are :func:`realizeMany`'s)."""
    rrefs = realizeMany(closure, force_rebuild, assert_realized, realize_args, executor, keep_going, frontends)
    if len(rrefs) != 1:
        raise ClosureError(f"realize: {closure.dref} has {len(rrefs)} matched realizations {rrefs}; "
                           f"use realizeMany for stages with several outputs", dref=closure.dref)
    return rrefs[0]


RealizeSeqGen = Generator[Tuple[DRef, Context, Derivation, RealizeArg], Tuple[Optional[List[RRef]], bool], List[RRef]]


def realizeSeq(closure: Closure, force_interrupt: Union[bool, List[DRef]] = False,
               assert_realized: Optional[List[DRef]] = None,
               realize_args: Optional[Dict[DRef, RealizeArg]] = None) -> RealizeSeqGen:
    """The low-level stepping interface of the original design: yields
    ``(dref, context, derivation, rarg)`` before each interrupted derivation and
    receives ``(rrefs or None, abort)``. Other pauses go to the active frontend."""
    steps = realize_steps(closure, set(), drefs_arg(closure, force_interrupt, "realizeSeq: force_interrupt"),
                          set(assert_realized or []), realize_args)
    by_dref = {d.dref: d for d in closure.derivations}
    try:
        pause: BuildPause = next(steps)
        while True:
            if pause.reason == "interrupt":
                rrefs, abort = yield (DRef(pause.dref), dict(pause.context), by_dref[DRef(pause.dref)],
                                      (realize_args or {}).get(DRef(pause.dref), {}))
                if abort:
                    pause.cancel()
                elif rrefs is not None:
                    pause.adopt(rrefs)
            else:
                events.dispatch_pause(pause)
            try:
                pause = steps.send(None)
            except BuildCancelled:
                return []
    except StopIteration as e:
        return e.value
