"""Reference formats: ``dref:<dhash>-<name>`` and ``rref:<rhash>-<dhash>-<name>``."""
from __future__ import annotations

import re
from typing import Any, Callable, List, Optional, Tuple

from pylightnix.core.errors import RefError
from pylightnix.types import DRef, HashPart, Name, RefPath, RRef

# ``\Z``, not ``$``: ``$`` also matches before a trailing newline, so 'foo\n' would pass as a name.
NAME_RE = re.compile(r"[a-zA-Z0-9_-]+\Z")
HASHPART_RE = re.compile(r"[0-9a-f]{32}\Z")
HASH_RE = re.compile(r"[0-9a-f]{64}\Z")
DREF_RE = re.compile(r"dref:([0-9a-f]{32})-([a-zA-Z0-9_-]+)\Z")
RREF_RE = re.compile(r"rref:([0-9a-f]{32})-([0-9a-f]{32})-([a-zA-Z0-9_-]+)\Z")


def is_name(s: object) -> bool:
    return isinstance(s, str) and NAME_RE.match(s) is not None


def mkname(s: str) -> Name:
    """Validate a derivation name."""
    if not is_name(s):
        raise RefError(f"invalid name {s!r}: expected a non-empty string of [a-zA-Z0-9_-]")
    return Name(s)


def is_dref(s: object) -> bool:
    return isinstance(s, str) and s.startswith("dref:") and DREF_RE.match(s) is not None


def is_rref(s: object) -> bool:
    return isinstance(s, str) and s.startswith("rref:") and RREF_RE.match(s) is not None


#: the original's names for :func:`is_dref` and :func:`is_rref`
isdref = is_dref
isrref = is_rref


def assert_valid_name(s: object) -> None:
    """Raise RefError unless ``s`` is a valid derivation name."""
    mkname(s)  # type: ignore[arg-type]


def assert_valid_dref(ref: object) -> None:
    """Raise RefError unless ``ref`` is a whole ``dref:<32 hex>-<name>`` string."""
    undref(ref)  # type: ignore[arg-type]


def assert_valid_rref(ref: object) -> None:
    """Raise RefError unless ``ref`` is a whole ``rref:<32 hex>-<32 hex>-<name>`` string."""
    unrref(ref)  # type: ignore[arg-type]


def assert_valid_hash(h: object) -> None:
    """Raise RefError unless ``h`` is a sha256 hex digest (64 lowercase hex characters)."""
    if not isinstance(h, str) or HASH_RE.match(h) is None:
        raise RefError(f"invalid hash {h!r}: expected 64 lowercase hex characters")


def mkrefpath(r: DRef, items: Optional[List[str]] = None) -> RefPath:
    """A RefPath ``[dref, *items]``: a path inside ``r``'s realization."""
    assert_valid_dref(r)
    return [str(r)] + list(items or [])


def mkdref(dhash: str, name: str) -> DRef:
    return DRef(f"dref:{dhash}-{name}")


def mkrref(rhash: str, dhash: str, name: str) -> RRef:
    return RRef(f"rref:{rhash}-{dhash}-{name}")


def undref(r: str) -> Tuple[HashPart, Name]:
    """Split a DRef into its hash part and name."""
    m = DREF_RE.match(r) if isinstance(r, str) else None
    if m is None:
        raise RefError(f"invalid derivation reference {r!r}: expected 'dref:<32 hex>-<name>'")
    return HashPart(m.group(1)), Name(m.group(2))


def unrref(r: str) -> Tuple[HashPart, HashPart, Name]:
    """Split an RRef into realization hash, derivation hash and name."""
    m = RREF_RE.match(r) if isinstance(r, str) else None
    if m is None:
        raise RefError(f"invalid realization reference {r!r}: expected 'rref:<32 hex>-<32 hex>-<name>'")
    return HashPart(m.group(1)), HashPart(m.group(2)), Name(m.group(3))


def rref2dref(r: str) -> DRef:
    """The derivation a realization belongs to."""
    _, dhash, name = unrref(r)
    return mkdref(dhash, name)


def dref_dirname(r: str) -> str:
    """The store folder name of a derivation: ``<dhash>-<name>``."""
    dhash, name = undref(r)
    return f"{dhash}-{name}"


#: ``mutator(key, value) -> new value``, applied by :func:`traverse_dict`.
Mutator = Callable[[Any, Any], Any]


def traverse_dict(d: dict, mut: Mutator) -> None:
    """Replace, in place, every value ``v`` under key (or list index) ``k`` of
    ``d`` by ``mut(k, v)``, then descend into the result if it is a dict or a list."""
    if not isinstance(d, dict):
        raise RefError(f"traverse_dict: expected a dict, got {type(d).__name__}")
    stack: List[Any] = [d]
    while stack:
        node = stack.pop()
        for k in (list(node.keys()) if isinstance(node, dict) else range(len(node))):
            v = node[k] = mut(k, node[k])
            if isinstance(v, (dict, list)):
                stack.append(v)


def scanref_dict(d: dict) -> Tuple[List[DRef], List[RRef]]:
    """The DRefs and RRefs found anywhere in the values of ``d``."""
    drefs: List[DRef] = []
    rrefs: List[RRef] = []

    def collect(_k: Any, v: Any) -> Any:
        if is_dref(v):
            drefs.append(DRef(v))
        elif is_rref(v):
            rrefs.append(RRef(v))
        return v
    traverse_dict(d, collect)
    return drefs, rrefs
