"""The authenticated side channel: the adapter and agents, the driver and its workers.

JSON lines over a loopback TCP socket. The side that connects proves it knows
the per-session secret in its first line (``{"auth": secret}``); the listening
side compares it in constant time and refuses (and logs) anything else. After
that both sides may send requests (``{"id", "method", "params"}``), answers
(``{"id", "result"}`` / ``{"id", "error"}``) and notifications
(``{"event", "body"}``).

Only loopback addresses are ever bound (127.0.0.1 unless told otherwise). The channel can make the debuggee run code (the
console), which is why it is authenticated.
"""
from __future__ import annotations

import errno
import hmac
import ipaddress
import json
import secrets
import selectors
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from pylightnix.core.errors import ChannelError
from pylightnix.wire.pending import Pending

LOOPBACK = "127.0.0.1"
#: seconds a new side-channel connection has to present the secret
AUTH_TIMEOUT = 2.0
#: connections that may be authenticating at the same time; a new one over it drops the
#: oldest (which is told to retry): a flood of idle connections cannot keep a peer out
MAX_PENDING = 256
#: the longest hello line
HELLO_LIMIT = 4096
#: refusals logged one by one per second; more are summed up in one line
LOG_BURST = 10

Handler = Callable[[str, Dict[str, Any]], Any]


def new_secret() -> str:
    """A fresh per-session secret."""
    return secrets.token_hex(32)


class Channel:
    """A connected, authenticated side channel."""

    def __init__(self, sock: socket.socket, on_request: Optional[Handler] = None,
                 on_event: Optional[Callable[[str, Dict[str, Any]], None]] = None,
                 on_close: Optional[Callable[[], None]] = None, name: str = "channel") -> None:
        self._sock = sock
        try:  # small request/answer messages: never wait for delayed ACKs
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self._rfile = sock.makefile("rb")
        self._wlock = threading.Lock()
        self._pending = Pending()  # answers by request id; None: the channel closed
        self.on_request = on_request
        self.on_event = on_event
        self.on_close = on_close
        self.closed = False
        self._thread = threading.Thread(target=self._read, name=f"pylightnix-{name}", daemon=True)
        # pydevd must not trace or suspend our own threads
        self._thread.pydev_do_not_trace = True  # type: ignore[attr-defined]
        self._thread.is_pydev_daemon_thread = True  # type: ignore[attr-defined]

    def start(self) -> "Channel":
        self._thread.start()
        return self

    def _send(self, obj: Dict[str, Any]) -> None:
        data = (json.dumps(obj, default=repr) + "\n").encode("utf-8")
        with self._wlock:
            if self.closed:
                raise ChannelError("side channel closed")
            try:
                self._sock.sendall(data)
            except OSError as e:
                self.closed = True
                raise ChannelError(f"side channel send failed: {e}") from e

    def notify(self, event: str, body: Optional[Dict[str, Any]] = None) -> None:
        """Send a notification; errors are ignored (the other side may be gone)."""
        try:
            self._send({"event": event, "body": body or {}})
        except ChannelError:
            pass

    def call(self, method: str, params: Optional[Dict[str, Any]] = None, timeout: float = 10.0) -> Any:
        """Send a request and wait for its answer."""
        rid = self._pending.new_id()
        self._pending.expect(rid)
        try:
            self._send({"id": rid, "method": method, "params": params or {}})
            answer = self._pending.wait(rid, timeout)
        except TimeoutError:
            raise ChannelError(f"side channel: no answer to {method} within {timeout}s") from None
        finally:
            self._pending.discard(rid)
        if answer is None:
            raise ChannelError("side channel closed")
        if "error" in answer:
            raise ChannelError(str(answer["error"]))
        return answer.get("result")

    def _read(self) -> None:
        try:
            for line in self._rfile:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if "method" in msg:
                    t = threading.Thread(target=self._serve, args=(msg,), daemon=True)
                    t.pydev_do_not_trace = True  # type: ignore[attr-defined]
                    t.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
                    t.start()
                elif "id" in msg:
                    self._pending.resolve(msg["id"], msg)
                elif "event" in msg and self.on_event is not None:
                    try:
                        self.on_event(msg["event"], msg.get("body") or {})
                    except Exception as e:  # a broken handler must not kill the channel
                        print(f"pylightnix side channel: event handler failed: {e!r}", file=sys.stderr)
        except (OSError, ValueError):
            pass
        finally:
            self.closed = True
            self._pending.close()
            if self.on_close is not None:
                self.on_close()

    def _serve(self, msg: Dict[str, Any]) -> None:
        try:
            if self.on_request is None:
                raise ChannelError(f"no handler for {msg['method']}")
            result = self.on_request(msg["method"], msg.get("params") or {})
            answer: Dict[str, Any] = {"id": msg["id"], "result": result}
        except Exception as e:
            answer = {"id": msg["id"], "error": f"{type(e).__name__}: {e}"}
        try:
            self._send(answer)
        except ChannelError:
            pass

    def close(self) -> None:
        self.closed = True
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()


