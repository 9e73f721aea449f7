"""The pause hub: in the driver, where builds paused on workers are announced and
where attachers reach them (the whole story: :mod:`pylightnix.scale.remote_pause`).

One hub per driver process (:class:`PauseHub`, started on first use) listens on
127.0.0.1 with its own secret (:mod:`pylightnix.wire.channel`) and writes an attach
file ``attach-PORT.json`` with ``role: "hub"`` and the list of paused builds
(:mod:`pylightnix.wire.attach_info`: a private directory, file mode 0600). It names
each pause a worker announces with a short id and tells the driver's frontends
(``on_remote_pause``); for an attacher asking for a service it has the worker open a
second connection and splices the two.
"""
from __future__ import annotations

import atexit
import ipaddress
import json
import os
import secrets
import socket
import threading
import urllib.parse
from typing import Any, Callable, Dict, List, Optional, Tuple

from pylightnix.core import settings
from pylightnix.core.errors import AttachError
from pylightnix.engine import events
from pylightnix.engine.events import FAILURE
from pylightnix.scale.remote_pause import DEBUG, DEBUGGER_STREAM, SERVICES, HubAddress, open_service, worker_label
from pylightnix.wire import attach_info
from pylightnix.wire.channel import Channel, ChannelError, Listener, daemon, new_secret

#: seconds the hub waits for a worker to open the connection an attacher asked for
OPEN_TIMEOUT = 10.0
#: ``PYLIGHTNIX_REMOTE_PAUSES=0`` builds paused derivations in the driver, as before
ENV_REMOTE = "PYLIGHTNIX_REMOTE_PAUSES"
ENV_REATTACH = "PYLIGHTNIX_REATTACH_TIMEOUT"


def reattach_timeout() -> float:
    """Seconds a build paused on a worker waits for a re-attach after its attacher's
    connection dropped (``$PYLIGHTNIX_REATTACH_TIMEOUT``, default 600)."""
    return settings.reattach_timeout()


class RemotePause:
    """A build paused on a worker, as the driver sees it."""

    def __init__(self, hub: "PauseHub", pause_id: str, info: Dict[str, Any], channel: Channel) -> None:
        self.hub = hub
        self.id = pause_id
        self.name = str(info.get("name", "?"))
        self.dref = str(info.get("dref", ""))
        self.kind = str(info.get("kind", "before"))
        self.where = str(info.get("where", "?"))
        self.pid = info.get("pid") if isinstance(info.get("pid"), int) else None
        self.breakpoint = info.get("breakpoint")
        self.exception: Optional[Dict[str, Any]] = info.get("exception") if isinstance(info.get("exception"), dict) else None
        self.state = "paused"
        self.attached = False
        self.attached_service = ""  # the service of the attacher in charge of it now
        #: after its attacher's connection dropped: seconds it waits for a re-attach
        self.reattach_timeout: Optional[float] = None
        self._channel = channel

    @property
    def hub_port(self) -> int:
        return self.hub.port

    def info(self) -> Dict[str, Any]:
        return {"id": self.id, "name": self.name, "dref": self.dref, "kind": self.kind, "where": self.where,
                "pid": self.pid, "hubPort": self.hub.port}

    def describe(self) -> str:
        what = "failed and is paused" if self.kind == FAILURE else "is paused"
        return f"{self.name} {what} on {worker_label(self.where, self.pid)}"

    def open(self, service: str) -> Tuple[socket.socket, Dict[str, Any]]:
        """Attach to this build from the driver itself (the terminal's in-place attach)."""
        return open_service(self.id, service, {"host": self.hub.host, "port": self.hub.port,
                                               "secret": self.hub.secret})

    def resume(self) -> None:
        """Let the build go on without anyone attaching (the default: run the realizer, or
        re-raise a failure)."""
        self._tell("resume")

    def cancel(self) -> None:
        """Cancel the build: the driver's ``realize`` raises ``BuildCancelled``."""
        self._tell("cancel")

    def _tell(self, method: str) -> None:
        try:
            self._channel.call(method, {}, timeout=5)
        except ChannelError:
            pass  # already gone: nothing to resume

    def __repr__(self) -> str:
        return f"RemotePause({self.id!r}, {self.name!r}, {self.state!r}, where={self.where!r})"


Watcher = Callable[[str, RemotePause], None]


