"""Build breakpoints: which derivation names make the engine pause.

A build breakpoint is a derivation name or a glob (``fnmatch`` syntax, e.g.
``convnn_*``). The initial set comes from the ``PYLIGHTNIX_BREAK`` environment
variable (comma-separated); ``PYLIGHTNIX_BREAK_ON_FAILURE=1`` turns on pausing
when a stage's realizer raises. Frontends (terminal, DAP) change the set at run
time through the functions below.
"""
from __future__ import annotations

import contextlib
import contextvars
import threading
from fnmatch import fnmatchcase
from typing import Iterable, Iterator, List, Optional, Tuple

from pylightnix import settings

_lock = threading.Lock()
#: None until first used: then ``PYLIGHTNIX_BREAK`` / ``PYLIGHTNIX_BREAK_ON_FAILURE`` (read then, not at import)
_patterns: Optional[List[str]] = None
_break_on_failure: Optional[bool] = None
#: (patterns, break_on_failure) for the current context only: a build on a worker
#: pauses by the driver's breakpoints without changing the worker's own
_override: "contextvars.ContextVar[Optional[Tuple[List[str], bool]]]" = contextvars.ContextVar(
    "pylightnix_breakpoints", default=None)


def _current() -> List[str]:
    """The process's patterns (call under ``_lock``); the first call reads both variables, so
    a bad value fails at the first build, not only at the first failure."""
    global _patterns, _break_on_failure
    if _break_on_failure is None:
        _break_on_failure = settings.break_on_failure()
    if _patterns is None:
        _patterns = settings.break_patterns()
    return _patterns


def set_build_breakpoints(patterns: Iterable[str]) -> None:
    """Replace the set of build breakpoints (names or globs)."""
    global _patterns
    new = [str(p) for p in patterns]
    with _lock:
        _patterns = new


def add_build_breakpoint(pattern: str) -> None:
    """Add one build breakpoint (a name or a glob)."""
    with _lock:
        if pattern not in _current():
            _current().append(pattern)


def build_breakpoints() -> List[str]:
    """The current build breakpoints."""
    with _lock:
        return list(_current())


def match_breakpoint(name: str) -> Optional[str]:
    """The first breakpoint pattern that matches derivation ``name``, or None."""
    over = _override.get()
    with _lock:
        pats = list(_current()) if over is None else over[0]
    for p in pats:
        if p == name or fnmatchcase(name, p):
            return p
    return None


def set_break_on_failure(enabled: bool) -> None:
    """Pause (instead of raising at once) when a stage's realizer fails."""
    global _break_on_failure
    _break_on_failure = bool(enabled)


def break_on_failure() -> bool:
    """Whether a failing realizer pauses before its exception propagates."""
    over = _override.get()
    if over is not None:
        return over[1]
    with _lock:
        _current()
    return bool(_break_on_failure)


@contextlib.contextmanager
def overridden(patterns: Iterable[str], on_failure: bool) -> Iterator[None]:
    """Within this block, in this thread only, use these breakpoints instead of the
    process's (a worker building for a driver uses the driver's)."""
    token = _override.set(([str(p) for p in patterns], bool(on_failure)))
    try:
        yield
    finally:
        _override.reset(token)
