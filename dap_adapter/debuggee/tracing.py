"""Untraced mode: the debuggee runs at full speed while only build breakpoints are set.

On Python < 3.12 pydevd traces every line through ``sys.settrace``, which makes
CPU-bound stages about 3x slower. Build breakpoints do not need that: the
engine itself calls the agent before a build. So after the program starts, if
pydevd has no line breakpoints, no function breakpoints and no exception filter
that needs tracing ("raised", "userUnhandled"), the realizing thread stops
being traced. Tracing comes back:

- in the realizing thread, for the duration of a build pause (the stop is a
  pydevd function breakpoint, which needs the trace function), and after it if
  the user stepped;
- in all threads, for the rest of the session, as soon as the user sets a line
  breakpoint, a Python function breakpoint or such an exception filter (pydevd
  announces every change through ``on_breakpoints_changed``; we hook it), presses
  Pause, or a build pause happens while the program has other threads (they
  must stop too).

Threads the program starts are traced by pydevd as usual; only the thread that
runs the program from the start is untraced.

Everything here touches pydevd internals, which is why it is one small module.
"""
from __future__ import annotations

import sys
import threading
from typing import Any, Optional

_lock = threading.Lock()
_untraced = False
_hooked = False
_sessions = 0  # debug sessions pydevd has had in this process (see new_session)


def pydevd_debugger() -> Any:
    """pydevd's global debugger, or None when debugpy is not running in this process."""
    if "pydevd" not in sys.modules:
        return None
    try:
        from pydevd import get_global_debugger
    except ImportError:
        return None
    return get_global_debugger()


def needs_tracing(py_db: Any) -> bool:
    """Whether pydevd has anything set that only a trace function can catch."""
    return bool(any(getattr(py_db, "breakpoints", {}).values())
                or getattr(py_db, "function_breakpoint_name_to_breakpoint", None)
                or getattr(py_db, "break_on_caught_exceptions", None)
                or getattr(py_db, "break_on_user_uncaught_exceptions", None)
                or getattr(py_db, "has_plugin_line_breaks", False)
                or getattr(py_db, "has_plugin_exception_breaks", False))


def is_untraced() -> bool:
    return _untraced


def _hook(py_db: Any) -> None:
    global _hooked
    if _hooked:
        return
    original = py_db.on_breakpoints_changed

    def on_breakpoints_changed(removed: bool = False) -> None:
        original(removed)
        global _untraced
        with _lock:
            if _untraced and needs_tracing(py_db):
                _untraced = False
                py_db.enable_tracing(py_db.trace_dispatch, apply_to_all_threads=True)

    py_db.on_breakpoints_changed = on_breakpoints_changed
    _hooked = True


def trace_all() -> None:
    """Leave untraced mode now, in every thread (e.g. the user pressed Pause)."""
    global _untraced
    py_db = pydevd_debugger()
    if py_db is None:
        return
    with _lock:
        if _untraced:
            _untraced = False
            py_db.enable_tracing(py_db.trace_dispatch, apply_to_all_threads=True)


def go_untraced() -> bool:
    """Stop tracing the current thread if nothing needs it; returns whether it did."""
    global _untraced
    py_db = pydevd_debugger()
    if py_db is None or sys.version_info >= (3, 12):
        # 3.12+: pydevd uses sys.monitoring, whose cost is already small (about 1.05x)
        return False
    _hook(py_db)
    with _lock:
        if needs_tracing(py_db):
            return False
        py_db.disable_tracing()
        _untraced = True
    return True


def new_session() -> None:
    """Call after pydevd connected for another session in this process (a worker serves one
    per paused build). pydevd caches each code object's breakpoints in a module-level dict,
    valid while ``PyDB.mtime`` matches; a new session's PyDB counts from 0 again, so a stage
    function seen in an earlier session could keep that session's breakpoints (a line
    breakpoint in it never stopped, on 3.14). Start this session's count past them."""
    global _sessions
    py_db = pydevd_debugger()
    if py_db is None:
        return
    with _lock:
        _sessions += 1
        py_db.mtime = getattr(py_db, "mtime", 0) + 100_000 * _sessions


def report_uncaught(excinfo: Any) -> None:
    """Let pydevd apply the client's uncaught-exception filters to ``excinfo``."""
    try:
        import debugpy
        debugpy.trigger_exception_handler(excinfo, as_uncaught=True)
    except Exception:
        pass