def read_line(sock: socket.socket, limit: int = 4096, deadline: Optional[float] = None) -> bytes:
    """One line (at most ``limit`` bytes); with ``deadline`` (monotonic), what came by then."""
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < limit:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
        chunk = sock.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf


def never_suspended(t: threading.Thread) -> threading.Thread:
    """Mark a thread the debugger must never suspend: one that carries a debug session's
    own bytes (the Dask event loop under a tunnel) keeps running while the session's
    "all threads" are stopped. pydevd skips such threads when it suspends all; unlike
    :func:`daemon`'s threads they still count as the program's (pydevd ends its session
    when none of those is left)."""
    t.pydev_do_not_trace = True  # type: ignore[attr-defined]
    return t


def daemon(target: Callable[..., Any], name: str, *args: Any) -> threading.Thread:
    """Start ``target(*args)`` in a daemon thread the debugger leaves alone (our own plumbing)."""
    t = never_suspended(threading.Thread(target=target, args=args, name=name, daemon=True))
    t.is_pydev_daemon_thread = True  # type: ignore[attr-defined]  (not traced either: our own plumbing)
    t.start()
    return t


class _Hello:
    """A connection that has not authenticated yet (the listener's thread only)."""
    __slots__ = ("sock", "addr", "deadline", "buf")

    def __init__(self, sock: socket.socket, addr: Any) -> None:
        self.sock, self.addr, self.buf = sock, addr, b""
        self.deadline = time.monotonic() + AUTH_TIMEOUT

    def where(self) -> str:
        return f"from {self.addr[0]}:{self.addr[1]}" if isinstance(self.addr, tuple) else "from ?"


def _check_hello(line: bytes, secret: str) -> Optional[Dict[str, Any]]:
    """The hello's other fields if ``line`` is ``{"auth": secret, ...}``; else None. Any
    data at all is safe here: a non-object, a lone surrogate, deep nesting, bad UTF-8."""
    try:
        hello = json.loads(line)
    except (ValueError, RecursionError):
        return None
    got = hello.get("auth") if isinstance(hello, dict) else None
    if not (isinstance(got, str) and got.isascii() and hmac.compare_digest(got, secret)):
        return None
    return {k: v for k, v in hello.items() if k != "auth"}