class PauseHub:
    """Where workers announce pauses and attachers find them (one per driver process)."""

    def __init__(self, log: Optional[Callable[[str], None]] = None) -> None:
        attach_info.private_directory()  # refuse a shared directory before listening
        self.secret = new_secret()
        self.listener = Listener(self.secret, log=log)
        self.host, self.port = self.listener.host, self.listener.port
        self._lock = threading.Lock()
        self._file_lock = threading.Lock()  # one writer of the attach file at a time
        self._pauses: Dict[str, RemotePause] = {}
        self._streams: Dict[str, List[Any]] = {}  # token -> [event, worker socket]
        self._watchers: Dict[str, Watcher] = {}   # dref -> the run that waits for it
        self._closed = False
        self._write()
        self.listener.serve_forever(self._accepted, with_hello=True)

    @property
    def address(self) -> HubAddress:
        return (self.host, self.port, self.secret)

    def pauses(self) -> List[RemotePause]:
        with self._lock:
            return list(self._pauses.values())

    def watch(self, dref: str, watcher: Optional[Watcher]) -> None:
        """Deliver ``("pause"|"resumed", remote)`` for ``dref`` to ``watcher`` (the realizing
        run puts them into its own thread); unwatched ones go to the frontends at once."""
        with self._lock:
            if watcher is None:
                self._watchers.pop(dref, None)
            else:
                self._watchers[dref] = watcher

    def cancel_all(self) -> int:
        """Cancel every paused build (Stop on the main debug session); returns how many."""
        ps = self.pauses()
        for p in ps:
            p.cancel()
        return len(ps)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.listener.close()
        with self._file_lock:
            attach_info.remove(self.port, os.getpid())

    # -- bookkeeping ------------------------------------------------------------
    def _write(self) -> None:
        """Rewrite the attach file. Writers take turns and each lists the pauses as they are
        when its turn comes, so the last file written is never older than any change."""
        with self._file_lock:
            with self._lock:
                if self._closed:
                    return
                listed = [p.info() for p in self._pauses.values()]
            attach_info.write(self.port, {"pid": os.getpid(), "host": self.host, "port": self.port,
                                          "secret": self.secret, "role": "hub", "pauses": listed})

    def _emit(self, kind: str, remote: RemotePause) -> None:
        with self._lock:
            watcher = self._watchers.get(remote.dref)
        if watcher is not None:
            watcher(kind, remote)
        else:  # never block the channel's thread: a frontend may wait for the user
            daemon(deliver, "pylightnix-remote-pause", kind, remote)

    # -- connections ------------------------------------------------------------
    def _accepted(self, sock: socket.socket, hello: Dict[str, Any]) -> None:
        role = hello.get("role")
        fields = {k: hello.get(k, "") for k in ("pause", "service", "token")}
        if not all(isinstance(v, str) and v.isascii() and len(v) < 256 for v in fields.values()):
            _send_line(sock, {"error": "bad hello: pause, service and token must be short ASCII strings"})
            sock.close()
        elif role == "worker":
            self._worker(sock)
        elif role == "attach":
            self._attach(sock, fields["pause"], fields["service"])
        elif role == "stream":
            self._stream(sock, fields["token"])
        else:
            sock.close()

    def _worker(self, sock: socket.socket) -> None:
        mine: List[RemotePause] = []

        def on_request(method: str, params: Dict[str, Any]) -> Any:
            if method != "paused" or mine:
                raise ChannelError(f"unexpected {method}")
            with self._lock:
                pid = secrets.token_hex(3)
                while pid in self._pauses:
                    pid = secrets.token_hex(3)
                remote = RemotePause(self, pid, params, ch)
                self._pauses[pid] = remote
            mine.append(remote)
            self._write()
            self._emit("pause", remote)
            return {"id": pid}

        def on_event(event: str, body: Dict[str, Any]) -> None:
            if event == "resumed" and mine:
                self._ended(mine[0], str(body.get("state", "continued")))
            elif event == "detached" and mine:  # its attacher's connection dropped: it waits for another
                timeout = body.get("timeout")
                mine[0].reattach_timeout = float(timeout) if isinstance(timeout, (int, float)) else None
                self._emit("detached", mine[0])

        def on_close() -> None:
            if mine:
                self._ended(mine[0], "lost")

        ch = Channel(sock, on_request=on_request, on_event=on_event, on_close=on_close,
                     name="pylightnix-hub-worker")
        ch.start()

    def _ended(self, remote: RemotePause, state: str) -> None:
        with self._lock:
            if self._pauses.pop(remote.id, None) is None:
                return
            remote.state = state
        self._write()
        self._emit("resumed", remote)

    def _attach(self, sock: socket.socket, key: str, service: str) -> None:
        """An attacher names a paused build by id (:func:`choose` resolves names first).
        ``DEBUGGER_STREAM`` is for a build whose ``debug`` service is attached: the stream
        its pydevd connects through (it does not take the build)."""
        second = service == DEBUGGER_STREAM
        try:
            if service not in SERVICES and not second:
                raise AttachError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
            with self._lock:
                remote = self._pauses.get(key)
                if remote is None:
                    raise AttachError(f"no build paused as {key!r} in process {os.getpid()}")
                if second:
                    if not (remote.attached and remote.attached_service == DEBUG):
                        raise AttachError(f"{remote.name} ({remote.id}): no debug session is attached to it")
                elif remote.attached:
                    raise AttachError(f"{remote.name} ({remote.id}) is already attached elsewhere")
                else:
                    remote.attached, remote.attached_service = True, service
        except AttachError as e:
            _send_line(sock, {"error": str(e)})
            sock.close()
            return
        token = new_secret()
        slot: List[Any] = [threading.Event(), None]
        with self._lock:
            self._streams[token] = slot
        try:
            remote._channel.call("open", {"service": service, "token": token}, timeout=OPEN_TIMEOUT)
            ok = slot[0].wait(OPEN_TIMEOUT)
        except ChannelError as e:
            ok, why = False, str(e)
        else:
            why = "the worker did not connect back"
        with self._lock:
            self._streams.pop(token, None)
        if not ok or slot[1] is None:
            if not second:
                remote.attached = False
            _send_line(sock, {"error": f"{remote.name} ({remote.id}): cannot reach the paused build: {why}"})
            sock.close()
            return
        _send_line(sock, {"attached": remote.id, **remote.info()})
        splice(sock, slot[1], on_end=None if second else lambda: setattr(remote, "attached", False))

    def _stream(self, sock: socket.socket, token: str) -> None:
        with self._lock:
            slot = self._streams.get(token)
        if slot is None or slot[1] is not None:
            sock.close()
            return
        slot[1] = sock
        slot[0].set()


