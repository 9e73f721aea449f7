"""Which function breakpoints are build breakpoints, and whether they are verified.

The client sends one ``setFunctionBreakpoints`` list. We split it:

- a name shaped like a derivation name or a glob over such names
  (``[A-Za-z0-9_-]`` plus ``* ? [ ] !``) is a **build breakpoint**. It is
  handed to the engine in the debuggee and is *not* passed to debugpy: stage
  functions are usually called exactly like their derivation
  (``def convnn_mnist(m): ...``), and a pydevd function breakpoint of that name
  would stop at instantiation time, which nobody wants. It is reported
  unverified until a derivation it matches has been instantiated, then a
  ``breakpoint`` event marks it verified.
- any other name (``Model.fit``, ``f(x)``...) and any name written
  ``py:NAME`` go to debugpy unchanged (``py:`` stripped): ordinary Python
  function breakpoints.

Build breakpoints from launch.json's ``buildBreakpoints`` are added to the
engine's set but never shown as client breakpoints.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Dict, Iterable, List, Optional, Set

BUILD_SHAPE = re.compile(r"^[A-Za-z0-9_\-*?\[\]!]+$")
PYTHON_PREFIX = "py:"
#: our breakpoint ids live far away from debugpy's small integers
FIRST_ID = 1_000_000


def is_build_name(name: str) -> bool:
    """Whether a function breakpoint name is treated as a build breakpoint."""
    return bool(BUILD_SHAPE.match(name)) and not name.startswith(PYTHON_PREFIX)


def matches(pattern: str, name: str) -> bool:
    return pattern == name or fnmatchcase(name, pattern)


@dataclass
class BuildBreakpoint:
    id: int
    pattern: str
    condition: Optional[str] = None
    verified: bool = False

    def dap(self) -> Dict[str, Any]:
        d: Dict[str, Any] = {"id": self.id, "verified": self.verified}
        if not self.verified:
            d["message"] = (f"Build breakpoint: no derivation matching {self.pattern!r} has been "
                            f"instantiated yet")
        return d


@dataclass
class Book:
    """The client's build breakpoints, the launch ones, and the derivation names seen."""

    breakpoints: List[BuildBreakpoint] = field(default_factory=list)
    launch_patterns: List[str] = field(default_factory=list)
    known_names: Set[str] = field(default_factory=set)
    _next_id: int = FIRST_ID

    def split(self, requested: List[Dict[str, Any]]) -> tuple:
        """Replace the client's set. Returns ``(plan, python_bps)``: ``plan`` has one
        entry per requested breakpoint, a :class:`BuildBreakpoint` or the index into
        ``python_bps`` (the list to send to debugpy)."""
        old = {bp.pattern: bp for bp in self.breakpoints}
        plan: List[Any] = []
        python: List[Dict[str, Any]] = []
        new: List[BuildBreakpoint] = []
        for bp in requested:
            name = str(bp.get("name", ""))
            if is_build_name(name):
                b = old.get(name)
                if b is None:
                    self._next_id += 1
                    b = BuildBreakpoint(self._next_id, name, bp.get("condition"))
                b.verified = any(matches(name, n) for n in self.known_names)
                new.append(b)
                plan.append(b)
            else:
                spec = dict(bp)
                if name.startswith(PYTHON_PREFIX):
                    spec["name"] = name[len(PYTHON_PREFIX):]
                plan.append(len(python))
                python.append(spec)
        self.breakpoints = new
        return plan, python

    def patterns(self) -> List[str]:
        """Everything the engine should pause on."""
        out = [b.pattern for b in self.breakpoints]
        out += [p for p in self.launch_patterns if p not in out]
        return out

    def learn(self, names: Iterable[str]) -> List[BuildBreakpoint]:
        """Record instantiated derivation names; returns breakpoints that became verified."""
        self.known_names.update(names)
        changed = []
        for b in self.breakpoints:
            if not b.verified and any(matches(b.pattern, n) for n in self.known_names):
                b.verified = True
                changed.append(b)
        return changed

    def hit_ids(self, name: str) -> List[int]:
        return [b.id for b in self.breakpoints if matches(b.pattern, name)]
