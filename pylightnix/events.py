"""The engine's hook API: the seam between the realization engine and its frontends.

The engine announces what it does to *frontends* (the REPL helpers, the terminal
IPython fallback, the DAP debuggee agent). It never imports them: a frontend
registers itself with :func:`add_frontend`, or a realization is given its own set
(``realize(closure, frontends=[...])``, :func:`using`). Hooks are called with
keywords (:class:`Frontend`), synchronously, in the thread that drives the
realization (the parallel driver posts its workers' and its pause hub's events to
it); a hook that wants the user to act simply blocks until the user is done.

A :class:`BuildPause` is *the* paused build, whichever frontend shows it.
``repl_buildargs()``, ``repl_continueBuild(b)`` and ``repl_cancel()`` act on
the innermost active pause (see :func:`current_pause`).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import os
import sysconfig
import threading
import traceback
import types
from typing import Any, Callable, Dict, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Tuple

from pylightnix.errors import FrontendError, ReplError

#: kinds of pause
BEFORE = "before"    #: before building a derivation (its dependencies are realized)
FAILURE = "failure"  #: a stage's realizer raised

PENDING = "pending"
COMMITTED = "committed"
CANCELLED = "cancelled"


class BuildPause:
    """A build stopped before it ran (``kind == "before"``) or after it failed
    (``kind == "failure"``).

    Frontends read ``name``, ``dref``, ``config``, ``context`` and, for failures,
    ``build`` (the :class:`Build` the realizer was given, in-memory state
    included) and ``exception``. They resolve the pause with :meth:`commit` or
    :meth:`cancel`; leaving it pending means "do the default": run the realizer
    (before) or re-raise (failure).

    Its fields are declared (``__slots__``): nothing attaches attributes on the fly.
    """

    __slots__ = ("kind", "name", "dref", "config", "context", "reason", "breakpoint", "stage_function",
                 "build_class", "build", "exception", "origin", "state", "rrefs", "user_globals",
                 "remote_globals", "_make_buildargs", "_commit_paths")
    kind: str
    name: str
    dref: str
    config: Dict[str, Any]
    context: Dict[str, List[str]]
    reason: str
    breakpoint: Optional[str]
    stage_function: Optional[Callable[..., Any]]
    build_class: Optional[type]
    build: Any
    exception: Optional[BaseException]
    origin: Optional[Tuple[str, int]]
    state: str
    rrefs: Optional[List[str]]
    user_globals: Optional[Dict[str, Any]]
    remote_globals: Optional[Dict[str, Any]]

    def __init__(self, *, kind: str, name: str, dref: str, config: Dict[str, Any],
                 context: Dict[str, List[str]], reason: str,
                 stage_function: Optional[Callable[..., Any]],
                 make_buildargs: Callable[[], Any],
                 commit_paths: Callable[[Sequence[str]], List[str]],
                 build: Any = None, exception: Optional[BaseException] = None,
                 breakpoint: Optional[str] = None, origin: Optional[Tuple[str, int]] = None,
                 build_class: Optional[type] = None) -> None:
        self.kind = kind
        self.name = name
        self.dref = dref
        self.config = config
        self.context = context
        #: why the engine paused: "breakpoint", "interrupt" (repl_realize) or "failure"
        self.reason = reason
        #: the breakpoint pattern that matched, if any
        self.breakpoint = breakpoint
        #: the user's stage function (``f`` of ``build_wrapper(f)``) or the raw realizer
        self.stage_function = stage_function
        #: the stage's :class:`Build` subclass, if its realizer is a ``build_wrapper``'s
        self.build_class = build_class
        self.build = build
        self.exception = exception
        #: (file, line) of the stage function that declared the derivation, if known
        self.origin = origin
        self.state = PENDING
        self.rrefs = None
        #: on a worker: the driver's ``__main__`` names shipped with the build, for its console
        self.user_globals = None
        #: on a worker: the globals its console and debugger frame see (made at the first use)
        self.remote_globals = None
        self._make_buildargs = make_buildargs
        self._commit_paths = commit_paths

    # -- what the user does -------------------------------------------------
    def buildargs(self) -> Any:
        """Fresh :class:`BuildArgs` for building this derivation by hand."""
        self._check_pending("repl_buildargs")
        return self._make_buildargs()

    def commit(self, paths: Sequence[str]) -> List[str]:
        """Commit folders as realizations of this derivation, now and atomically."""
        self._check_pending("commit")
        self.rrefs = list(self._commit_paths(list(paths)))
        self.state = COMMITTED
        return self.rrefs

    def adopt(self, rrefs: Sequence[str]) -> None:
        """Resolve the pause with realizations that are already in the store."""
        self._check_pending("adopt")
        self.rrefs = list(rrefs)
        self.state = COMMITTED

    def cancel(self) -> None:
        """Abort the realization; the store is left as it was."""
        if self.state == PENDING:
            self.state = CANCELLED

    def location(self) -> Optional[Tuple[str, int]]:
        """Where the user's code is for this pause, as ``(absolute file, line)``: for a
        failure, the innermost line of user code in the exception's traceback (the line
        that raised, or the user's call into a library that raised); otherwise the
        stage function that declared the derivation. ``None`` if neither is a real file."""
        if self.kind == FAILURE and self.exception is not None:
            loc = user_traceback_line(self.exception.__traceback__)
            if loc is not None:
                return loc
        if self.origin is not None and os.path.isfile(self.origin[0]):
            return os.path.abspath(self.origin[0]), int(self.origin[1])
        return None

    @property
    def pending(self) -> bool:
        return self.state == PENDING

    def _check_pending(self, what: str) -> None:
        if self.state != PENDING:
            raise ReplError(f"{what}: the pause of {self.dref} was already {self.state}")

    def __repr__(self) -> str:
        return f"<BuildPause {self.kind} {self.name} {self.dref} {self.state}>"


def _library_dirs() -> Tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {os.path.abspath(paths[k]) for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return tuple(d + os.sep for d in dirs)


def _ours(frame: types.FrameType) -> bool:
    module = str(frame.f_globals.get("__name__", ""))
    return module == "pylightnix" or module.startswith("pylightnix.")


def user_traceback(tb: Optional[types.TracebackType]) -> Optional[types.TracebackType]:
    """``tb`` without pylightnix's own leading entries (the engine calling the realizer):
    what a user reads starts at their stage. Unchanged if nothing else is left."""
    t = tb
    while t is not None and _ours(t.tb_frame):
        t = t.tb_next
    return t if t is not None else tb


def format_folded(exc: BaseException, tb: Optional[types.TracebackType] = None) -> str:
    """``exc`` as Python prints it, from ``tb`` on (default: its own traceback), with each run
    of pylightnix's own frames (the engine between ``realize`` and the stage) folded into one
    line: what a user reads is their code. Chained exceptions are shown the same way."""
    out: List[str] = []
    _fold_into(out, exc, exc.__traceback__ if tb is None else tb, set())
    return "".join(out)


def _fold_into(out: List[str], exc: BaseException, tb: Optional[types.TracebackType], seen: set) -> None:
    seen.add(id(exc))
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        _fold_into(out, cause, cause.__traceback__, seen)
        out.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        _fold_into(out, context, context.__traceback__, seen)
        out.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if tb is not None:
        out.append("Traceback (most recent call last):\n")
    folded: List[str] = []
    frames = [frame for frame, _ in traceback.walk_tb(tb)]
    for frame, entry in zip(frames, traceback.extract_tb(tb)):
        if _ours(frame):
            folded.append(frame.f_code.co_name)
            continue
        _fold(out, folded)
        out.extend(traceback.format_list([entry]))
    _fold(out, folded)
    out.extend(traceback.format_exception_only(type(exc), exc))


def _fold(out: List[str], names: List[str]) -> None:
    if names:
        out.append(f"  [{len(names)} frame{'s' if len(names) > 1 else ''} in pylightnix: {' > '.join(names)}]\n")
        names.clear()


def user_traceback_line(tb: Optional[types.TracebackType]) -> Optional[Tuple[str, int]]:
    """``(file, line)`` of the innermost traceback entry in user code: not pylightnix's
    own modules, not the standard library or installed packages, and a real file."""
    libs = _library_dirs()
    found: Optional[Tuple[str, int]] = None
    while tb is not None:
        path = os.path.abspath(tb.tb_frame.f_code.co_filename)
        if not _ours(tb.tb_frame) and not path.startswith(libs) and os.path.isfile(path):
            found = (path, tb.tb_lineno)
        tb = tb.tb_next
    return found


class Frontend:
    """Base class for frontends; every hook is optional and does nothing here.

    Hooks are called with keywords only, and a hook takes the keywords it knows and
    ``**kw`` for the ones a later version adds (as CPython's ``bdb.Bdb.user_*`` methods
    are the documented points to override, these are: override the ones you need)::

        class Mine(Frontend):
            def on_built(self, *, dref, name, rrefs, **kw): ...

    A frontend written before hooks were keyword-only (``def on_built(self, dref, name,
    rrefs)``) keeps working: a hook whose parameters are not the documented keywords is
    called positionally in the documented order (:data:`HOOKS`), and gets the optional
    keywords (``where``, ``dref``...) only if it declares them. A hook that fits neither
    way is refused, naming it, when the frontend is registered (:class:`FrontendError`).

    A frontend with ``handles_pauses = False`` (such as the progress display) only
    observes: it sees every pause and failure before the handling frontend does,
    and must return at once without resolving it.
    """

    handles_pauses = True

    def on_realize_start(self, *, target: str, total: int, **kw: Any) -> None:
        """A realization of ``target`` starts; its closure needs ``total`` derivations."""

    def on_realize_end(self, *, target: str, total: int, error: Optional[BaseException], **kw: Any) -> None:
        """The realization of ``target`` ended; ``error`` is what it raised, or None."""

    def on_instantiate(self, *, derivations: List[Tuple[str, str]], **kw: Any) -> None:
        """A closure was instantiated: ``[(dref, name), ...]`` in build order."""

    def on_pause(self, *, pause: BuildPause, **kw: Any) -> None:
        """The engine is about to build ``pause.dref``. Block while the user works."""

    def on_failure(self, *, pause: BuildPause, **kw: Any) -> None:
        """A realizer raised ``pause.exception``. Commit ``pause.build`` or let it raise."""

    def on_built(self, *, dref: str, name: str, rrefs: List[str], **kw: Any) -> None:
        """``dref`` was built (not matched from cache); ``rrefs`` are the matched results."""

    def on_progress(self, *, index: int, total: int, dref: str, name: str, where: str = "driver",
                    **kw: Any) -> None:
        """The engine starts building derivation ``index`` of ``total`` to build, ``where``:
        "driver" (this process), "process pool", or the address of the Dask worker it
        started on (e.g. "tcp://10.0.0.7:40211")."""

    def on_remote_pause(self, *, remote: Any, **kw: Any) -> None:
        """A build paused on a worker (:class:`pylightnix.remote.RemotePause`: ``id``, ``name``,
        ``dref``, ``kind``, ``where``, ``pid``). It waits there until someone attaches
        (``pylightnix attach ID``, a VS Code child session) and resumes it. The pause-handling
        frontend may block here (the terminal attaches in place); the others must return."""

    def on_remote_resumed(self, *, remote: Any, **kw: Any) -> None:
        """The build paused on a worker goes on; ``remote.state`` is "continued",
        "committed" or "cancelled"."""

    def on_notice(self, *, text: str, dref: Optional[str] = None, name: Optional[str] = None, **kw: Any) -> None:
        """Something the user must hear of that is not an error: a build that asked to pause
        is built elsewhere than asked (in the driver, not on its worker) and ``text`` says
        why. Never silent: the progress display prints it even with progress off."""

    def on_remote_detached(self, *, remote: Any, **kw: Any) -> None:
        """The connection of the attacher of a build paused on a worker dropped (it was
        killed, an SSH session was lost) before it let the build go on. The build stays
        paused for ``remote.reattach_timeout`` seconds, waiting for a new attach
        (``pylightnix attach remote.id``), then it is cancelled."""


#: every hook and its keywords in the order a positional (pre-keyword) hook takes them;
#: the keywords after them (``where``, ``dref``, ``name`` of on_notice) are optional
HOOKS: Dict[str, Tuple[str, ...]] = {
    "on_realize_start": ("target", "total"),
    "on_realize_end": ("target", "total", "error"),
    "on_instantiate": ("derivations",),
    "on_pause": ("pause",),
    "on_failure": ("pause",),
    "on_built": ("dref", "name", "rrefs"),
    "on_progress": ("index", "total", "dref", "name"),
    "on_remote_pause": ("remote",),
    "on_remote_resumed": ("remote",),
    "on_notice": ("text",),
    "on_remote_detached": ("remote",),
}
_OPTIONAL: Dict[str, Tuple[str, ...]] = {"on_progress": ("where",), "on_notice": ("dref", "name")}


_frontends: List[Frontend] = []
#: the frontends of the realization running in this context (``realize(frontends=...)``), or None
_scoped: "contextvars.ContextVar[Optional[List[Frontend]]]" = contextvars.ContextVar(
    "pylightnix_frontends", default=None)
_default_factory: Optional[Callable[[], Frontend]] = None
_pauses: List[BuildPause] = []
_lock = threading.RLock()


def _current() -> List[Frontend]:
    scoped = _scoped.get()
    return _frontends if scoped is None else scoped


def add_frontend(f: Frontend) -> Frontend:
    """Register ``f`` globally (for every realize not given its own ``frontends=``); the most
    recently added frontend handles pauses. FrontendError if one of its hooks cannot be called."""
    check_frontend(f)
    with _lock:
        _frontends.append(f)
    return f


def remove_frontend(f: Frontend) -> None:
    with _lock:
        if f in _frontends:
            _frontends.remove(f)


def frontends() -> List[Frontend]:
    """The frontends events go to here: the realization's own set, else the global one."""
    with _lock:
        return list(_current())


