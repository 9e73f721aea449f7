"""Per-derivation build locks across processes.

``fcntl.flock`` locks belong to an open file; the kernel drops them when the
process dies, so a SIGKILLed builder never blocks the next one.
"""
from __future__ import annotations

import errno
import fcntl
import os
import threading
from contextlib import contextmanager
from typing import Iterator, Set

from pylightnix.core.errors import ClosureError

_held = threading.local()


def _held_set() -> Set[str]:
    s = getattr(_held, "names", None)
    if s is None:
        s = _held.names = set()
    return s


def _open(path: str, create: bool, folder: bool) -> int:
    """A file (created if ``create``) or, with ``folder``, an existing folder, opened for its lock."""
    if folder:
        return os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0))
    return os.open(path, os.O_RDWR | (os.O_CREAT if create else 0), 0o644)


@contextmanager
def exclusive(path: str, what: str, shared: bool = False, folder: bool = False) -> Iterator[int]:
    """Hold an exclusive (or, with ``shared``, a shared) lock on ``path`` (created if
    missing; with ``folder``, an existing folder: no lock file) for the block; yields its fd.

    Taking the same lock twice in one thread would deadlock, so it is an error
    naming ``what`` instead.
    """
    held = _held_set()
    if path in held:
        raise ClosureError(f"{what} is already being built by an outer realize() in this thread; "
                           f"nested realizations cannot build the same derivation", dref=what)
    fd = _open(path, True, folder)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        held.add(path)
        try:
            yield fd
        finally:
            held.discard(path)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def try_lock(path: str, create: bool = False, folder: bool = False) -> int:
    """Take ``path``'s lock without waiting; return the fd, or -1 if another holder has it
    (or, without ``create``, if there is no such file or folder)."""
    try:
        fd = _open(path, create, folder)
    except (FileNotFoundError, NotADirectoryError):
        return -1
    except OSError as e:
        if e.errno == errno.ELOOP:  # a symlink where a folder should be: never followed
            return -1
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return -1
    return fd


def hold_forever(path: str) -> int:
    """Create and lock ``path``; the lock lives as long as the returned fd (or the process)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd
