"""Configs: validated JSON data whose canonical form hashes to a derivation.

A config is checked when it is made (:func:`mkconfig`), so a bad value is
reported with the key that holds it, before anything touches the store.
"""
from __future__ import annotations

import json
import math
from copy import deepcopy
from hashlib import sha256
from typing import Any, Dict, Iterator, List, Optional, Set

from pylightnix.core.errors import ConfigError
from pylightnix.core.refs import DREF_RE, NAME_RE, is_rref
from pylightnix.types import DRef, Name

#: First item of a PromisePath: a path the stage promises to produce.
PYLIGHTNIX_PROMISE_TAG = "__promise__"
#: First item of a claim: like a promise, but not checked after the build.
PYLIGHTNIX_CLAIM_TAG = "__claim__"
promise = PYLIGHTNIX_PROMISE_TAG
claim = PYLIGHTNIX_CLAIM_TAG

#: The name of a config that has no ``name`` field.
UNNAMED = "unnamed"

_JSON_TYPES = "str, int, float, bool, None, list or dict with str keys"

# Limits checked by mkconfig, far above real use, so that a config that is accepted can
# also be stored, hashed, listed and shown (docs/security.md, "Config limits").
#: lists and dicts nested deeper than this are refused (a value that contains itself hits it)
CONFIG_MAX_DEPTH = 100
#: longest derivation name: it becomes part of file names, which the OS limits to 255 bytes
CONFIG_MAX_NAME = 128
#: largest int, in bits (about 1000 decimal digits); Python refuses to print ints above 4300 digits
CONFIG_MAX_INT_BITS = 3321


class Config:
    """A derivation's parameters. ``val`` is a plain JSON dict; its ``name`` (default ``unnamed``) names the derivation."""

    __slots__ = ("val", "_canonical", "_valid", "_deps")

    def __init__(self, d: Dict[str, Any]) -> None:
        self.val: Dict[str, Any] = deepcopy(d)
        self._canonical: Optional[str] = None
        self._valid = False
        self._deps: Optional[Set[DRef]] = None

    def __repr__(self) -> str:
        return f"Config({self.val!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and config_serialize(self) == config_serialize(other)

    def __hash__(self) -> int:
        return hash(config_serialize(self))


class RConfig(Config):
    """A config whose promises are resolved to RefPaths of its own derivation."""


class ConfigAttrs:
    """Config fields as attributes: ``build_cattrs(b).learning_rate``."""

    def __init__(self, d: Dict[str, Any]) -> None:
        self.__dict__.update(d)

    def __repr__(self) -> str:
        return f"ConfigAttrs({self.__dict__!r})"


def _where(path: str) -> str:
    return path or "<root>"


def _checked_copy(v: Any, path: str, name: str, deps: Set[DRef], depth: int = 0) -> Any:
    """A copy of ``v``, collecting DRefs into ``deps``; raise ConfigError naming
    ``path`` if it is not canonical JSON data within the limits above."""
    t = type(v)
    if t is str or isinstance(v, str):
        if not v.isascii():
            _check_utf8(v, path, name)
        if v.startswith("dref:") and DREF_RE.match(v) is not None:
            deps.add(DRef(v))
        return v if t is str else str(v)  # DRef, Path, ...: plain strings in JSON
    if v is None or t is bool:
        return v
    if t is int:
        if v.bit_length() > CONFIG_MAX_INT_BITS:
            raise ConfigError(f"config of {name!r}: key {_where(path)!r}: int of {v.bit_length()} bits; configs "
                              f"hold ints of at most {CONFIG_MAX_INT_BITS} bits (about 1000 digits); store big "
                              f"numbers as strings", key=path)
        return v
    if t is float:
        if not math.isfinite(v):
            raise ConfigError(f"config of {name!r}: key {_where(path)!r}: expected a finite number, got {v!r} "
                              f"(NaN and Infinity have no JSON form)", key=path)
        return v
    if isinstance(v, (list, dict)) and depth >= CONFIG_MAX_DEPTH:
        shown = path if len(path) <= 80 else path[:40] + "..." + path[-37:]
        raise ConfigError(f"config of {name!r}: key {shown!r}: lists and dicts nested more than "
                          f"{CONFIG_MAX_DEPTH} deep (does a value contain itself?)", key=path)
    if isinstance(v, list):  # subclasses too (as in the original, which round-tripped JSON)
        return [_checked_copy(x, f"{path}[{i}]", name, deps, depth + 1) for i, x in enumerate(v)]
    if isinstance(v, dict):  # OrderedDict, ...
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise ConfigError(f"config of {name!r}: key {_where(path)!r}: dict keys must be str, got "
                                  f"{type(k).__name__} {k!r}", key=path)
            if type(k) is not str:
                k = str(k)  # Name, DRef, ...: plain strings in JSON
            sub = f"{path}.{k}" if path else k
            if not k.isascii():
                _check_utf8(k, sub, name)
            out[k] = _checked_copy(x, sub, name, deps, depth + 1)
        return out
    hint = ""
    if isinstance(v, (tuple, set, frozenset)):
        hint = " (use a list; tuples and sets do not survive a JSON round trip)"
    elif isinstance(v, (bytes, bytearray)):
        hint = " (decode it to str, or store the bytes as an artifact)"
    elif hasattr(v, "item") and hasattr(v, "dtype"):
        hint = " (convert numpy values with .item() or float()/int())"
    raise ConfigError(f"config of {name!r}: key {_where(path)!r}: expected {_JSON_TYPES}, got "
                      f"{type(v).__name__}{hint}", key=path)