def _send_line(sock: socket.socket, obj: Dict[str, Any]) -> None:
    try:
        sock.sendall((json.dumps(obj) + "\n").encode())
    except OSError:
        pass


def splice(a: socket.socket, b: socket.socket, on_end: Optional[Callable[[], None]] = None) -> None:
    """Copy bytes both ways between ``a`` and ``b`` until either side closes (small
    messages, a DAP request say, go at once: no Nagle delay on either)."""
    for s in (a, b):
        try:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # not TCP (a socket pair)
    left = [2]
    lock = threading.Lock()

    def pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            a.close()
            b.close()
            if on_end is not None:
                on_end()

    daemon(pump, "pylightnix-splice", a, b)
    daemon(pump, "pylightnix-splice", b, a)


_hub: Optional[PauseHub] = None
_hub_lock = threading.Lock()


def hub() -> PauseHub:
    """This process's hub, started on first use."""
    global _hub
    with _hub_lock:
        if _hub is None:
            _hub = PauseHub()
            atexit.register(_hub.close)
        return _hub


def cancel_all() -> int:
    """Cancel every build paused on a worker of this process (none if no hub ever started)."""
    with _hub_lock:
        h = _hub
    return h.cancel_all() if h is not None else 0


def deliver(kind: str, remote: RemotePause) -> None:
    """Hand a hub event to the frontends (in the calling thread)."""
    if kind == "pause":
        events.dispatch_remote_pause(remote)
    elif kind == "detached":
        events.notify("on_remote_detached", remote)
    else:
        events.notify("on_remote_resumed", remote)


def enabled() -> bool:
    """Whether builds pause on their worker (``$PYLIGHTNIX_REMOTE_PAUSES``, default on)."""
    return settings.remote_pauses()


def _local_addresses() -> set:
    names = {"localhost", socket.gethostname()}
    try:
        names |= {socket.gethostbyname(socket.gethostname())}
    except OSError:
        pass
    return names


def is_local_host(host: str) -> bool:
    """Whether ``host`` (of a worker's address) is this machine."""
    try:
        if ipaddress.ip_address(host).is_loopback:
            return True
    except ValueError:
        pass
    return host in _local_addresses()


def is_local_address(address: str) -> bool:
    """Whether a Dask worker's ``address`` is on this machine: ``inproc://`` (a worker
    thread of this very process, ``LocalCluster(processes=False)``) or a local host."""
    parts = urllib.parse.urlsplit(address)
    return parts.scheme == "inproc" or is_local_host(parts.hostname or "")


