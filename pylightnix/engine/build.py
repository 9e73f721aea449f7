"""The ``Build`` helper: a one-argument way to write realizers.

``build_wrapper(f)`` turns ``f(b: Build) -> None`` into a realizer. The engine
gives every build a private temporary folder (a *build session*); output
folders are created inside it, so a failed or cancelled build is cleaned up by
removing one folder.
"""
from __future__ import annotations

import contextlib
import contextvars
import inspect
import os
import tempfile
from datetime import datetime, timezone
from os.path import join
from typing import Any, Callable, Iterator, List, Optional, TypeVar

from pylightnix.core.config import RConfig, config_cattrs, config_name
from pylightnix.core.errors import BuildError
from pylightnix.core.refs import undref
from pylightnix.core.store import rref2path, store_config, store_config_, tmp_root
from pylightnix.types import BuildArgs, Context, DRef, Name, Path, RefPath, RRef, RealizeArg, Realizer


class BuildSession:
    """What the engine knows about the build in progress: its folder and Build object."""

    def __init__(self, dref: DRef, outdir: str) -> None:
        self.dref = dref
        self.outdir = outdir
        self.build: Optional["Build"] = None


_session: contextvars.ContextVar[Optional[BuildSession]] = contextvars.ContextVar("pylightnix_build", default=None)


@contextlib.contextmanager
def building(session: BuildSession) -> Iterator[None]:
    """Make ``session`` the engine's current build session while the block runs (the
    realizer's ``build_outpath`` finds its output folder through it)."""
    token = _session.set(session)
    try:
        yield
    finally:
        _session.reset(token)


def _session_of(dref: DRef) -> Optional[BuildSession]:
    """The engine's session if it is building ``dref`` right now."""
    s = _session.get()
    return s if s is not None and s.dref == dref else None


#: The format of build times (``__buildtime__.txt``, output folder prefixes): the original's.
PYLIGHTNIX_TIME = "%y%m%d-%H:%M:%S:%f%z"


def timestring(sec: Optional[float] = None) -> str:
    """A sortable UTC time stamp with microseconds: now, or ``sec`` seconds after the Epoch."""
    dt = datetime.now(timezone.utc) if sec is None else datetime.fromtimestamp(sec, tz=timezone.utc)
    return dt.strftime(PYLIGHTNIX_TIME)


def parsetime(time: str) -> Optional[float]:
    """Seconds since the Epoch of a :func:`timestring`; None if ``time`` is not one."""
    try:
        return datetime.strptime(time, PYLIGHTNIX_TIME).timestamp()
    except (ValueError, OverflowError, TypeError):
        return None


class Build:
    """Tracks one realization in progress. Subclass it to keep state (a model,
    the data) between the functions of a stage; subclasses keep the
    ``__init__(self, ba: BuildArgs)`` signature."""

    def __init__(self, ba: BuildArgs) -> None:
        self.dref: DRef = ba.dref
        self.context: Context = ba.context
        self.timeprefix: Optional[str] = ba.timeprefix
        self.buildtime: bool = ba.buildtime
        self.iarg = ba.iarg
        self.rarg = ba.rarg
        self.outpaths: List[Path] = []
        self.cattrs_cache: Optional[Any] = ba.cattrs
        self._outdir: Optional[str] = getattr(ba, "outdir", None)

    @property
    def cattrs(self) -> Any:
        """The config as attributes: the same object as ``build_cattrs(b)``."""
        return build_cattrs(self)

    @cattrs.setter
    def cattrs(self, value: Any) -> None:
        self.cattrs_cache = value

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.dref} outpaths={self.outpaths}>"


def mkbuildargs(dref: DRef, context: Context, timeprefix: Optional[str] = None,
                iarg: Optional[dict] = None, rarg: Optional[RealizeArg] = None,
                outdir: Optional[str] = None) -> BuildArgs:
    """BuildArgs for building ``dref`` in ``context`` (the original's argument order)."""
    if outdir is None:
        s = _session_of(dref)
        if s is not None:
            outdir = s.outdir
    return BuildArgs(dref, config_cattrs(store_config(dref)), dict(context), timeprefix, timeprefix is not None,
                     iarg or {}, rarg or {}, outdir)


def mkbuild(dref: DRef, context: Context, buildtime: bool = True) -> Build:
    """A plain Build for ``dref`` (for raw realizers)."""
    b = Build(mkbuildargs(dref, context, timestring() if buildtime else None))
    s = _session_of(dref)
    if s is not None:
        s.build = b  # the engine keeps it alive for failure hooks
    return b


B = TypeVar("B", bound=Build)


def build_wrapper_(f: Callable[[B], None], ctr: Callable[[BuildArgs], B], buildtime: bool = True) -> Realizer:
    """A realizer that makes a ``ctr(buildargs)`` object and runs ``f`` on it."""
    def _realizer(dref: DRef, context: Context, rarg: Optional[RealizeArg] = None) -> List[Path]:
        b = ctr(mkbuildargs(dref, context, timestring() if buildtime else None, {}, rarg or {}))
        s = _session_of(dref)
        if s is not None:
            s.build = b  # the engine keeps it alive for failure hooks
        f(b)
        return list(b.outpaths)
    _realizer.__pylightnix_stage_function__ = f  # type: ignore[attr-defined]
    _realizer.__pylightnix_build_class__ = ctr  # type: ignore[attr-defined]
    _realizer.__name__ = getattr(f, "__name__", "realizer")
    return _realizer


