"""Other processes and threads of this program: whether a process lives, and how to
stop code running in another thread."""
from __future__ import annotations

import ctypes
import os


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts): the owner of a
    temporary folder, an attach file."""
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def raise_in_thread(ident: int, exc_type: type) -> bool:
    """Make ``exc_type`` raise in thread ``ident`` at its next Python instruction (the
    only way to stop arbitrary code running in another thread; a thread blocked in C,
    e.g. in ``time.sleep``, raises when that call returns). Returns whether that thread exists.

    One that is no longer wanted must be let land (:func:`let_land`), never
    withdrawn with ``PyThreadState_SetAsyncExc(ident, NULL)``: on Python 3.11 that leaves
    the interpreter's async-exception flag set for good, and a thread that then starts
    tracing (importing pydevd does) spins at its next call forever."""
    return ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(exc_type)) == 1


def let_land() -> None:
    """In the thread that :func:`raise_in_thread` targeted: raise its exception here if it is still
    pending (the eval loop checks at each jump back). Call inside ``try``/``except`` of that type."""
    for _ in range(100):
        pass
