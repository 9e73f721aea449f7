"""Durability paid once per ``realize`` instead of once per realization.

While a realize runs, realizations are renamed into the store without fsyncs
(a rename is atomic, so a ``kill -9`` at any moment is safe as before). Before
the first one, a small journal entry ``<store>/.journal/<pid>-<token>`` is made
durable; it says "realizations made after time T may not be on disk yet". When
the outermost realize ends, one ``syncfs`` makes everything durable and the
entry goes. ``realize`` returning still means: its realizations survive a
power loss.

Its writer holds an ``flock`` on the entry for as long as it lives; the kernel (or
the NFS server) drops it when the process dies, however it dies. That lock, never
the pid in the name, tells a live writer from a dead one: another host or pid
namespace sharing the store sees the same lock. The next realize anywhere takes the
lock of every entry it can (without waiting), checks every realization created after
that entry's T against its hash, removes the ones that do not match (content lost
with the page cache) and then the entry. Recoveries, and the creation of entries,
take turns on ``.locks/journal.lock``, so each dead entry is recovered exactly once
and a realize starts matching only after the recovery it waited for.

``.journal`` is opened without following a link, and entries are opened relative
to it: a link planted there is an error, never followed out of the store. Anything
in it that is not a small regular file named like an entry is skipped and reported
(logger ``pylightnix.core.journal``).
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import logging
import math
import os
import re
import secrets
import stat
import threading
import time
from os.path import join
from typing import Optional, Tuple

from pylightnix.core import locks, settings
from pylightnix.core import store as _store
from pylightnix.core.errors import StoreError

log = logging.getLogger("pylightnix.core.journal")  # the name users filter on (docs), kept from before core/

#: an entry's name: ``<pid>-<token>``; the pid is for people reading the folder, nothing decides by it
ENTRY_RE = re.compile(r"[0-9]{1,19}-[0-9a-f]{8}\Z")
#: largest entry read (one line with a time stamp); anything bigger is not an entry
ENTRY_MAX_BYTES = 4096

_lock = threading.Lock()
_depth = 0
_entry: Optional[Tuple[str, int]] = None  # this process's entry (name, fd holding its lock), once started
_deferring: Optional[_store.Store] = None  # the store whose syncs the outermost realize defers


def _dir_path() -> str:
    return join(_store.store_root(), ".journal")


def _turns() -> str:
    return join(_store.store_root(), ".locks", "journal.lock")


def _open_dir(create: bool) -> int:
    """The journal folder opened without following a link; -1 if there is none and not ``create``."""
    path = _dir_path()
    if create:
        try:
            os.mkdir(path, 0o755)  # never follows a link: a planted one is EEXIST, and refused below
        except FileExistsError:
            pass
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        if create:
            raise
        return -1
    except OSError as e:
        if e.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        what = f"a symlink to {os.readlink(path)!r}" if os.path.islink(path) else "not a folder"
        raise StoreError(f"the store's journal {path} is {what}; expected a folder of the store. It was left as it "
                         f"is and nothing it points to was touched (no link is followed out of the store); remove "
                         f"it and realize again") from None


def _start() -> None:
    """Before the first commit of the outermost realize: make the journal entry durable, locked."""
    global _entry
    with _lock:
        if _entry is not None:
            return
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        with locks.exclusive(_turns(), "the store's journal"):  # a recovery never sees it unlocked
            dfd = _open_dir(create=True)
            try:
                fd = os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644,
                             dir_fd=dfd)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # held while this process lives: that is what "alive" means
                    os.write(fd, f"{time.time() - 2.0:.6f}\n".encode())  # 2 s of slack for coarse time stamps
                    os.fsync(fd)
                    os.fsync(dfd)
                except BaseException:
                    os.unlink(name, dir_fd=dfd)
                    os.close(fd)
                    raise
            finally:
                os.close(dfd)
        _entry = (name, fd)


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
    global _depth, _deferring
    if not settings.fsync():
        return
    with _lock:
        _depth += 1
        first = _depth == 1
        if first:
            _deferring = _store.current_store()
            _deferring.defer_syncs(_start)
    if first:
        try:
            recover()
        except BaseException:
            end()  # realize calls end() only once begin() returned
            raise


def end() -> None:
    """A realize ends (normally or not): the outermost one syncs once and clears its entry."""
    global _depth, _entry, _deferring
    with _lock:
        if _depth == 0:  # begin() deferred nothing (PYLIGHTNIX_FSYNC was off)
            return
        _depth -= 1
        if _depth > 0:
            return
        if _deferring is not None:
            _deferring.defer_syncs(None)  # the store it deferred, even if another is current now
            _deferring = None
        entry, _entry = _entry, None
    if entry is None:
        return
    name, fd = entry
    try:
        _syncfs(_store.store_root())
        dfd = _open_dir(create=False)
        if dfd >= 0:
            try:
                os.unlink(name, dir_fd=dfd)  # not synced: an entry that comes back after a crash only costs a check
            except FileNotFoundError:
                pass
            finally:
                os.close(dfd)
    finally:
        os.close(fd)  # after the unlink: no one ever finds this entry unlocked
    turn = locks.try_lock(_turns())
    if turn >= 0:  # nobody is creating an entry in the folder right now (else that one, or the recovery
        # that holds the turn, removes the folder once it is empty)
        try:
            _remove_if_empty()
        finally:
            os.close(turn)


def _remove_if_empty() -> None:
    """Remove the journal folder if no entry is left in it (call holding the turn)."""
    try:
        os.rmdir(_dir_path())
    except OSError:
        pass  # entries of other writers are there


def _claim(dfd: int, name: str) -> Optional[Tuple[int, float]]:
    """Lock the entry ``name`` of a dead writer: its fd and start time; None if its writer lives,
    it is gone, or it is not an entry (reported)."""
    path = join(_dir_path(), name)
    try:
        st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if not ENTRY_RE.match(name) or not stat.S_ISREG(st.st_mode) or st.st_size > ENTRY_MAX_BYTES:
        why = ("it is a symlink" if stat.S_ISLNK(st.st_mode) else "it is a folder" if stat.S_ISDIR(st.st_mode)
               else "it is not a regular file" if not stat.S_ISREG(st.st_mode)
               else "its name is not <pid>-<8 hex digits>" if not ENTRY_RE.match(name)
               else f"it holds {st.st_size} bytes (an entry is one short line)")
        log.warning("pylightnix: skipping %s in the store's journal: %s; remove it if nothing of yours put it "
                    "there", path, why)
        return None
    try:
        fd = os.open(name, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dfd)
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("pylightnix: skipping %s in the store's journal: cannot open it (%s)", path, e.strerror)
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None  # its writer lives: here, in another container or on another host
    st = os.fstat(fd)
    if st.st_nlink == 0 or not stat.S_ISREG(st.st_mode) or st.st_size > ENTRY_MAX_BYTES:
        os.close(fd)
        return None  # its writer ended meanwhile (or it was replaced)
    try:
        since = float(os.read(fd, 64).split()[0])
    except (ValueError, IndexError):
        since = 0.0
    if not math.isfinite(since):
        since = 0.0  # torn by a crash: check everything
    return fd, since


def recover() -> int:
    """Check realizations journaled by processes that are gone; remove those whose content
    does not match their hash. Returns how many were removed."""
    dfd = _open_dir(create=False)
    if dfd < 0:
        return 0
    removed = 0
    try:
        try:
            turn = os.open(_turns(), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                return 0  # a store we cannot write to: its entries wait for someone who can
            raise
        try:
            fcntl.flock(turn, fcntl.LOCK_EX)  # one recovery at a time; entries are made between them
            for name in sorted(os.listdir(dfd)):
                claimed = _claim(dfd, name)
                if claimed is None:
                    continue
                fd, since = claimed
                try:
                    removed += _check_since(since)
                    os.unlink(name, dir_fd=dfd)
                finally:
                    os.close(fd)
            _remove_if_empty()  # a writer that ended while we held the turn left the folder to us (see end())
        finally:
            os.close(turn)
    finally:
        os.close(dfd)
    return removed


def _check_since(since: float) -> int:
    from pylightnix.core.refs import unrref
    removed = 0
    for dref in _store.store_drefs():
        for rref in _store.store_rrefs_(dref):
            p = _store.rref2path(rref)
            try:
                if os.stat(p).st_ctime < since:
                    continue
                ok = os.path.exists(join(p, "context.json")) and _store.dirhash(p)[:32] == unrref(rref)[0]
            except FileNotFoundError:
                continue  # removed meanwhile (gc)
            except OSError:
                ok = False
            if not ok:
                _store.store_remove([], [rref])
                removed += 1
    return removed