def _other_program_threads() -> bool:
    me = threading.current_thread()
    return any(t is not me and t.is_alive() and not getattr(t, "is_pydev_daemon_thread", False)
               and not getattr(t, "pydev_do_not_trace", False) for t in threading.enumerate())


def enter_pause() -> None:
    """Trace the current thread so pydevd can stop in the pause frame. If the program
    has other threads, trace them all from now on, so that they stop too."""
    py_db = pydevd_debugger()
    if py_db is None:
        return
    if _untraced and _other_program_threads():
        trace_all()
    py_db.enable_tracing()


def _thread_info() -> Optional[Any]:
    try:
        from _pydevd_bundle.pydevd_additional_thread_info import set_additional_thread_info
    except ImportError:
        return None
    return set_additional_thread_info(threading.current_thread())


def leave_pause() -> None:
    """After a pause: back to untraced unless the user is stepping or set breakpoints."""
    py_db = pydevd_debugger()
    if py_db is None or not _untraced:
        return
    info = _thread_info()
    if info is not None and getattr(info, "pydev_step_cmd", -1) != -1:
        return
    with _lock:
        if _untraced and not needs_tracing(py_db):
            py_db.disable_tracing()


def step_into(my_code: bool = False) -> None:
    """Make pydevd stop at the next line in this thread (Step Into): of the user's
    code with justMyCode or ``my_code``, else of any code. Stop on entry passes
    ``my_code`` (as pydevd's own stop on entry does): with justMyCode off a plain
    step would stop in runpy, before the program's first line."""
    py_db = pydevd_debugger()
    info = _thread_info()
    if py_db is None or info is None:
        return
    from _pydevd_bundle.pydevd_comm_constants import CMD_STEP_INTO, CMD_STEP_INTO_MY_CODE
    from _pydevd_bundle.pydevd_constants import STATE_RUN
    cmd = CMD_STEP_INTO_MY_CODE if my_code or py_db.get_use_libraries_filter() else CMD_STEP_INTO
    info.pydev_original_step_cmd = cmd
    info.pydev_step_cmd = cmd
    info.pydev_step_stop = None
    info.pydev_state = STATE_RUN
    if hasattr(info, "update_stepping_info"):
        info.update_stepping_info()
    py_db.enable_tracing()
    _monitor_stepping()


def _monitor_stepping() -> None:
    """3.12+: pydevd runs on ``sys.monitoring``, whose line and call events are only
    switched on while pydevd knows of a breakpoint or a suspended/stepping thread.
    A step armed while no thread is suspended (stop on entry) must switch them on
    itself, as pydevd's own ``stop_on_entry`` does; otherwise the thread never stops."""
    try:
        from _pydevd_bundle.pydevd_constants import PYDEVD_USE_SYS_MONITORING
    except ImportError:
        return
    if PYDEVD_USE_SYS_MONITORING:
        from _pydevd_sys_monitoring import pydevd_sys_monitoring
        pydevd_sys_monitoring.update_monitor_events(suspend_requested=True)
        pydevd_sys_monitoring.restart_events()


class transient_function_breakpoint:
    """Context manager: a pydevd function breakpoint on ``co_name`` while inside.

    The breakpoint exists only while the agent enters the pause frame, so a user
    function that happens to share the derivation's name never stops."""

    def __init__(self, co_name: str) -> None:
        self.co_name = co_name
        self._added = False

    def __enter__(self) -> "transient_function_breakpoint":
        py_db = pydevd_debugger()
        if py_db is None:
            return self
        from _pydevd_bundle.pydevd_breakpoints import FunctionBreakpoint
        current = dict(py_db.function_breakpoint_name_to_breakpoint)
        if self.co_name not in current:
            current[self.co_name] = FunctionBreakpoint(None, self.co_name, None, None, "ALL")
            self._added = True
            with _lock:  # no re-tracing of all threads for our own breakpoint
                py_db.function_breakpoint_name_to_breakpoint = current
                py_db._clear_caches() if hasattr(py_db, "_clear_caches") else None
                py_db.mtime += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        py_db = pydevd_debugger()
        if py_db is None or not self._added:
            return
        current = dict(py_db.function_breakpoint_name_to_breakpoint)
        current.pop(self.co_name, None)
        py_db.function_breakpoint_name_to_breakpoint = current
        py_db.mtime += 1