def _check_utf8(s: str, path: str, name: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ConfigError(f"config of {name!r}: key {_where(path)!r}: string holds {s[e.start]!r}, a lone "
                          f"surrogate that has no UTF-8 form", key=path) from None


def check_config_dict(d: Any, deps: Optional[Set[DRef]] = None) -> Dict[str, Any]:
    """Validate a config dict and return a plain-data copy of it (DRefs found go to ``deps``)."""
    if not isinstance(d, dict):
        raise ConfigError(f"config: expected a dict, got {type(d).__name__}", key="")
    name = d.get("name", UNNAMED)  # the original's rule: a config without a name is 'unnamed'
    if not isinstance(name, str) or NAME_RE.match(name) is None:
        raise ConfigError(f"config: key 'name': expected a non-empty string of [a-zA-Z0-9_-], got {name!r}",
                          key="name")
    if len(name) > CONFIG_MAX_NAME:
        raise ConfigError(f"config: key 'name': {len(name)} characters; names are limited to {CONFIG_MAX_NAME} "
                          f"(they become file names)", key="name")
    out = _checked_copy(d, "", name, set() if deps is None else deps)
    for k, v in out.items():
        if is_rref(v):
            raise ConfigError(f"config of {name!r}: key {k!r}: holds a realization reference {v!r}; "
                              f"configs depend on derivations (dref:...), not realizations", key=k)
    return out


def mkconfig(d: Dict[str, Any]) -> Config:
    """Make a validated config from a dict, typically ``mkconfig(locals())``."""
    c = Config.__new__(Config)
    deps: Set[DRef] = set()
    c.val, c._canonical, c._valid, c._deps = check_config_dict(d, deps), None, True, deps
    return c


def config_dict(c: Config) -> Dict[str, Any]:
    """A deep copy of the config's data."""
    return deepcopy(c.val)


def config_name(c: Config) -> Name:
    """The derivation name: the config's ``name``, or ``unnamed`` if it has none."""
    return Name(c.val.get("name", UNNAMED))


def assert_valid_config(c: Config) -> Config:
    """Raise ConfigError unless ``c`` is a Config holding valid config data; return it."""
    if not isinstance(c, Config):
        raise ConfigError(f"expected a Config made by mkconfig, got {type(c).__name__}", key="")
    return validated(c)


_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(v: Any) -> str:
    """Key-sorted, whitespace-free JSON: the form that is hashed."""
    return _CANONICAL.encode(v)


def config_serialize(c: Config) -> str:
    s = c._canonical
    if s is None:
        s = c._canonical = canonical_json(c.val)
    return s


def config_hash(c: Config) -> str:
    """sha256 hex digest of the canonical config; the DRef takes its first 32 characters."""
    return sha256(config_serialize(c).encode("utf-8")).hexdigest()


def _walk(v: Any) -> Iterator[Any]:
    stack = [v]
    while stack:
        x = stack.pop()
        yield x
        if isinstance(x, dict):
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)


def config_deps(c: Config) -> Set[DRef]:
    """Derivations this config refers to, anywhere in its values."""
    if c._deps is None:
        c._deps = {DRef(x) for x in _walk(c.val) if isinstance(x, str) and DREF_RE.match(x) is not None}
    return set(c._deps)


def _is_promise(v: Any) -> bool:
    return isinstance(v, list) and len(v) > 0 and v[0] in (PYLIGHTNIX_PROMISE_TAG, PYLIGHTNIX_CLAIM_TAG)


def config_promises(c: Config) -> List[List[Any]]:
    """The PromisePaths (not claims) of a config."""
    return [x for x in _walk(c.val) if _is_promise(x) and x[0] == PYLIGHTNIX_PROMISE_TAG]


def config_substitute_promises(c: Config, dref: DRef) -> RConfig:
    """Replace promise/claim tags with ``dref`` so promises read as RefPaths."""
    def sub(v: Any) -> Any:
        if _is_promise(v):
            return [str(dref)] + [sub(x) for x in v[1:]]
        if isinstance(v, dict):
            return {k: sub(x) for k, x in v.items()}
        if isinstance(v, list):
            return [sub(x) for x in v]
        return v
    return RConfig(sub(c.val))


def validated(c: Config) -> Config:
    """``c``, checked once (configs made by mkconfig already are)."""
    if not c._valid:
        deps: Set[DRef] = set()
        c.val, c._valid, c._deps = check_config_dict(c.val, deps), True, deps
    return c


def config_cattrs(c: Config) -> ConfigAttrs:
    return ConfigAttrs(deepcopy(c.val))