@contextlib.contextmanager
def using(chosen: Optional[Iterable[Frontend]]) -> Iterator[None]:
    """Within this block, in this thread (context) only, events go to ``chosen`` instead of
    the global frontends; ``None`` changes nothing. ``realize(..., frontends=...)`` uses it."""
    if chosen is None:
        yield
        return
    own = list(chosen)
    for f in own:
        check_frontend(f)
    token = _scoped.set(own)
    try:
        yield
    finally:
        _scoped.reset(token)


def drop_frontends() -> None:
    """Forget every global frontend and the terminal fallback: for a process that realizes
    nothing (the debug adapter), where importing pylightnix registered the progress display."""
    global _default_factory
    with _lock:
        _frontends.clear()
        _default_factory = None


def set_default_frontend(factory: Optional[Callable[[], Frontend]]) -> None:
    """Frontend used for pauses when none is registered (the terminal fallback)."""
    global _default_factory
    _default_factory = factory


def current_pause() -> Optional[BuildPause]:
    """The innermost pause being handled by a frontend right now, if any."""
    with _lock:
        return _pauses[-1] if _pauses else None


def pause_handler() -> Optional[Frontend]:
    """The frontend that handles pauses here: the last one that does, else the terminal
    fallback (made now), else None (a process with no fallback, such as the debug adapter)."""
    with _lock:
        for f in reversed(_current()):
            if getattr(f, "handles_pauses", True):
                return f
    if _default_factory is not None:
        f = _default_factory()
        with _lock:
            _current().append(f)
        return f
    return None


