"""How an attaching adapter finds the agent's side channel and its secret.

A process started with ``python -m pylightnix debug --listen 127.0.0.1:PORT``
listens on PORT for the side channel only (nothing there speaks DAP). It writes
``{"pid", "host", "port", "secret"}`` to an *attach file* that only the user can
read (file 0600, in a directory that must be the user's own and writable by
nobody else; it is never chmod'ed):

    $PYLIGHTNIX_DEBUG_DIR/attach-PORT.json   (default ~/.cache/pylightnix/debug)

Whoever reads attach files (``pylightnix attach``, the adapter) follows the same
rule for the directory and trusts only a regular file of the user that nobody else
can write (:func:`read_stat`): another user could plant one in a shared directory.

The attach request finds it by PORT. Alternatives in the attach configuration:
``pylightnixAttachFile`` (a path, e.g. a copy from a remote box) or
``pylightnixChannel: {"host", "port", "secret"}``. An adapter that proved the
secret then asks the program to connect its debugger out to the adapter
(see docs/security.md).
"""
from __future__ import annotations

import errno
import json
import os
import stat
import tempfile
from typing import Any, Dict, Optional, Tuple

from pylightnix import settings
from pylightnix.errors import AttachInfoError

ENV_DIR = "PYLIGHTNIX_DEBUG_DIR"
#: the largest attach file read (a hub lists its paused builds: some hundred bytes each)
MAX_SIZE = 1 << 20
#: the largest pid any Linux kernel hands out (``pid_max`` is at most 2**22)
MAX_PID = 1 << 22


def directory() -> str:
    """The folder of attach files (``$PYLIGHTNIX_DEBUG_DIR``)."""
    return settings.debug_dir()


def path_for(port: int) -> str:
    return os.path.join(directory(), f"attach-{port}.json")


def _check_private(what: str, st: os.stat_result) -> None:
    """Raise unless ``st`` belongs to this user and nobody else may write it."""
    if st.st_uid != os.getuid():
        raise AttachInfoError(
            f"{what} belongs to uid {st.st_uid}, not to you (uid {os.getuid()}); "
            f"another user could plant or swap attach files there: set {ENV_DIR} to a directory of your own")
    if st.st_mode & 0o022:
        raise AttachInfoError(
            f"{what} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"another user could plant or swap attach files there: set {ENV_DIR} to a directory "
            f"only you can write (e.g. mode 0700)")


def private_directory(create: bool = True) -> Optional[str]:
    """The attach-file directory, created 0700 if missing (``create``; else None when missing).

    The one rule for writers (``--listen``, the pause hub) and readers (``pylightnix
    attach``, the adapter): the directory must belong to this user and be writable by
    nobody else (another user could plant or swap attach files); it is never chmod'ed:
    a shared directory such as ``/tmp`` (mode 1777) is refused with
    :class:`AttachInfoError` instead."""
    d = directory()
    try:
        if create:
            os.makedirs(d, mode=0o700, exist_ok=True)
        st = os.stat(d)
    except FileNotFoundError:
        if not create:
            return None
        raise AttachInfoError(f"cannot create the attach-file directory {d}: set {ENV_DIR} "
                              f"to a directory of your own") from None
    except OSError as e:
        raise AttachInfoError(f"cannot {'create' if create else 'use'} the attach-file directory {d} "
                              f"({e.strerror}): set {ENV_DIR} to a directory of your own") from e
    if not stat.S_ISDIR(st.st_mode):
        raise AttachInfoError(f"{ENV_DIR} {d} is not a directory: set {ENV_DIR} to a directory of your own")
    _check_private(f"{ENV_DIR} {d}", st)
    return d


def write(port: int, info: Dict[str, Any]) -> str:
    """Write the attach file for ``port`` readable by the user only."""
    d = private_directory()
    assert d is not None
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".attach-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(info, f)
        os.replace(tmp, path_for(port))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path_for(port)


def remove(port: int, pid: int) -> None:
    """Remove the attach file if it is still ours."""
    p = path_for(port)
    try:
        if read(p).get("pid") == pid:
            os.unlink(p)
    except (OSError, AttachInfoError):
        pass


def _int_in(info: Dict[str, Any], key: str, lo: int, hi: int, path: str) -> None:
    v = info.get(key)
    if not (isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi):
        raise AttachInfoError(f"attach file {path}: {key} must be a number from {lo} to {hi}, not {str(v)[:40]!r}")


def read(path: str) -> Dict[str, Any]:
    """:func:`read_stat` without the file's status."""
    return read_stat(path)[0]


def read_stat(path: str) -> Tuple[Dict[str, Any], os.stat_result]:
    """Read and check an attach file. It must be a regular file of this user that nobody
    else can write, at most :data:`MAX_SIZE` bytes, and hold a sane ``port`` and
    ``secret`` (and ``pid``, if any). It is opened without following a symlink and
    without blocking (a FIFO or a device is refused, never read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise AttachInfoError(f"no attach file {path}; is the program running with --listen?") from e
    except OSError as e:
        why = "is a symbolic link" if e.errno == errno.ELOOP else f"cannot be read ({e.strerror})"
        raise AttachInfoError(f"attach file {path} {why}") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise AttachInfoError(f"attach file {path} is not a regular file")
        _check_private(f"attach file {path}", st)
        if st.st_size > MAX_SIZE:
            raise AttachInfoError(f"attach file {path} is {st.st_size} bytes, more than {MAX_SIZE}")
        data = os.read(fd, MAX_SIZE + 1)
    except OSError as e:
        raise AttachInfoError(f"attach file {path} cannot be read ({e.strerror})") from e
    finally:
        os.close(fd)
    try:
        info = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise AttachInfoError(f"attach file {path} is not valid JSON: {e}") from None
    if not isinstance(info, dict) or not all(k in info for k in ("port", "secret")):
        raise AttachInfoError(f"attach file {path} lacks port/secret")
    _int_in(info, "port", 1, 65535, path)
    if "pid" in info:
        _int_in(info, "pid", 1, MAX_PID, path)
    if not isinstance(info["secret"], str) or not info["secret"].isascii():
        raise AttachInfoError(f"attach file {path}: secret must be a string")
    info.setdefault("host", "127.0.0.1")
    if not isinstance(info["host"], str):
        raise AttachInfoError(f"attach file {path}: host must be a string")
    return info, st


def resolve(args: Dict[str, Any], debugpy_port: int) -> Dict[str, Any]:
    """Side channel ``{host, port, secret}`` for an attach request."""
    chan = args.get("pylightnixChannel")
    if isinstance(chan, dict) and "port" in chan and "secret" in chan:
        return {"host": chan.get("host", "127.0.0.1"), "port": int(chan["port"]), "secret": str(chan["secret"])}
    path = args.get("pylightnixAttachFile")
    if not path:  # the debug folder: the attacher follows the writer's rule
        private_directory(create=False)
    return read(str(path or path_for(debugpy_port)))
