"""The vocabulary types of the design document's API.

References and paths are ``str`` subclasses, so they print, compare and
serialize like the strings they are.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional, Union


class Path(str):
    """A filesystem path."""


class Hash(str):
    """A sha256 hex digest."""


class HashPart(str):
    """The first 32 hex characters of a sha256 digest."""


class Name(str):
    """A derivation name: ``[a-zA-Z0-9_-]+``."""


class DRef(str):
    """``dref:<32 hex>-<name>``: a derivation, the hash of its config."""


class RRef(str):
    """``rref:<32 hex>-<32 hex>-<name>``: one realization of a derivation."""


#: ``[dref, 'dir', 'file']``: a path inside a dependency's realization.
RefPath = List[Any]
#: ``[promise, 'dir', 'file']``: a path the stage promises to produce.
PromisePath = List[Any]
#: Maps each direct dependency to the realizations chosen for it.
Context = Dict[DRef, List[RRef]]
#: ``matcher(dref, context)`` picks realizations; ``None`` means "build".
Matcher = Callable[[DRef, Context], Optional[List[RRef]]]
#: ``realizer(dref, context[, rarg])`` builds folders that become realizations.
Realizer = Callable[..., List[Path]]
RealizeArg = Dict[str, Any]
InstantiateArg = Dict[str, Any]
Key = Callable[[RRef], Optional[Union[int, float, str]]]


class BuildArgs(NamedTuple):
    """Everything a :class:`~pylightnix.engine.build.Build` needs to start building.

    The first five fields are the original's (design document's date), in its
    order; ``iarg``/``rarg`` are 0.1.0's, ``outdir`` is this project's.
    """
    dref: DRef
    #: the config as attributes (a :class:`~pylightnix.core.config.ConfigAttrs`)
    cattrs: Any
    context: Context
    timeprefix: Optional[str]
    #: whether the build records its time in ``__buildtime__.txt``
    buildtime: bool = True
    iarg: InstantiateArg = {}
    rarg: RealizeArg = {}
    #: folder in which this build's output folders are created (owned by the engine)
    outdir: Optional[str] = None


def mkcontext() -> Context:
    """An empty Context."""
    return {}


_ELSEWHERE = {"Stage": "pylightnix", "Build": "pylightnix.engine.build", "Config": "pylightnix.core.config",
              "RConfig": "pylightnix.core.config", "ConfigAttrs": "pylightnix.core.config", "Manager": "pylightnix.engine.manager",
              "Derivation": "pylightnix.engine.manager", "Closure": "pylightnix.engine.manager"}


def __getattr__(name: str) -> Any:
    """The original's ``pylightnix.types`` also held these classes; they live in
    their own modules here (imported lazily: those modules import this one)."""
    if name in _ELSEWHERE:
        import importlib
        return getattr(importlib.import_module(_ELSEWHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Path", "Hash", "HashPart", "Name", "DRef", "RRef", "RefPath", "PromisePath", "Context", "Matcher",
           "Realizer", "RealizeArg", "InstantiateArg", "Key", "BuildArgs", "mkcontext", *_ELSEWHERE]
