"""Durability paid once per ``realize`` instead of once per realization.

While a realize runs, realizations are renamed into the store without fsyncs
(a rename is atomic, so a ``kill -9`` at any moment is safe as before). Before
the first one, a small journal file ``<store>/.journal/<pid>-<token>`` is made
durable; it says "realizations made after time T may not be on disk yet". When
the outermost realize ends, one ``syncfs`` makes everything durable and the
journal goes. ``realize`` returning still means: its realizations survive a
power loss.

After a power loss (or any death of the process) the journal stays. The next
realize in any process finds journals of processes that are gone, checks
every realization created after their T against its hash, removes the ones
that do not match (content lost with the page cache) and then the journal.
"""
from __future__ import annotations

import ctypes
import os
import secrets
import threading
import time
from os.path import join
from typing import Optional

from pylightnix import store as _store
from pylightnix.process import pid_alive

_lock = threading.Lock()
_depth = 0
_path: Optional[str] = None  # this process's journal, once a realization was committed


def _dir() -> str:
    return join(_store.store_root(), ".journal")


def _fsync_path(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _start() -> None:
    """Before the first commit of the outermost realize: make the journal durable."""
    global _path
    with _lock:
        if _path is not None:
            return
        d = _dir()
        os.makedirs(d, exist_ok=True)
        path = join(d, f"{os.getpid()}-{secrets.token_hex(4)}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"{time.time() - 2.0:.6f}\n")  # 2 s of slack for coarse file time stamps
            f.flush()
            os.fsync(f.fileno())
        _fsync_path(d)
        _path = path


def _syncfs(path: str) -> None:
    """Flush the filesystem holding ``path`` (Linux syncfs; elsewhere a global sync)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if getattr(libc, "syncfs", None) is None or libc.syncfs(fd) != 0:
            os.sync()
    except OSError:
        os.sync()
    finally:
        os.close(fd)


def begin() -> None:
    """A realize starts: recover from dead processes' journals (first level only), defer syncs."""
    global _depth
    if not _store.FSYNC:
        return
    with _lock:
        _depth += 1
        first = _depth == 1
        if first:
            _store._deferred = _start
    if first:
        recover()


def end() -> None:
    """A realize ends (normally or not): the outermost one syncs once and clears the journal."""
    global _depth, _path
    if not _store.FSYNC:
        return
    with _lock:
        _depth -= 1
        if _depth > 0:
            return
        _store._deferred = None
        path, _path = _path, None
    if path is not None:
        _syncfs(_store.store_root())
        os.remove(path)  # not synced: a journal that comes back after a crash only costs a check
        try:
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass  # another process's journal is there


def recover() -> int:
    """Check realizations journaled by processes that are gone; remove those whose content
    does not match their hash. Returns how many were removed."""
    d = _dir()
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return 0
    removed = 0
    for name in names:
        try:
            pid = int(name.split("-")[0])
        except ValueError:
            continue
        if pid == os.getpid() or pid_alive(pid):
            continue
        path = join(d, name)
        try:
            since = float(open(path, encoding="utf-8").read().split()[0])
        except (OSError, ValueError, IndexError):
            since = 0.0  # unreadable journal: check everything
        removed += _check_since(since)
        os.remove(path)
    try:
        os.rmdir(d)
    except OSError:
        pass
    return removed


def _check_since(since: float) -> int:
    from pylightnix.refs import unrref
    removed = 0
    for dref in _store.store_drefs():
        for rref in _store.store_rrefs_(dref):
            p = _store.rref2path(rref)
            try:
                if os.stat(p).st_ctime < since:
                    continue
                ok = os.path.exists(join(p, "context.json")) and _store.dirhash(p)[:32] == unrref(rref)[0]
            except OSError:
                ok = False
            if not ok:
                _store.store_remove([], [rref])
                removed += 1
    return removed
