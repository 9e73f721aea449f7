"""How an attaching adapter finds the agent's side channel and its secret.

A process started with ``python -m pylightnix debug --listen 127.0.0.1:PORT``
listens on PORT for the side channel only (nothing there speaks DAP). It writes
``{"pid", "host", "port", "secret"}`` to an *attach file* that only the user can
read (file 0600, in a directory that must be the user's own and writable by
nobody else; it is never chmod'ed):

    $PYLIGHTNIX_DEBUG_DIR/attach-PORT.json   (default ~/.cache/pylightnix/debug)

The attach request finds it by PORT. Alternatives in the attach configuration:
``pylightnixAttachFile`` (a path, e.g. a copy from a remote box) or
``pylightnixChannel: {"host", "port", "secret"}``. An adapter that proved the
secret then asks the program to connect its debugger out to the adapter
(see docs/security.md).
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
from typing import Any, Dict


class AttachInfoError(Exception):
    """The side channel of the process to attach to cannot be found."""


def directory() -> str:
    d = os.environ.get("PYLIGHTNIX_DEBUG_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "pylightnix", "debug")
    return d


def path_for(port: int) -> str:
    return os.path.join(directory(), f"attach-{port}.json")


def private_directory() -> str:
    """The attach-file directory, created 0700 if missing.

    An existing directory must belong to this user and be writable by nobody
    else (another user could swap the attach file); it is never chmod'ed: a
    shared directory such as ``/tmp`` (mode 1777) is refused with
    :class:`AttachInfoError` instead."""
    d = directory()
    try:
        os.makedirs(d, mode=0o700, exist_ok=True)
        st = os.stat(d)
    except OSError as e:
        raise AttachInfoError(f"cannot create the attach-file directory {d}: {e}") from e
    if not stat.S_ISDIR(st.st_mode):
        raise AttachInfoError(f"PYLIGHTNIX_DEBUG_DIR {d} is not a directory")
    if st.st_uid != os.getuid():
        raise AttachInfoError(
            f"PYLIGHTNIX_DEBUG_DIR {d} belongs to uid {st.st_uid}, not to you (uid {os.getuid()}); "
            f"the attach file holds a secret: point PYLIGHTNIX_DEBUG_DIR at a directory of your own")
    if st.st_mode & 0o022:
        raise AttachInfoError(
            f"PYLIGHTNIX_DEBUG_DIR {d} is writable by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"the attach file holds a secret: use a directory only you can write (e.g. mode 0700)")
    return d


def write(port: int, info: Dict[str, Any]) -> str:
    """Write the attach file for ``port`` readable by the user only."""
    d = private_directory()
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
        with open(p) as f:
            if json.load(f).get("pid") == pid:
                os.unlink(p)
    except (OSError, ValueError):
        pass


def read(path: str) -> Dict[str, Any]:
    try:
        with open(path) as f:
            info = json.load(f)
    except FileNotFoundError as e:
        raise AttachInfoError(f"no attach file {path}; is the program running with --listen?") from e
    except (OSError, ValueError) as e:
        raise AttachInfoError(f"cannot read attach file {path}: {e}") from e
    if not all(k in info for k in ("port", "secret")):
        raise AttachInfoError(f"attach file {path} lacks port/secret")
    info.setdefault("host", "127.0.0.1")
    return info


def resolve(args: Dict[str, Any], debugpy_port: int) -> Dict[str, Any]:
    """Side channel ``{host, port, secret}`` for an attach request."""
    chan = args.get("pylightnixChannel")
    if isinstance(chan, dict) and "port" in chan and "secret" in chan:
        return {"host": chan.get("host", "127.0.0.1"), "port": int(chan["port"]), "secret": str(chan["secret"])}
    path = args.get("pylightnixAttachFile") or path_for(debugpy_port)
    return read(str(path))
