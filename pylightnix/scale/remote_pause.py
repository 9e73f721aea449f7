"""Pauses on workers: what the three processes involved share (the driver's hub,
the worker, the attacher), each of which has its own module:
:mod:`pylightnix.scale.hub`, :mod:`pylightnix.scale.worker` and
:mod:`pylightnix.frontends.attach`.

With an executor, a derivation that has a build breakpoint (or any build while
break-on-failure is on) is built on a worker like any other, and pauses *there*,
in the build's own thread, where its ``Build`` (a model on a GPU, say) lives.

- **The hub** (:class:`~pylightnix.scale.hub.PauseHub`, one per driver process, started on first use)
  listens on 127.0.0.1 with its own secret (:mod:`pylightnix.wire.channel`) and writes
  an attach file ``attach-PORT.json`` with ``role: "hub"`` and the list of paused
  builds (:mod:`pylightnix.wire.attach_info`: a private directory, file mode 0600).
- **The worker** (:func:`~pylightnix.scale.worker.serve`) connects to the hub with the secret the driver
  sent along with the build, announces the pause and waits. The hub names it
  with a short id and tells the driver's frontends (``on_remote_pause``).
- **An attacher** (``pylightnix attach ID``, a VS Code child session) connects
  to the hub with the secret, naming the pause and a *service*: ``console``
  (:mod:`pylightnix.frontends.remote_console`) or ``debug`` (the debug adapter's agent,
  found through the entry point ``pylightnix.debugger: worker``). The hub has
  the worker open a second connection and splices the two, so the attacher talks
  straight to the paused build. When the service ends, the build resumes: with
  the committed result, cancelled, or running its realizer. When the attacher's
  connection drops without leaving, the build waits for a re-attach
  (:data:`REATTACH_TIMEOUT`), then is cancelled; when the driver goes away, it is
  cancelled at once.

A ``Processes`` worker connects to the driver's 127.0.0.1; a Dask worker, on any
host, through Dask's own connections (:mod:`pylightnix.scale.tunnel`), and a child
session's pydevd through a second hub stream (``DEBUGGER_STREAM``). Executors that
have neither build paused derivations in the driver, saying so
(``Executor.same_machine``, ``Executor.tunnels_pauses``). Every hub connection is on
loopback and authenticated; see docs/security.md.
"""
from __future__ import annotations

import json
import socket
from typing import Any, Dict, Optional, Tuple

from pylightnix.core import settings
from pylightnix.core.errors import AttachError
from pylightnix.engine.events import CANCELLED, COMMITTED, BuildPause
from pylightnix.wire.channel import ChannelError, connect, read_line

#: the services an attacher can ask a paused build for
CONSOLE, DEBUG = "console", "debug"
SERVICES = (CONSOLE, DEBUG)
#: not a service: a second stream of an attacher of ``debug``, for the worker's pydevd, which
#: connects through it to the attacher's debugpy (no connection from the worker to the
#: attacher's host is needed: the hub splices it like a service's)
DEBUGGER_STREAM = "pydevd"
#: what a service returns when its attacher's connection dropped without leaving
DROPPED = "dropped"
#: what a service returns when its attacher stays with the build after the pause (Step Into):
#: its connection stays open until the build ends on the worker
LINGER = "linger"
#: entry point group where the debug adapter provides the ``worker`` debug service
ENTRY_GROUP = "pylightnix.debugger"
#: seconds a build whose attacher's connection dropped stays paused for a re-attach
#: (then it is cancelled); ``PYLIGHTNIX_REATTACH_TIMEOUT`` in the driver changes it
REATTACH_TIMEOUT = settings.REATTACH_TIMEOUT

HubAddress = Tuple[str, int, str]  # host, port, secret


def worker_label(where: Any, pid: Any) -> str:
    """``worker HOST, pid N`` for a pause's ``where`` (a Dask worker's address, or a pool
    process's ``HOST pid N``) and ``pid``: what every frontend calls the worker."""
    where, suffix = str(where), f" pid {pid}"
    if pid and where.endswith(suffix):
        where = where[:-len(suffix)]
    return f"worker {where}" + (f", pid {pid}" if pid else "")


def resume_state(pause: BuildPause) -> str:
    """How a pause ended, in the words the frontends show."""
    return {COMMITTED: "committed", CANCELLED: "cancelled"}.get(pause.state, "continued")


def stage_globals(pause: BuildPause) -> Optional[Dict[str, Any]]:
    """The globals of the module that defined the pause's stage, unless that is a library
    module of ours (a wrapper's), where the user's names are not."""
    g = getattr(pause.stage_function, "__globals__", None)
    if isinstance(g, dict) and not str(g.get("__name__", "")).startswith(("pylightnix", "dap_adapter")):
        return g
    return None


def pause_globals(pause: BuildPause) -> Optional[Dict[str, Any]]:
    """For a pause on a worker: the globals its console and debugger frame see, the
    driver's ``__main__`` names shipped with the build, then the stage module's own
    (once per pause, so names defined in one cell stay for the next). None elsewhere."""
    cached = pause.remote_globals
    if cached is not None:
        return cached
    shipped = pause.user_globals
    if shipped is None:
        return None
    g: Dict[str, Any] = {"__name__": "__main__", "__builtins__": __builtins__}
    g.update(shipped)
    g.update({k: v for k, v in (stage_globals(pause) or {}).items() if not k.startswith("__")})
    pause.remote_globals = g
    return g


def hang_up(sock: socket.socket) -> None:
    """Shut ``sock`` down both ways (a reader thread may still hold it), then close it."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def open_service(pause_id: str, service: str, hub_info: Dict[str, Any]) -> Tuple[socket.socket, Dict[str, Any]]:
    """Connect through the hub to the paused build's ``service``; returns the socket and
    what the hub says about the build."""
    try:
        sock = connect(str(hub_info["host"]), int(hub_info["port"]), str(hub_info["secret"]),
                       hello={"role": "attach", "pause": pause_id, "service": service})
    except (ChannelError, OSError, KeyError, ValueError) as e:
        raise AttachError(f"cannot reach the driver's pause hub: {e}") from e
    line = read_line(sock, limit=65536)
    try:
        answer = json.loads(line)
    except ValueError:
        answer = {"error": f"unexpected answer {line[:100]!r}"}
    if "attached" not in answer:
        sock.close()
        raise AttachError(str(answer.get("error", "refused")))
    return sock, answer