class Listener:
    """Accepts side-channel connections on 127.0.0.1 that present ``secret``.

    One thread accepts and reads hellos, never blocking on a peer: each connection has
    :data:`AUTH_TIMEOUT` seconds to send its hello line, and when more than
    :data:`MAX_PENDING` are waiting, the oldest is dropped and told to retry
    (:func:`connect` does). Idle or slow connections, even thousands from a flood, thus
    never keep the real peer out; it sends its hello at once. Refused attempts are
    reported to ``log`` (stderr by default; beyond :data:`LOG_BURST` a second, summed
    up) and counted in :attr:`refused`.
    """

    def __init__(self, secret: str, port: int = 0, log: Optional[Callable[[str], None]] = None,
                 host: str = LOOPBACK) -> None:
        if not secret.isascii():
            raise ValueError("side channel: the secret must be ASCII")
        self.secret = secret
        self.host = LOOPBACK if host == "localhost" else host
        self.refused = 0
        self._log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        self._window, self._said, self._quiet = 0.0, 0, 0  # the refusal log's rate limit
        self._pending: Dict[socket.socket, _Hello] = {}   # oldest first
        self._closed = self._serving = False
        if not ipaddress.ip_address(self.host).is_loopback:
            raise ValueError(f"side channel: refusing to listen on non-loopback {self.host}")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, port))
        self._sock.listen(socket.SOMAXCONN)
        self._sock.setblocking(False)
        self.port: int = self._sock.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()

    def serve_forever(self, on_conn: Callable[..., None], with_hello: bool = False) -> threading.Thread:
        """Accept connections in a daemon thread; ``on_conn`` gets each authenticated one in
        a thread of its own (and, ``with_hello``, the other fields of its first line: see
        :func:`connect`)."""
        self._serving = True
        return daemon(self._loop, "pylightnix-channel-listener", on_conn, with_hello)

    def close(self) -> None:
        self._closed = True
        try:
            self._wake_w.send(b"x")  # the listener's thread closes the rest
        except OSError:
            pass
        self._sock.close()
        self._flush(time.monotonic())  # what the last second's summary would have said
        if not self._serving:
            self._wake_r.close()
            self._wake_w.close()

    # -- the listener's thread --------------------------------------------------------
    def _loop(self, on_conn: Callable[..., None], with_hello: bool) -> None:
        sel = selectors.DefaultSelector()
        try:
            sel.register(self._sock, selectors.EVENT_READ, "accept")
            sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        except (OSError, ValueError):
            return  # closed before it started
        try:
            while not self._closed:
                now = time.monotonic()
                waits = [h.deadline - now for h in self._first()] + ([1.0] if self._quiet else [])
                ready = sel.select(max(0.0, min(waits)) if waits else None)
                # hellos before new connections: a peer that has spoken is never dropped for them
                for key, _ in sorted(ready, key=lambda kv: kv[0].data != "hello"):
                    if key.data == "hello":
                        self._read_hello(sel, key.fileobj, on_conn, with_hello)  # type: ignore[arg-type]
                    elif key.data == "accept":
                        self._accept(sel)
                    else:
                        return
                now = time.monotonic()
                while self._pending and next(iter(self._pending.values())).deadline <= now:
                    self._refuse(sel, next(iter(self._pending.values())),
                                 f"(no hello within {AUTH_TIMEOUT:g} s)", retry=True)
                self._say(None)
        finally:
            for h in list(self._pending.values()):
                self._drop(sel, h)
            sel.close()
            for s in (self._wake_r, self._wake_w):
                s.close()

    def _first(self) -> List[_Hello]:
        return [next(iter(self._pending.values()))] if self._pending else []

    def _accept(self, sel: selectors.BaseSelector) -> None:
        for _ in range(64):  # then serve the hellos that came meanwhile
            try:
                conn, addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM) and self._pending:
                    for h in self._first():  # out of descriptors: make room
                        self._refuse(sel, h, "(dropped: out of file descriptors)", retry=True)
                    continue
                if e.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                if not self._closed:
                    time.sleep(0.05)  # nothing to drop: let the limit breathe, never spin
                return
            if len(self._pending) >= MAX_PENDING:
                for h in self._first():
                    self._refuse(sel, h, f"(dropped: more than {MAX_PENDING} connections authenticating)",
                                 retry=True)
            conn.setblocking(False)
            h = _Hello(conn, addr)
            self._pending[conn] = h
            sel.register(conn, selectors.EVENT_READ, "hello")

    def _read_hello(self, sel: selectors.BaseSelector, conn: socket.socket,
                    on_conn: Callable[..., None], with_hello: bool) -> None:
        h = self._pending.get(conn)
        if h is None:
            return
        try:  # peek, then take exactly the hello line: what follows it is the channel's
            data = conn.recv(HELLO_LIMIT - len(h.buf), socket.MSG_PEEK)
            end = data.find(b"\n") + 1 or len(data)
            if data:
                conn.recv(end)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, end = b"", 0
        h.buf += data[:end]
        if not data or (not h.buf.endswith(b"\n") and len(h.buf) >= HELLO_LIMIT):
            self._refuse(sel, h, "(no hello line)")
            return
        if not h.buf.endswith(b"\n"):
            return
        hello = _check_hello(h.buf, self.secret)
        if hello is None:
            self._refuse(sel, h, "(wrong secret or bad hello)")
            return
        self._drop(sel, h, close=False)
        try:
            conn.setblocking(True)
            conn.sendall(b'{"ok": true}\n')
        except OSError:
            conn.close()
            return
        args = (conn, hello) if with_hello else (conn,)
        daemon(self._serve, "pylightnix-channel-conn", on_conn, args)

    def _serve(self, on_conn: Callable[..., None], args: Tuple[Any, ...]) -> None:
        try:
            on_conn(*args)
        except Exception as e:  # a bad request of an authenticated peer: close it, say why once
            self._log(f"pylightnix side channel: dropped a connection: {type(e).__name__}: {e!r}"[:300])
            args[0].close()

    def _drop(self, sel: selectors.BaseSelector, h: _Hello, close: bool = True) -> None:
        self._pending.pop(h.sock, None)
        try:
            sel.unregister(h.sock)
        except (KeyError, ValueError):
            pass
        if close:
            h.sock.close()

    def _refuse(self, sel: selectors.BaseSelector, h: _Hello, why: str, retry: bool = False) -> None:
        self.refused += 1
        self._say(f"pylightnix side channel: refused unauthenticated connection {h.where()} {why}")
        try:
            h.sock.send(b'{"error": "unauthorized", "retry": true}\n' if retry else b'{"error": "unauthorized"}\n')
        except OSError:
            pass
        self._drop(sel, h)

    def _say(self, line: Optional[str]) -> None:
        """Log ``line``, at most :data:`LOG_BURST` a second; then how many were left out."""
        now = time.monotonic()
        if now - self._window >= 1.0:
            self._flush(now)
            self._window, self._said = now, 0
        if line is None:
            return
        if self._said < LOG_BURST:
            self._said += 1
            self._log(line)
        else:
            self._quiet += 1


    def _flush(self, now: float) -> None:
        quiet, self._quiet = self._quiet, 0
        if quiet:
            self._log(f"pylightnix side channel: refused {quiet} more unauthenticated connections "
                      f"in the last {max(1.0, now - self._window):.0f} s")


