"""A byte tunnel over Dask's own connections, from a worker to the driver's pause hub
(issue 16: pauses on workers of other hosts; the whole story:
:mod:`pylightnix.scale.remote_pause`).

A worker on another host cannot reach the driver's 127.0.0.1, where the pause hub
listens; both reach the Dask scheduler. So a worker's connection to the hub is a
``socket.socketpair()`` in the worker: one end goes to the code that would have
connected to the hub over TCP (:func:`dial`), the other end's bytes travel as
Dask events to the driver, where a :class:`Relay` opens a real loopback
connection to the hub for each tunnel and copies both ways:

- worker -> driver: ``Worker.log_event(UP, ...)`` (the worker's own batched stream to
  the scheduler), received by the driver's ``Client.subscribe_topic(UP)``;
- driver -> worker: ``Client.log_event(DOWN, ...)``, received by the worker's client
  (``distributed.get_client()``), subscribed to ``DOWN``.

The hub and its protocol are unchanged end to end: the relay makes the hub
connection with the hub's secret and the hello the worker asked for, and only for
a worker that proved it knows the secret (an HMAC of the tunnel's random id, used
once), so the secret itself never travels in an event (events stay in the
scheduler's log, up to ``distributed.admin.low-level-log-length`` per topic). The
relay reaches nothing but the hub, and only with the roles a worker has there.
Topic names have an unguessable part per run. Every message is
``[tunnel id, seq, kind, payload]``; ``seq`` orders each direction of a tunnel.
Handlers run on Dask's event loop and only hand messages to a thread. Either end
closing closes the other; a worker that hears nothing from the driver for
:data:`SILENCE` seconds (the relay beats every :data:`BEAT`) closes its tunnels,
as a TCP connection to a dead driver would end.
"""
from __future__ import annotations

import hashlib
import hmac
import queue
import secrets
import socket
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from pylightnix.core.errors import ChannelError
from pylightnix.wire.channel import connect, daemon, never_suspended

#: seconds between the relay's heartbeats on a run's DOWN topic
BEAT = 2.0
#: seconds of silence from the driver after which a worker closes its tunnels of that run
SILENCE = 15.0
#: seconds a worker stays subscribed to a run's DOWN topic without a tunnel
IDLE = 30.0
#: the most bytes one event carries
CHUNK = 1 << 20
#: the roles a tunnel may take at the hub (what a worker does there)
ROLES = ("worker", "stream")

Send = Callable[[str, Any], None]


def proof(secret: str, tid: str) -> str:
    """What proves that the opener of tunnel ``tid`` knows the hub's secret."""
    return hmac.new(secret.encode(), f"pylightnix-tunnel {tid}".encode(), hashlib.sha256).hexdigest()


