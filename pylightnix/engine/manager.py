"""Instantiation: stage functions register derivations in a Manager; the result is a Closure."""
from __future__ import annotations

import sys
import threading
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, NamedTuple, Optional, Tuple

from pylightnix.engine import events
from pylightnix.engine.build import realizer_arity, stage_function
from pylightnix.core.config import Config, config_deps, config_name, validated
from pylightnix.core.errors import ClosureError, ConfigError
from pylightnix.core.gcpause import gc_paused
from pylightnix.core.refs import is_dref
from pylightnix.core.store import remember_deps, store_instantiate
from pylightnix.types import DRef, Matcher, Realizer


class Derivation(NamedTuple):
    """A derivation in memory: its reference, how to match and how to build."""
    dref: DRef
    matcher: Matcher
    realizer: Realizer
    config: Config
    deps: FrozenSet[DRef]
    arity: int
    check_promises: bool
    #: where it was declared: (file, first line) of the stage function that called mkdrv
    origin: Optional[Tuple[str, int]] = None
    #: what a build needs on a Dask worker, e.g. ``{"GPU": 1}`` (other executors ignore it)
    resources: Optional[Dict[str, float]] = None


class Closure(NamedTuple):
    """A target derivation and every derivation known when it was instantiated, in order."""
    dref: DRef
    derivations: List[Derivation]

    @property
    def targets(self) -> List[DRef]:
        return [self.dref]


class Manager:
    """Collects derivations while stage functions run; pass it along unchanged."""

    def __init__(self) -> None:
        self.builders: Dict[DRef, Derivation] = {}


def _is_ours(module: str) -> bool:
    return module == "pylightnix" or module.startswith("pylightnix.")


def _declaring_stage() -> Optional[Tuple[str, int]]:
    """(file, def line) of the innermost caller outside pylightnix: the user's stage
    function that called ``mkdrv`` (directly or through a pylightnix helper)."""
    f: Any = sys._getframe(2)
    while f is not None and _is_ours(str(f.f_globals.get("__name__", ""))):
        f = f.f_back
    return None if f is None else (f.f_code.co_filename, f.f_code.co_firstlineno)


def mkdrv(m: Manager, config: Config, matcher: Matcher, realizer: Realizer,
          check_promises: bool = True, resources: Optional[Mapping[str, float]] = None) -> DRef:
    """Register a derivation: its config (which names it), matcher and realizer.

    ``resources`` (e.g. ``{"GPU": 1}``) become Dask worker resources, so builds
    needing one GPU never share it; other executors ignore them."""
    if not isinstance(m, Manager):
        raise ClosureError(f"mkdrv: expected a Manager as the first argument, got {type(m).__name__}; "
                           f"stage functions receive it from instantiate()")
    if not isinstance(config, Config):
        if isinstance(config, dict):
            raise ConfigError("mkdrv: expected a Config, got a dict; wrap it with mkconfig(...)", key="")
        raise ConfigError(f"mkdrv: expected a Config made by mkconfig, got {type(config).__name__}", key="")
    validated(config)
    name = config_name(config)
    if not callable(matcher):
        raise ClosureError(f"mkdrv of {name!r}: matcher: expected a callable like match_only(), got "
                           f"{type(matcher).__name__}")
    if not callable(realizer):
        raise ClosureError(f"mkdrv of {name!r}: realizer: expected a callable like build_wrapper(f), got "
                           f"{type(realizer).__name__}")
    res = _resources(name, resources)
    deps = frozenset(config_deps(config))
    for d in deps:
        if d not in m.builders:
            raise ClosureError(f"mkdrv of {name!r}: the config refers to {d}, which was not instantiated with "
                               f"this Manager; call the dependency's stage function with the same Manager")
    dref = store_instantiate(config)
    remember_deps(dref, deps)
    m.builders[dref] = Derivation(dref, matcher, realizer, config, deps, realizer_arity(realizer), check_promises,
                                 _declaring_stage(), res)
    return dref


def _resources(name: str, resources: Optional[Mapping[str, float]]) -> Optional[Dict[str, float]]:
    if resources is None:
        return None
    if not isinstance(resources, Mapping):
        raise ClosureError(f"mkdrv of {name!r}: resources: expected a mapping like {{'GPU': 1}}, got "
                           f"{type(resources).__name__}")
    for k, v in resources.items():
        if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise ClosureError(f"mkdrv of {name!r}: resources[{k!r}]: expected a non-negative number, got {v!r}")
    return dict(resources)


_instantiating = threading.local()


def instantiate_(m: Manager, stage: Callable[..., DRef], *args: Any, **kwargs: Any) -> Closure:
    """Run ``stage(m, *args, **kwargs)`` with an existing Manager."""
    if getattr(_instantiating, "active", False):
        raise ClosureError(f"instantiate({getattr(stage, '__name__', stage)}) was called from inside another "
                           f"instantiate(); call the stage function with the Manager you were given instead")
    _instantiating.active = True
    try:
        with gc_paused():
            dref = stage(m, *args, **kwargs)
    finally:
        _instantiating.active = False
    if not is_dref(dref):
        raise ClosureError(f"stage {getattr(stage, '__name__', stage)!r} returned {dref!r}; a stage function "
                           f"must return the DRef of mkdrv(...)")
    if dref not in m.builders:
        raise ClosureError(f"stage {getattr(stage, '__name__', stage)!r} returned {dref}, which was not "
                           f"registered with its Manager")
    closure = Closure(DRef(dref), list(m.builders.values()))
    if events.frontends():
        events.notify("on_instantiate", [(d.dref, config_name(d.config)) for d in closure.derivations])
    return closure


def instantiate(stage: Callable[..., DRef], *args: Any, **kwargs: Any) -> Closure:
    """Call ``stage(Manager(), *args, **kwargs)`` and return the Closure of what it registered."""
    return instantiate_(Manager(), stage, *args, **kwargs)


def derivation_stage_function(d: Derivation) -> Callable[..., Any]:
    return stage_function(d.realizer)