# ---------------------------------------------------------------- calling hooks

#: how a hook is called: (by keyword, takes every keyword (``**kw``), the keywords it names)
_Plan = Tuple[bool, bool, FrozenSet[str]]


def _plan_of(sig: inspect.Signature, event: str) -> Optional[_Plan]:
    params = sig.parameters.values()
    any_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    named = frozenset(p.name for p in params if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                            inspect.Parameter.KEYWORD_ONLY))
    required = HOOKS[event]
    for by_keyword in (True, False):  # else written before hooks were keyword-only: in order
        try:
            sig.bind(**dict.fromkeys(required)) if by_keyword else sig.bind(*required)
            return (by_keyword, any_kw, named)
        except TypeError:
            pass
    return None


@functools.lru_cache(maxsize=None)
def _method_plan(func: Callable[..., Any], event: str) -> Optional[_Plan]:
    sig = inspect.signature(func)
    return _plan_of(sig.replace(parameters=list(sig.parameters.values())[1:]), event)  # without self


def _plan(f: Any, event: str, hook: Callable[..., Any]) -> _Plan:
    func = getattr(hook, "__func__", None)
    try:
        plan = _method_plan(func, event) if func is not None else _plan_of(inspect.signature(hook), event)
    except (TypeError, ValueError):  # no signature (a builtin): the documented arguments in order
        plan = (False, False, frozenset())
    if plan is None:
        keywords = ", ".join(HOOKS[event] + _OPTIONAL.get(event, ()))
        raise FrontendError(f"{type(f).__name__}.{event}{inspect.signature(hook)}: cannot take the hook's "
                            f"arguments; write it as def {event}(self, *, {keywords}, **kw) (or, the old way, "
                            f"with {len(HOOKS[event])} positional parameters: {', '.join(HOOKS[event])})")
    return plan


