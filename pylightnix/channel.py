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

import hmac
import ipaddress
import json
import secrets
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, Optional, Tuple

from pylightnix.pending import Pending

LOOPBACK = "127.0.0.1"
#: seconds a new side-channel connection has to present the secret
AUTH_TIMEOUT = 2.0
#: connections that may be authenticating at the same time
MAX_PENDING = 64

Handler = Callable[[str, Dict[str, Any]], Any]


def new_secret() -> str:
    """A fresh per-session secret."""
    return secrets.token_hex(32)


class ChannelError(Exception):
    """The other side failed a request, went away, or did not authenticate."""


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


def _read_line(sock: socket.socket, limit: int = 4096, deadline: Optional[float] = None) -> bytes:
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


def _daemon(target: Callable[..., Any], name: str, *args: Any) -> threading.Thread:
    t = threading.Thread(target=target, args=args, name=name, daemon=True)
    # pydevd must not trace or suspend our own threads
    t.pydev_do_not_trace = True  # type: ignore[attr-defined]
    t.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
    t.start()
    return t


class Listener:
    """Accepts side-channel connections on 127.0.0.1 that present ``secret``.

    Each connection is authenticated in its own thread with a deadline of
    :data:`AUTH_TIMEOUT` seconds, so idle or slow connections never delay the
    real peer; at most :data:`MAX_PENDING` may be authenticating at once (more
    are closed at once). Refused attempts are reported to ``log`` (stderr by
    default) and counted in :attr:`refused`.
    """

    def __init__(self, secret: str, port: int = 0, log: Optional[Callable[[str], None]] = None,
                 host: str = LOOPBACK) -> None:
        self.secret = secret
        self.host = LOOPBACK if host == "localhost" else host
        self.refused = 0
        self._log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        self._lock = threading.Lock()
        self._pending = 0
        if not ipaddress.ip_address(self.host).is_loopback:
            raise ValueError(f"side channel: refusing to listen on non-loopback {self.host}")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, port))
        self._sock.listen(16)
        self.port: int = self._sock.getsockname()[1]

    def _authenticate(self, conn: socket.socket, addr: Tuple[str, int],
                      on_conn: Callable[..., None], with_hello: bool) -> None:
        try:
            try:
                line = _read_line(conn, deadline=time.monotonic() + AUTH_TIMEOUT)
                hello = json.loads(line) if line.strip() else {}
                got = hello.get("auth", "")
            except (OSError, ValueError, AttributeError, RecursionError):
                hello, got = {}, ""
            if isinstance(got, str) and hmac.compare_digest(got.encode(), self.secret.encode()):
                try:
                    conn.settimeout(None)
                    conn.sendall(b'{"ok": true}\n')
                except OSError:
                    conn.close()
                    return
                if with_hello:
                    on_conn(conn, {k: v for k, v in hello.items() if k != "auth"})
                else:
                    on_conn(conn)
                return
            self._refuse(conn, f"from {addr[0]}:{addr[1]}")
        finally:
            with self._lock:
                self._pending -= 1

    def _refuse(self, conn: socket.socket, why: str) -> None:
        with self._lock:
            self.refused += 1
        self._log(f"pylightnix side channel: refused unauthenticated connection {why}")
        try:
            conn.sendall(b'{"error": "unauthorized"}\n')
        except OSError:
            pass
        conn.close()

    def serve_forever(self, on_conn: Callable[..., None], with_hello: bool = False) -> threading.Thread:
        """Accept connections in a daemon thread; ``on_conn`` gets each authenticated one
        (and, ``with_hello``, the other fields of its first line: see :func:`connect`)."""
        def loop() -> None:
            while True:
                try:
                    conn, addr = self._sock.accept()
                except OSError:
                    return
                with self._lock:
                    busy = self._pending >= MAX_PENDING
                    if not busy:
                        self._pending += 1
                if busy:
                    self._refuse(conn, f"from {addr[0]}:{addr[1]} (too many connections authenticating)")
                    continue
                _daemon(self._authenticate, "pylightnix-channel-auth", conn, addr, on_conn, with_hello)
        return _daemon(loop, "pylightnix-channel-listener")

    def close(self) -> None:
        self._sock.close()


def connect(host: str, port: int, secret: str, timeout: float = 10.0,
            hello: Optional[Dict[str, Any]] = None) -> socket.socket:
    """Connect and authenticate; raises :class:`ChannelError` when refused. ``hello``'s
    fields travel in the same first line (a listener serving ``with_hello`` sees them:
    which paused build a connection is for)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.sendall((json.dumps({**(hello or {}), "auth": secret}) + "\n").encode())
    reply = _read_line(sock)
    try:
        ok = json.loads(reply).get("ok") is True
    except (ValueError, AttributeError):
        ok = False
    if not ok:
        sock.close()
        raise ChannelError(f"side channel refused the connection: {reply!r}")
    sock.settimeout(None)
    return sock