def build_wrapper(f: Callable[[Build], None], buildtime: bool = True) -> Realizer:
    """A realizer for ``f(b: Build) -> None``."""
    return build_wrapper_(f, Build, buildtime)


def stage_function(realizer: Callable[..., Any]) -> Callable[..., Any]:
    """The user's function behind a realizer (``f`` of ``build_wrapper(f)``)."""
    return getattr(realizer, "__pylightnix_stage_function__", realizer)


def build_class(realizer: Callable[..., Any]) -> Optional[type]:
    """The :class:`Build` subclass a realizer builds with (``C`` of ``build_wrapper_(f, C)``),
    if it is one: what a pause's banner tells the user to build by hand with."""
    c = getattr(realizer, "__pylightnix_build_class__", None)
    return c if isinstance(c, type) and issubclass(c, Build) else None


def build_config(b: Build) -> RConfig:
    """The config of the derivation being built, promises resolved."""
    return store_config(b.dref)


def build_context(b: Build) -> Context:
    return b.context


def build_cattrs(b: Build) -> Any:
    """The config as attributes, cached on ``b`` (so a stage may also keep notes there)."""
    if b.cattrs_cache is None:
        b.cattrs_cache = config_cattrs(build_config(b))
    return b.cattrs_cache


def build_name(b: Build) -> Name:
    return config_name(store_config_(b.dref))


def build_setoutpaths(b: Build, nouts: int) -> List[Path]:
    """Create ``nouts`` empty output folders (each becomes one realization)."""
    if not isinstance(nouts, int) or nouts <= 0:
        raise BuildError(f"build of {b.dref}: nouts: expected a positive int, got {nouts!r}", dref=b.dref)
    if b.outpaths:
        raise BuildError(f"build of {b.dref}: output folders were already created: {b.outpaths}", dref=b.dref)
    outdir = b._outdir if getattr(b, "_outdir", None) and os.path.isdir(b._outdir) else tmp_root()  # type: ignore[arg-type]
    prefix = f"{b.timeprefix or 'notime'}_{undref(b.dref)[0][:8]}_"
    paths = [Path(tempfile.mkdtemp(prefix=prefix, dir=outdir)) for _ in range(nouts)]
    if b.timeprefix is not None:
        for p in paths:
            with open(join(p, "__buildtime__.txt"), "w") as f:
                f.write(b.timeprefix)
    b.outpaths = paths
    return paths


def build_outpaths(b: Build, nouts: Optional[int] = None) -> List[Path]:
    """The output folders; with ``nouts``, create that many if none exist yet."""
    if not b.outpaths:
        if nouts is None:
            raise BuildError(f"build of {b.dref}: no output folders yet; call build_outpath(b) or "
                             f"build_outpaths(b, nouts=N) first", dref=b.dref)
        build_setoutpaths(b, nouts)
    return b.outpaths


def build_outpath(b: Build) -> Path:
    """The single output folder of this build, created on first use."""
    if not b.outpaths:
        return build_setoutpaths(b, 1)[0]
    if len(b.outpaths) != 1:
        raise BuildError(f"build of {b.dref}: has {len(b.outpaths)} output folders; use build_outpaths(b)",
                         dref=b.dref)
    return b.outpaths[0]


def build_deref_(b: Build, dref: DRef) -> List[RRef]:
    if dref not in b.context:
        raise BuildError(f"build of {b.dref}: {dref} is not a dependency (it must appear in the config)",
                         dref=b.dref)
    return list(b.context[dref])


def build_deref(b: Build, dref: DRef) -> RRef:
    """The one realization of dependency ``dref`` this build uses."""
    rrefs = build_deref_(b, dref)
    if len(rrefs) != 1:
        raise BuildError(f"build of {b.dref}: dependency {dref} has {len(rrefs)} realizations; "
                         f"use build_deref_ or build_paths", dref=b.dref)
    return rrefs[0]


def build_paths(b: Build, refpath: RefPath) -> List[Path]:
    """System paths of a RefPath: in this build's outputs (a promise) or in a dependency."""
    if not isinstance(refpath, list) or not refpath or not isinstance(refpath[0], str):
        raise BuildError(f"build of {b.dref}: expected a RefPath [dref, 'dir', 'file'], got {refpath!r}",
                         dref=b.dref)
    if refpath[0] == b.dref:
        return [Path(join(p, *refpath[1:])) for p in build_outpaths(b)]
    return [Path(join(rref2path(r), *refpath[1:])) for r in build_deref_(b, DRef(refpath[0]))]


def build_path(b: Build, refpath: RefPath) -> Path:
    """The system path of a RefPath that resolves to exactly one place."""
    paths = build_paths(b, refpath)
    if len(paths) != 1:
        raise BuildError(f"build of {b.dref}: {refpath!r} resolves to {len(paths)} paths", dref=b.dref)
    return paths[0]


def realizer_arity(realizer: Callable[..., Any]) -> int:
    """2 for ``realizer(dref, context)``, 3 for ``realizer(dref, context, rarg)``."""
    code = getattr(realizer, "__code__", None)
    if code is not None and inspect.isfunction(realizer):
        return 3 if code.co_argcount >= 3 or code.co_flags & inspect.CO_VARARGS else 2
    try:
        params = list(inspect.signature(realizer).parameters.values())
    except (TypeError, ValueError):
        return 3
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 3
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return 3 if len(positional) >= 3 else 2
