"""Pauses on workers: a build paused where it runs, and the hub in the driver that serves it.

With an executor, a derivation that has a build breakpoint (or any build while
break-on-failure is on) is built on a worker like any other, and pauses *there*,
in the build's own thread, where its ``Build`` (a model on a GPU, say) lives.

- **The hub** (:class:`PauseHub`, one per driver process, started on first use)
  listens on 127.0.0.1 with its own secret (:mod:`pylightnix.channel`) and writes
  an attach file ``attach-PORT.json`` with ``role: "hub"`` and the list of paused
  builds (:mod:`pylightnix.attach_info`: a private directory, file mode 0600).
- **The worker** (:func:`serve`) connects to the hub with the secret the driver
  sent along with the build, announces the pause and waits. The hub names it
  with a short id and tells the driver's frontends (``on_remote_pause``).
- **An attacher** (``pylightnix attach ID``, a VS Code child session) connects
  to the hub with the secret, naming the pause and a *service*: ``console``
  (:mod:`pylightnix.remote_console`) or ``debug`` (the debug adapter's agent,
  found through the entry point ``pylightnix.debugger: worker``). The hub has
  the worker open a second connection and splices the two, so the attacher talks
  straight to the paused build. When the service ends, the build resumes: with
  the committed result, cancelled, or running its realizer. When the attacher's
  connection drops without leaving, the build waits for a re-attach
  (:data:`REATTACH_TIMEOUT`), then is cancelled; when the driver goes away, it is
  cancelled at once.

The worker must reach the driver's 127.0.0.1, so pauses follow builds to workers
on the same machine (``Processes``, a local Dask cluster); other executors build
paused derivations in the driver (:func:`same_machine`). Everything is on
loopback and authenticated; see docs/security.md.
"""
from __future__ import annotations

import atexit
import importlib.metadata
import ipaddress
import json
import os
import queue
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from typing import Any, Callable, Dict, List, Optional, Tuple

from pylightnix import attach_info, events, settings
from pylightnix.channel import Channel, ChannelError, Listener, _daemon, _read_line, connect, new_secret
from pylightnix.errors import AttachError, PauseNotServed
from pylightnix.events import CANCELLED, COMMITTED, FAILURE, BuildPause
from pylightnix.process import pid_alive

#: the services an attacher can ask a paused build for
CONSOLE, DEBUG = "console", "debug"
SERVICES = (CONSOLE, DEBUG)
#: what a service returns when its attacher's connection dropped without leaving
DROPPED = "dropped"
#: entry point group where the debug adapter provides the ``worker`` debug service
ENTRY_GROUP = "pylightnix.debugger"
#: seconds the hub waits for a worker to open the connection an attacher asked for
OPEN_TIMEOUT = 10.0
#: seconds a worker keeps trying to announce its pause to a busy hub (a flood of other
#: connections) before it gives up and takes the pause's default
ANNOUNCE_PATIENCE = 300.0
#: ``PYLIGHTNIX_REMOTE_PAUSES=0`` builds paused derivations in the driver, as before
ENV_REMOTE = "PYLIGHTNIX_REMOTE_PAUSES"
#: seconds a build whose attacher's connection dropped stays paused for a re-attach
#: (then it is cancelled); ``PYLIGHTNIX_REATTACH_TIMEOUT`` in the driver changes it
REATTACH_TIMEOUT = settings.REATTACH_TIMEOUT
ENV_REATTACH = "PYLIGHTNIX_REATTACH_TIMEOUT"

HubAddress = Tuple[str, int, str]  # host, port, secret


def reattach_timeout() -> float:
    """Seconds a build paused on a worker waits for a re-attach after its attacher's
    connection dropped (``$PYLIGHTNIX_REATTACH_TIMEOUT``, default 600)."""
    return settings.reattach_timeout()


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


def pause_info(pause: BuildPause, where: str) -> Dict[str, Any]:
    """What a worker tells the hub about its pause (all JSON)."""
    info: Dict[str, Any] = {"name": pause.name, "dref": pause.dref, "kind": pause.kind, "where": where,
                            "pid": os.getpid(), "breakpoint": pause.breakpoint}
    if pause.kind == FAILURE and pause.exception is not None:
        e = pause.exception
        info["exception"] = {"typeName": type(e).__name__, "message": str(e)}
    return info


# =========================================================================== driver
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
            _daemon(deliver, "pylightnix-remote-pause", kind, remote)

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
        """An attacher names a paused build by id (:func:`choose` resolves names first)."""
        try:
            if service not in SERVICES:
                raise AttachError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
            with self._lock:
                remote = self._pauses.get(key)
                if remote is None:
                    raise AttachError(f"no build paused as {key!r} in process {os.getpid()}")
                if remote.attached:
                    raise AttachError(f"{remote.name} ({remote.id}) is already attached elsewhere")
                remote.attached = True
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
            remote.attached = False
            _send_line(sock, {"error": f"{remote.name} ({remote.id}): cannot reach the paused build: {why}"})
            sock.close()
            return
        _send_line(sock, {"attached": remote.id, **remote.info()})
        splice(sock, slot[1], on_end=lambda: setattr(remote, "attached", False))

    def _stream(self, sock: socket.socket, token: str) -> None:
        with self._lock:
            slot = self._streams.get(token)
        if slot is None or slot[1] is not None:
            sock.close()
            return
        slot[1] = sock
        slot[0].set()


