"""Matchers: choose among a derivation's realizations, or ask for a build (``None``)."""
from __future__ import annotations

from os.path import join
from typing import List, Optional, Union

from pylightnix.core.errors import MatcherError
from pylightnix.core.refs import unrref
from pylightnix.core.store import rref2path, store_buildtime, store_rrefs
from pylightnix.types import Context, DRef, Key, Matcher, RRef


def latest() -> Key:
    """Sort key: the build time stamp (newer is better)."""
    def _key(rref: RRef) -> Optional[Union[int, float, str]]:
        return store_buildtime(rref) or ""
    return _key


def best(filename: str) -> Key:
    """Sort key: the number on the first line of artifact ``filename`` (larger is better)."""
    def _key(rref: RRef) -> Optional[Union[int, float, str]]:
        try:
            with open(join(rref2path(rref), filename)) as f:
                return float(f.readline())
        except (OSError, ValueError):
            return float("-inf")
    return _key


def exact(expected: List[RRef]) -> Key:
    """Sort key that keeps only the given realizations."""
    want = set(expected)

    def _key(rref: RRef) -> Optional[Union[int, float, str]]:
        return 1 if rref in want else None
    return _key


def texthash() -> Key:
    """Sort key: the realization hash (a deterministic tie-breaker)."""
    def _key(rref: RRef) -> Optional[Union[int, float, str]]:
        return str(unrref(rref)[0])
    return _key


def match(keys: List[Key], rmin: Optional[int] = 1, rmax: Optional[int] = 1, exclusive: bool = False) -> Matcher:
    """Sort realizations by ``keys`` (best first, ``None`` drops one) and take the top ``rmax``.

    Fewer than ``rmin`` asks for a build. ``exclusive`` makes more than ``rmax`` an error.
    """
    if rmin is not None and rmax is not None and rmin > rmax:
        raise MatcherError(f"match: rmin={rmin} is larger than rmax={rmax}")
    if rmax is None and exclusive:
        raise MatcherError("match: exclusive=True needs rmax")
    allkeys = list(keys) + [texthash()]

    def _matcher(dref: DRef, context: Context) -> Optional[List[RRef]]:
        rrefs = store_rrefs(dref, context)
        if not rrefs and rmin:
            return None
        scored = []
        for r in rrefs:
            k = [key(r) for key in allkeys]
            if None not in k:
                scored.append((k, r))
        scored.sort(key=lambda t: t[0], reverse=True)
        res = [r for _, r in scored]
        if rmin is not None and len(res) < rmin:
            return None
        if rmax is not None and len(res) > rmax:
            if exclusive:
                raise MatcherError(f"{dref}: expected at most {rmax} realization(s) in this context, found "
                                   f"{len(res)}: {res}", dref=dref)
            res = res[:rmax]
        return res
    return _matcher


def match_n(n: int = 1, keys: Optional[List[Key]] = None) -> Matcher:
    """Exactly ``n`` realizations, best first by ``keys``; builds until there are ``n``."""
    return match(list(keys or []), rmin=n, rmax=n)


def match_latest(n: int = 1) -> Matcher:
    """The ``n`` most recently built realizations."""
    return match_n(n, keys=[latest()])


def match_best(filename: str, n: int = 1) -> Matcher:
    """The realization(s) with the largest number in artifact ``filename``."""
    return match_n(n, keys=[best(filename)])


def match_all() -> Matcher:
    """Every realization, including none at all (never builds)."""
    return match([], rmin=None, rmax=None)


def match_some(n: int = 1) -> Matcher:
    """All realizations, as long as there are at least ``n``."""
    return match([], rmin=n, rmax=None)


def match_only() -> Matcher:
    """The one realization; more than one is an error."""
    return match([], rmin=1, rmax=1, exclusive=True)