class Pipe:
    """One end of a tunnel: copies bytes between ``sock`` and messages (``send``, :meth:`deliver`)."""

    def __init__(self, sock: socket.socket, send: Callable[[int, str, Any], None], name: str,
                 first_in: int = 0) -> None:
        self.sock = sock
        self._send = send
        self._seq = 0
        self._send_lock = threading.Lock()
        self._expected = first_in  # the driver's end: the worker's "open" was number 0
        self._early: Dict[int, Tuple[str, Any]] = {}
        self._lock = threading.Lock()
        self._inbox: "queue.Queue[Tuple[str, Any]]" = queue.Queue()
        self.answer: "queue.Queue[Tuple[str, Any]]" = queue.Queue()  # "ok" or "error" (opening)
        self.closed = False
        self.on_end: Optional[Callable[[], None]] = None
        self._name = name

    def send(self, kind: str, payload: Any) -> None:
        with self._send_lock:  # seq in the order the messages leave
            seq = self._seq
            self._seq += 1
            self._send(seq, kind, payload)

    def deliver(self, seq: int, kind: str, payload: Any) -> None:
        """A message from the other end (any thread, Dask's event loop included: never blocks)."""
        with self._lock:
            self._early[seq] = (kind, payload)
            while self._expected in self._early:
                item = self._early.pop(self._expected)
                self._expected += 1
                if item[0] in ("ok", "error"):
                    self.answer.put(item)
                else:
                    self._inbox.put(item)

    def start(self) -> None:
        daemon(self._read, f"pylightnix-tunnel-{self._name}-read")
        daemon(self._write, f"pylightnix-tunnel-{self._name}-write")

    def _read(self) -> None:
        """Our socket -> the other end, until either side closes."""
        try:
            while True:
                data = self.sock.recv(CHUNK)
                if not data:
                    break
                self.send("data", data)
        except (OSError, ChannelError, RuntimeError):
            pass
        self.hang_up()

    def hang_up(self) -> None:
        """Tell the other end we are done (unless it told us first), then close."""
        if not self.closed:
            try:
                self.send("close", None)
            except Exception:
                pass  # the other end, or Dask, is gone already
        self.close()

    def _write(self) -> None:
        """The other end -> our socket."""
        while True:
            kind, payload = self._inbox.get()
            if kind != "data":
                break
            try:
                self.sock.sendall(payload)
            except OSError:
                break
        self.close()

    def close(self) -> None:
        """Close our socket (the reader then stops) and let the writer go."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self._inbox.put(("close", None))
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self.on_end is not None:
            self.on_end()


# ---------------------------------------------------------------- the driver's end


class Relay:
    """In the driver, for one run: the hub connections of the tunnels workers open."""

    def __init__(self, client: Any, hub: Tuple[str, int, str]) -> None:
        self.client = client
        self.hub = hub
        run = secrets.token_hex(16)
        self.up, self.down = f"pylightnix-tunnel-{run}-up", f"pylightnix-tunnel-{run}-down"
        self._pipes: Dict[str, Pipe] = {}
        self._used: set = set()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        client.subscribe_topic(self.up, self._event)
        daemon(self._beat, "pylightnix-tunnel-beat")

    def topics(self) -> Dict[str, str]:
        """What a worker needs to open tunnels of this run (no secret)."""
        return {"up": self.up, "down": self.down}

    def _emit(self, tid: str, seq: int, kind: str, payload: Any) -> None:
        if not self._closed.is_set():
            self.client.log_event(self.down, [tid, seq, kind, payload])

    def _beat(self) -> None:
        while not self._closed.wait(BEAT):
            try:
                self._emit("", 0, "beat", None)
            except Exception:
                pass

    def _event(self, event: Any) -> None:  # Dask's event loop: hand over, never block
        try:
            tid, seq, kind, payload = event[1]
        except (TypeError, ValueError):
            return
        if not isinstance(tid, str) or not isinstance(seq, int):
            return
        if kind == "open":
            with self._lock:
                if tid in self._used or self._closed.is_set():
                    return  # a tunnel id is used once: a replayed opening from the log is ignored
                self._used.add(tid)
            daemon(self._open, "pylightnix-tunnel-open", tid, payload)
            return
        with self._lock:
            pipe = self._pipes.get(tid)
        if pipe is not None:
            pipe.deliver(seq, kind, payload)

    def _open(self, tid: str, payload: Any) -> None:
        host, port, secret = self.hub
        try:
            hello = payload.get("hello") if isinstance(payload, dict) else None
            if not isinstance(hello, dict) or hello.get("role") not in ROLES:
                raise ChannelError(f"a tunnel may only be a {' or '.join(ROLES)} connection")
            if not hmac.compare_digest(str(payload.get("proof", "")), proof(secret, tid)):
                raise ChannelError("the tunnel's opener did not prove the hub's secret")
            timeout = payload.get("timeout", 10.0)
            sock = connect(host, int(port), secret, hello=hello,
                           timeout=float(timeout) if isinstance(timeout, (int, float)) else 10.0)
        except (ChannelError, OSError) as e:
            try:
                self._emit(tid, 0, "error", str(e))
            except Exception:
                pass
            return
        pipe = Pipe(sock, lambda seq, kind, p: self._emit(tid, seq, kind, p), "driver", first_in=1)
        with self._lock:
            if self._closed.is_set():
                sock.close()
                return
            self._pipes[tid] = pipe
        pipe.on_end = lambda: self._forget(tid)
        pipe.send("ok", None)
        pipe.start()

    def _forget(self, tid: str) -> None:
        with self._lock:
            self._pipes.pop(tid, None)

    def close(self) -> None:
        """The run is over: close every tunnel and stop listening (workers' ends close too)."""
        with self._lock:
            if self._closed.is_set():
                return
            pipes = list(self._pipes.values())
        for p in pipes:
            p.hang_up()
        self._closed.set()
        try:
            self.client.unsubscribe_topic(self.up)
        except Exception:
            pass


# ---------------------------------------------------------------- a worker's end


class _Topic:
    """A worker's subscription to one run's DOWN topic: the tunnels it carries."""

    def __init__(self) -> None:
        self.pipes: Dict[str, Pipe] = {}
        self.probes: Dict[str, threading.Event] = {}
        self.heard = self.used = time.monotonic()


_topics: Dict[str, _Topic] = {}
_topics_lock = threading.Lock()


def _on_down(topic: str) -> Callable[[Any], None]:
    def handler(event: Any) -> None:  # Dask's event loop: hand over, never block
        try:
            tid, seq, kind, payload = event[1]
        except (TypeError, ValueError):
            return
        with _topics_lock:
            t = _topics.get(topic)
            if t is None:
                return
            t.heard = time.monotonic()
            pipe = t.pipes.get(tid) if isinstance(tid, str) else None
            probe = t.probes.get(str(payload)) if kind == "probe" else None
        if probe is not None:
            probe.set()
        elif pipe is not None and isinstance(seq, int):
            pipe.deliver(seq, kind, payload)
    return handler


def _subscribe(client: Any, topic: str, timeout: float) -> None:
    """Subscribe this worker to ``topic`` and wait until the scheduler delivers it to us
    (our own probe comes back), so that the relay's answer to an opening is not lost."""
    with _topics_lock:
        if topic in _topics:
            _topics[topic].used = time.monotonic()
            return
        t = _topics[topic] = _Topic()
        nonce = secrets.token_hex(8)
        seen = t.probes[nonce] = threading.Event()
    client.subscribe_topic(topic, _on_down(topic))
    deadline = time.monotonic() + timeout
    try:
        while not seen.is_set():
            if time.monotonic() > deadline:
                raise ChannelError(f"the scheduler did not deliver events of {topic} to this worker "
                                   f"within {timeout:g} s")
            client.log_event(topic, ["", 0, "probe", nonce])
            seen.wait(0.1)
    except BaseException:
        _unsubscribe(client, topic)
        raise
    finally:
        t.probes.pop(nonce, None)
    daemon(_watch, "pylightnix-tunnel-watch", client, topic)


def _unsubscribe(client: Any, topic: str) -> None:
    with _topics_lock:
        t = _topics.pop(topic, None)
    if t is None:
        return
    try:
        client.unsubscribe_topic(topic)
    except Exception:
        pass
    for p in list(t.pipes.values()):
        p.close()


def _watch(client: Any, topic: str) -> None:
    """Close a run's tunnels when the driver has been silent too long (gone), or drop the
    subscription when no tunnel uses it any more."""
    while True:
        time.sleep(1.0)
        with _topics_lock:
            t = _topics.get(topic)
            if t is None:
                return
            now = time.monotonic()
            silent = now - t.heard > SILENCE
            if t.pipes:
                t.used = now
            idle = now - t.used > IDLE
        if silent or idle:
            _unsubscribe(client, topic)
            return


def dialer(tunnel: Dict[str, str], secret: str) -> Callable[[Dict[str, Any], float], socket.socket]:
    """In a task on a Dask worker: ``dial(hello, timeout)``, usable from any thread of the
    worker afterwards, that opens tunnels of the run ``tunnel`` (:func:`dial`)."""
    from distributed import get_client, get_worker
    worker, client = get_worker(), get_client()
    # Dask's event loop carries the tunnels: a debugger stopping "all threads" at a pause
    # on this worker must not stop it (on 3.12+ pydevd sees every thread), or the session
    # that stopped them loses its own bytes
    worker.loop.add_callback(lambda: never_suspended(threading.current_thread()))
    return lambda hello, timeout=10.0: dial(worker, client, tunnel, secret, hello, timeout)


def dial(worker: Any, client: Any, tunnel: Dict[str, str], secret: str, hello: Dict[str, Any],
         timeout: float = 10.0) -> socket.socket:
    """A socket connected, through the driver's relay, to the hub, past its hello (as
    :func:`pylightnix.wire.channel.connect` returns one), for the Dask ``worker`` (its
    ``client``). ChannelError when the relay refuses or does not answer within ``timeout``
    seconds."""
    up, down = tunnel["up"], tunnel["down"]
    tid = secrets.token_hex(16)
    mine, theirs = socket.socketpair()

    def send(seq: int, kind: str, payload: Any) -> None:
        worker.log_event(up, [tid, seq, kind, payload])
    pipe = Pipe(theirs, send, "worker")
    while True:  # (again if the subscription just ended: the driver went silent, or it idled)
        try:
            _subscribe(client, down, min(timeout, 30.0))
        except BaseException:
            mine.close()
            theirs.close()
            raise
        with _topics_lock:
            t = _topics.get(down)
            if t is not None:
                t.pipes[tid] = pipe
                break

    def forget() -> None:
        with _topics_lock:
            t = _topics.get(down)
            if t is not None:
                t.pipes.pop(tid, None)
    pipe.on_end = forget
    pipe.send("open", {"hello": hello, "proof": proof(secret, tid), "timeout": timeout})
    try:
        kind, payload = pipe.answer.get(timeout=timeout + 5)
    except queue.Empty:
        kind, payload = "error", f"the driver did not answer through Dask within {timeout + 5:g} s"
    if kind != "ok":
        pipe.close()
        mine.close()
        raise ChannelError(f"tunnel to the driver's pause hub: {payload}")
    pipe.start()
    return mine


def tunnels_open() -> List[str]:
    """The ids of the tunnels open in this process (for tests)."""
    with _topics_lock:
        return [tid for t in _topics.values() for tid in t.pipes]