def _hang_up(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


def _send_line(sock: socket.socket, obj: Dict[str, Any]) -> None:
    try:
        sock.sendall((json.dumps(obj) + "\n").encode())
    except OSError:
        pass


def splice(a: socket.socket, b: socket.socket, on_end: Optional[Callable[[], None]] = None) -> None:
    """Copy bytes both ways between ``a`` and ``b`` until either side closes."""
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

    _daemon(pump, "pylightnix-splice", a, b)
    _daemon(pump, "pylightnix-splice", b, a)


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
    from pylightnix import events
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


# =========================================================================== worker
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


def _service(name: str) -> Callable[[BuildPause, socket.socket], None]:
    if name == CONSOLE:
        from pylightnix import remote_console
        return remote_console.serve
    for ep in importlib.metadata.entry_points(group=ENTRY_GROUP):
        if ep.name == "worker":
            return ep.load()
    raise ChannelError(f"no debug service is installed on this worker (entry point {ENTRY_GROUP}: worker); "
                       f"install pylightnix with its dap extra there")


def _warm_up(name: str) -> None:
    """Prepare the service the driver expects to attach (its module's ``warm_up``)."""
    try:
        service = _service(name)
        warm = getattr(sys.modules.get(service.__module__), "warm_up", None)
        if warm is not None:
            warm()
    except Exception:
        pass  # only an optimisation


def serve(pause: BuildPause, address: HubAddress, where: str, expected: Optional[str] = None,
          reattach: float = REATTACH_TIMEOUT) -> None:
    """In the worker's build thread: announce ``pause`` to the driver's hub at ``address``
    and wait until an attacher is done with it (or the driver resumes or cancels it).
    If the driver cannot be reached it raises :class:`PauseNotServed` (the driver then builds it).
    ``expected``: the service the driver's frontend will likely attach (prepared meanwhile).

    The build is cancelled when the driver goes away (killed, or its connection lost),
    with or without an attacher. An attacher whose connection drops without leaving
    (``exit``, Ctrl-D) does not let the build go on: it stays paused for a re-attach for
    ``reattach`` seconds (the driver hears ``detached``), then it is cancelled."""
    host, port, secret = address
    try:
        sock = connect(host, int(port), secret, timeout=ANNOUNCE_PATIENCE, hello={"role": "worker"})
    except (ChannelError, OSError) as e:  # never build on without the pause: the driver builds it itself
        raise PauseNotServed(f"{pause.name} could not pause on {where}: the worker cannot reach the driver's "
                             f"pause hub at {host}:{port} ({e})", dref=pause.dref) from None
    inbox: "queue.Queue[Tuple[str, ...]]" = queue.Queue()
    serving: List[socket.socket] = []
    me = threading.get_ident()
    told: List[str] = []  # the driver said resume or cancel; "done": this pause is over

    def on_request(method: str, params: Dict[str, Any]) -> Any:
        if method == "open":
            inbox.put(("open", str(params.get("service", "")), str(params.get("token", ""))))
        elif method in ("resume", "cancel"):
            told.append(method)
            if method == "cancel" and pause.pending:
                pause.cancel()
            for s in serving:  # an attacher is in the middle of it: end its connection
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            if method == "cancel":
                _interrupt_console(me)  # a cell still running for a cancelled build stops
            inbox.put((method,))
        else:
            raise ChannelError(f"unknown method {method}")
        return {"ok": True}

    def on_close() -> None:
        if "done" not in told and pause.pending:  # the driver is gone: nobody waits for this build
            pause.cancel()
            _interrupt_console(me)
        inbox.put(("lost",))

    ch = Channel(sock, on_request=on_request, on_close=on_close, name="pylightnix-worker-pause")
    ch.start()
    try:
        try:
            ch.call("paused", pause_info(pause, where), timeout=10)
        except ChannelError as e:
            raise PauseNotServed(f"{pause.name} could not pause on {where}: the driver's pause hub did not take "
                                 f"the pause ({e})", dref=pause.dref) from None
        if expected in SERVICES:
            _daemon(_warm_up, "pylightnix-warm-up", expected)
        deadline: Optional[float] = None  # set while waiting for a re-attach
        while True:
            try:  # a timeout, so that an interrupt from the driver (Dask) gets delivered
                cmd = inbox.get(timeout=0.25)
            except queue.Empty:
                if deadline is not None and time.monotonic() > deadline and pause.pending:
                    pause.cancel()
                    break
                continue
            if cmd[0] == "open":
                try:
                    stream = connect(host, int(port), secret, hello={"role": "stream", "token": cmd[2]})
                    run = _service(cmd[1])
                except (ChannelError, OSError, ImportError) as e:
                    print(f"pylightnix: {pause.name}: cannot serve {cmd[1]}: {e}", file=sys.stderr)
                    continue
                serving.append(stream)
                try:
                    with events.active(pause):
                        ended = run(pause, stream)  # blocks in this thread until the attacher leaves
                finally:
                    serving.remove(stream)
                    _hang_up(stream)  # shutdown first: a channel's reader may still hold the socket
                if ended == DROPPED and pause.pending and not ch.closed and not told:
                    deadline = time.monotonic() + reattach
                    ch.notify("detached", {"timeout": reattach})
                    continue
                if ch.closed and pause.pending:  # the driver went away while the attacher worked
                    pause.cancel()
                break
            break  # resume, cancel, or the driver is gone (cancelled above)
    finally:
        told.append("done")
        if not ch.closed:
            ch.notify("resumed", {"state": resume_state(pause)})
        ch.close()


def _interrupt_console(ident: int) -> None:
    """Stop a console cell running in thread ``ident`` for a build that is cancelled."""
    mod = sys.modules.get("pylightnix.remote_console")
    if mod is not None:
        mod.interrupt(ident)


# =========================================================================== attacher
def hubs(problems: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """The attach files of live hubs of this user, newest first. The debug folder must
    pass :func:`attach_info.private_directory` (else :class:`AttachInfoError`); an attach
    file there that cannot be trusted or read is skipped, with one line in ``problems``."""
    found = []
    d = attach_info.private_directory(create=False)
    try:
        names = os.listdir(d) if d is not None else []
    except OSError as e:
        raise attach_info.AttachInfoError(f"cannot list {attach_info.ENV_DIR} {d}: {e.strerror}") from e
    for n in sorted(names):
        if not (n.startswith("attach-") and n.endswith(".json")):
            continue
        try:
            info, st = attach_info.read_stat(os.path.join(d, n))  # type: ignore[arg-type]
        except attach_info.AttachInfoError as e:
            if problems is not None:
                problems.append(f"skipped {e}")
            continue
        if info.get("role") != "hub" or not ("pid" in info and pid_alive(info["pid"])):
            continue
        info["pauses"] = [p for p in info.get("pauses") or [] if isinstance(p, dict)] \
            if isinstance(info.get("pauses"), list) else []
        found.append((st.st_mtime, info))
    return [info for _, info in sorted(found, key=lambda f: -f[0])]


def paused_builds(problems: Optional[List[str]] = None) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """Every paused build of this user's drivers: ``(pause info, hub info)`` pairs."""
    return [(p, h) for h in hubs(problems) for p in h["pauses"]]


def choose(key: Optional[str]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The paused build ``key`` (an id or a derivation name) names; without a key, the
    only one there is. Raises :class:`AttachError` saying what there is instead."""
    problems: List[str] = []
    builds = paused_builds(problems)
    if key:
        hits = [b for b in builds if b[0].get("id") == key] or [b for b in builds if b[0].get("name") == key]
    else:
        hits = builds
    if len(hits) == 1:
        return hits[0]
    listing = "\n".join(f"  {p.get('id')}  {p.get('name')} on {worker_label(p.get('where'), p.get('pid'))} "
                        f"(driver pid {h.get('pid')})"
                        for p, h in builds)
    skipped = "".join(f"\n  {p}" for p in problems)
    if not builds:
        raise AttachError("no build is paused on a worker of this user's drivers"
                          + (f" (looked for {key!r})" if key else "") +
                          f"; attach files are in {attach_info.directory()}" + skipped)
    if not hits:
        raise AttachError(f"no paused build is called {key!r}; paused now:\n{listing}{skipped}")
    raise AttachError(f"{len(hits)} builds are paused; say which: pylightnix attach ID\n{listing}")


def open_service(pause_id: str, service: str, hub_info: Dict[str, Any]) -> Tuple[socket.socket, Dict[str, Any]]:
    """Connect through the hub to the paused build's ``service``; returns the socket and
    what the hub says about the build."""
    try:
        sock = connect(str(hub_info["host"]), int(hub_info["port"]), str(hub_info["secret"]),
                       hello={"role": "attach", "pause": pause_id, "service": service})
    except (ChannelError, OSError, KeyError, ValueError) as e:
        raise AttachError(f"cannot reach the driver's pause hub: {e}") from e
    line = _read_line(sock, limit=65536)
    try:
        answer = json.loads(line)
    except ValueError:
        answer = {"error": f"unexpected answer {line[:100]!r}"}
    if "attached" not in answer:
        sock.close()
        raise AttachError(str(answer.get("error", "refused")))
    return sock, answer