def check_frontend(f: Any) -> None:
    """FrontendError naming the hook if one of ``f``'s hooks cannot be called."""
    for event in HOOKS:
        hook = getattr(f, event, None)
        if callable(hook):
            _plan(f, event, hook)


def _call(f: Any, event: str, values: Dict[str, Any]) -> None:
    """Call ``f``'s hook for ``event`` with ``values``: by keyword, or positionally if it was
    written before hooks were keyword-only; optional keywords only if it takes them."""
    hook = getattr(f, event, None)
    if hook is None:
        return
    by_keyword, any_kw, named = _plan(f, event, hook)
    required = HOOKS[event]
    extra = {k: v for k, v in values.items() if k not in required and (any_kw or k in named)}
    if by_keyword:
        hook(**{k: values[k] for k in required}, **extra)
    else:
        hook(*(values[k] for k in required), **extra)


def dispatch_pause(pause: BuildPause) -> None:
    """Hand a pause to the active frontend and wait until it returns."""
    event = "on_failure" if pause.kind == FAILURE else "on_pause"
    for f in frontends():
        if not getattr(f, "handles_pauses", True):
            _call(f, event, {"pause": pause})
    handler = pause_handler()
    if handler is None:
        return
    with active(pause):
        _call(handler, event, {"pause": pause})