class _Retry(Exception):
    """The listener dropped this attempt before reading its hello (busy): try again."""


def connect(host: str, port: int, secret: str, timeout: float = 10.0,
            hello: Optional[Dict[str, Any]] = None) -> socket.socket:
    """Connect and authenticate; raises :class:`ChannelError` when refused, or ``OSError``
    when nothing listens. ``hello``'s fields travel in the same first line (a listener
    serving ``with_hello`` sees them: which paused build a connection is for). An attempt
    the listener dropped unread (a flood of other connections) is retried with backoff
    for up to ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    line = (json.dumps({**(hello or {}), "auth": secret}) + "\n").encode()
    delay = 0.02
    while True:
        try:
            return _connect_once(host, port, line, deadline)
        except _Retry as e:
            if time.monotonic() + delay >= deadline:
                raise ChannelError(f"side channel at {host}:{port}: {e}, for {timeout:g} s") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def _connect_once(host: str, port: int, line: bytes, deadline: float) -> socket.socket:
    try:
        sock = socket.create_connection((host, port), timeout=min(max(deadline - time.monotonic(), 0.1),
                                                                   AUTH_TIMEOUT + 1))
    except socket.timeout:
        raise _Retry("no connection (the listener is busy)") from None
    # Once the hello is sent, the listener may act on it (an attach marks its paused build
    # taken, a stream fills its slot): it is never sent twice. A slow answer is waited for
    # until the deadline; only the listener dropping the hello unread (its "retry" line, a
    # reset, a close) makes a new attempt.
    try:
        sock.sendall(line)
        reply = read_line(sock, deadline=max(deadline, time.monotonic() + 0.1))
    except (ConnectionResetError, BrokenPipeError):
        sock.close()
        raise _Retry("dropped before it answered (the listener is busy)") from None
    except socket.timeout:
        sock.close()
        raise ChannelError(f"side channel at {host}:{port}: no answer to the hello in time") from None
    except BaseException:
        sock.close()
        raise
    if reply and not reply.endswith(b"\n"):
        sock.close()
        raise ChannelError(f"side channel at {host}:{port}: no whole answer to the hello in time")
    try:
        answer = json.loads(reply)
    except ValueError:
        answer = None
    if isinstance(answer, dict) and answer.get("ok") is True:
        sock.settimeout(None)
        return sock
    sock.close()
    if not reply or not reply.endswith(b"\n") or (isinstance(answer, dict) and answer.get("retry") is True):
        raise _Retry("dropped before it answered (the listener is busy)")
    raise ChannelError(f"side channel refused the connection: {reply!r}")
