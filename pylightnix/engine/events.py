"""The engine's hook API: the seam between the realization engine and its frontends.

The engine announces what it does to *frontends* (the REPL helpers, the terminal
IPython fallback, the DAP debuggee agent). It never imports them: a frontend
registers itself with :func:`add_frontend`. All hooks are called synchronously in
the thread that runs the realization; a hook that wants the user to act simply
blocks until the user is done.

A :class:`BuildPause` is *the* paused build, whichever frontend shows it.
``repl_buildargs()``, ``repl_continueBuild(b)`` and ``repl_cancel()`` act on
the innermost active pause (see :func:`current_pause`).
"""
from __future__ import annotations

import contextlib
import inspect
import os
import sysconfig
import threading
import traceback
import types
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from pylightnix.core.errors import ReplError

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
    """

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
        self.rrefs: Optional[List[str]] = None
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

    A frontend with ``handles_pauses = False`` (such as the progress display) only
    observes: it sees every pause and failure before the handling frontend does,
    and must return at once without resolving it.
    """

    handles_pauses = True

    def on_realize_start(self, target: str, total: int) -> None:
        """A realization of ``target`` starts; its closure needs ``total`` derivations."""

    def on_realize_end(self, target: str, total: int, error: Optional[BaseException]) -> None:
        """The realization of ``target`` ended; ``error`` is what it raised, or None."""

    def on_instantiate(self, derivations: List[Tuple[str, str]]) -> None:
        """A closure was instantiated: ``[(dref, name), ...]`` in build order."""

    def on_pause(self, pause: BuildPause) -> None:
        """The engine is about to build ``pause.dref``. Block while the user works."""

    def on_failure(self, pause: BuildPause) -> None:
        """A realizer raised ``pause.exception``. Commit ``pause.build`` or let it raise."""

    def on_built(self, dref: str, name: str, rrefs: List[str]) -> None:
        """``dref`` was built (not matched from cache); ``rrefs`` are the matched results."""

    def on_progress(self, index: int, total: int, dref: str, name: str, where: str = "driver") -> None:
        """The engine starts building derivation ``index`` of ``total`` to build, ``where``:
        "driver" (this process), "process pool", or the address of the Dask worker it
        started on (e.g. "tcp://10.0.0.7:40211"). Overrides may leave ``where`` out."""

    def on_remote_pause(self, remote: Any) -> None:
        """A build paused on a worker (:class:`pylightnix.scale.hub.RemotePause`: ``id``, ``name``,
        ``dref``, ``kind``, ``where``, ``pid``). It waits there until someone attaches
        (``pylightnix attach ID``, a VS Code child session) and resumes it. The pause-handling
        frontend may block here (the terminal attaches in place); the others must return."""

    def on_remote_resumed(self, remote: Any) -> None:
        """The build paused on a worker goes on; ``remote.state`` is "continued",
        "committed" or "cancelled"."""

    def on_notice(self, text: str, *, dref: Optional[str] = None, name: Optional[str] = None) -> None:
        """Something the user must hear of that is not an error: a build that asked to pause
        is built elsewhere than asked (in the driver, not on its worker) and ``text`` says
        why. Never silent: the progress display prints it even with progress off."""

    def on_remote_detached(self, remote: Any) -> None:
        """The connection of the attacher of a build paused on a worker dropped (it was
        killed, an SSH session was lost) before it let the build go on. The build stays
        paused for ``remote.reattach_timeout`` seconds, waiting for a new attach
        (``pylightnix attach remote.id``), then it is cancelled."""


_frontends: List[Frontend] = []
_default_factory: Optional[Callable[[], Frontend]] = None
_pauses: List[BuildPause] = []
_lock = threading.RLock()


def add_frontend(f: Frontend) -> Frontend:
    """Register ``f``; the most recently added frontend handles pauses."""
    with _lock:
        _frontends.append(f)
    return f


def remove_frontend(f: Frontend) -> None:
    with _lock:
        if f in _frontends:
            _frontends.remove(f)


def frontends() -> List[Frontend]:
    with _lock:
        return list(_frontends)


def set_default_frontend(factory: Optional[Callable[[], Frontend]]) -> None:
    """Frontend used for pauses when none is registered (the terminal fallback)."""
    global _default_factory
    _default_factory = factory


def current_pause() -> Optional[BuildPause]:
    """The innermost pause being handled by a frontend right now, if any."""
    with _lock:
        return _pauses[-1] if _pauses else None


def _pause_handler() -> Optional[Frontend]:
    with _lock:
        for f in reversed(_frontends):
            if f.handles_pauses:
                return f
    if _default_factory is not None:
        f = _default_factory()
        add_frontend(f)
        return f
    return None


def dispatch_pause(pause: BuildPause) -> None:
    """Hand a pause to the active frontend and wait until it returns."""
    for f in frontends():
        if not f.handles_pauses:
            (f.on_failure if pause.kind == FAILURE else f.on_pause)(pause)
    handler = _pause_handler()
    if handler is None:
        return
    with active(pause):
        if pause.kind == FAILURE:
            handler.on_failure(pause)
        else:
            handler.on_pause(pause)


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
    handler = _pause_handler()
    return handler is not None and getattr(type(handler), "on_remote_pause", None) not in (
        None, Frontend.on_remote_pause)


def remote_service() -> Optional[str]:
    """The service (``console``, ``debug``) the pause-handling frontend attaches to builds
    paused on workers with (its ``remote_service`` attribute), so that workers prepare it."""
    return getattr(_pause_handler(), "remote_service", None)


def dispatch_remote_pause(remote: Any) -> None:
    """Tell every frontend that a build paused on a worker; the pause-handling frontend
    last, and it may block (the terminal attaches in place)."""
    handler = _pause_handler()
    for f in frontends():
        if f is not handler:
            hook = getattr(f, "on_remote_pause", None)
            if hook is not None:
                hook(remote)
    hook = getattr(handler, "on_remote_pause", None)
    if hook is not None:
        hook(remote)


def notify(event: str, *args: Any, **optional: Any) -> None:
    """Call ``event`` (``on_instantiate``, ``on_realize_start``, ``on_progress``, ``on_built``,
    ``on_realize_end``, ``on_remote_resumed``, ``on_remote_detached``, ``on_notice``) on every frontend
    that has it. ``optional``
    keywords (``on_progress``'s ``where``) go only to hooks that declare them, so frontends
    written before a keyword existed keep working."""
    for f in frontends():
        hook = getattr(f, event, None)
        if hook is None:
            continue
        if optional:
            hook(*args, **_declared(hook, optional))
        else:
            hook(*args)


def _declared(hook: Callable[..., Any], optional: Dict[str, Any]) -> Dict[str, Any]:
    """The keywords of ``optional`` that ``hook`` accepts."""
    try:
        params = inspect.signature(hook).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return optional
    return {k: v for k, v in optional.items() if k in params}