@contextlib.contextmanager
def active(pause: BuildPause) -> Iterator[None]:
    """``pause`` is the one ``repl_buildargs()``, ``repl_continueBuild`` and ``repl_cancel``
    act on while this block runs (a frontend serving it, a worker's console)."""
    with _lock:
        _pauses.append(pause)
    try:
        yield
    finally:
        with _lock:
            _pauses.remove(pause)


def remote_pauses_served() -> bool:
    """Whether the pause-handling frontend serves pauses on workers (has its own
    ``on_remote_pause``). Frontends written before they existed do not: builds that
    may pause are then built in the driver, where their ``on_pause`` sees them."""
    handler = pause_handler()
    return handler is not None and getattr(type(handler), "on_remote_pause", None) not in (
        None, Frontend.on_remote_pause)


def remote_service() -> Optional[str]:
    """The service (``console``, ``debug``) the pause-handling frontend attaches to builds
    paused on workers with (its ``remote_service`` attribute), so that workers prepare it."""
    return getattr(pause_handler(), "remote_service", None)


def dispatch_remote_pause(remote: Any) -> None:
    """Tell every frontend that a build paused on a worker; the pause-handling frontend
    last, and it may block (the terminal attaches in place)."""
    handler = pause_handler()
    for f in frontends():
        if f is not handler:
            _call(f, "on_remote_pause", {"remote": remote})
    if handler is not None:
        _call(handler, "on_remote_pause", {"remote": remote})


def notify(event: str, *args: Any, **values: Any) -> None:
    """Call the hook ``event`` (one of :data:`HOOKS`) on every frontend that has it, with
    keywords: ``args`` are the hook's documented arguments in order, ``values`` its
    keywords. Optional keywords (``on_progress``'s ``where``) go only to hooks that take
    them, so frontends written before a keyword existed keep working."""
    values.update(zip(HOOKS[event], args))
    for f in frontends():
        _call(f, event, values)
