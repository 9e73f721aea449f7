"""The side channel between the adapter and the agent in the debuggee.

JSON lines over a loopback TCP socket. The side that connects proves it knows
the per-session secret in its first line (``{"auth": secret}``); the listening
side compares it in constant time and refuses (and logs) anything else. After
that both sides may send requests (``{"id", "method", "params"}``), answers
(``{"id", "result"}`` / ``{"id", "error"}``) and notifications
(``{"event", "body"}``).

Only 127.0.0.1 is ever bound. The channel can make the debuggee run code (the
console), which is why it is authenticated.
"""
from __future__ import annotations

import hmac
import json
import secrets
import socket
import sys
import threading
from typing import Any, Callable, Dict, Optional, Tuple

LOOPBACK = "127.0.0.1"
AUTH_TIMEOUT = 5.0

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
        self._plock = threading.Lock()
        self._pending: Dict[int, Tuple[threading.Event, list]] = {}
        self._next = 0
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
        with self._plock:
            self._next += 1
            rid = self._next
            slot: Tuple[threading.Event, list] = (threading.Event(), [])
            self._pending[rid] = slot
        try:
            self._send({"id": rid, "method": method, "params": params or {}})
            if not slot[0].wait(timeout):
                raise ChannelError(f"side channel: no answer to {method} within {timeout}s")
        finally:
            with self._plock:
                self._pending.pop(rid, None)
        if not slot[1]:
            raise ChannelError("side channel closed")
        answer = slot[1][0]
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
                    with self._plock:
                        slot = self._pending.get(msg["id"])
                    if slot is not None:
                        slot[1].append(msg)
                        slot[0].set()
                elif "event" in msg and self.on_event is not None:
                    try:
                        self.on_event(msg["event"], msg.get("body") or {})
                    except Exception as e:  # a broken handler must not kill the channel
                        print(f"pylightnix side channel: event handler failed: {e!r}", file=sys.stderr)
        except (OSError, ValueError):
            pass
        finally:
            self.closed = True
            with self._plock:
                for ev, _ in self._pending.values():
                    ev.set()
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


def _read_line(sock: socket.socket, limit: int = 4096) -> bytes:
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < limit:
        chunk = sock.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf


class Listener:
    """Accepts side-channel connections on 127.0.0.1 that present ``secret``.

    Refused attempts are reported to ``log`` (stderr by default) and counted in
    :attr:`refused`.
    """

    def __init__(self, secret: str, port: int = 0, log: Optional[Callable[[str], None]] = None) -> None:
        self.secret = secret
        self.refused = 0
        self._log = log or (lambda s: print(s, file=sys.stderr, flush=True))
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((LOOPBACK, port))
        self._sock.listen(8)
        self.port: int = self._sock.getsockname()[1]

    def accept(self, timeout: Optional[float] = None) -> socket.socket:
        """Wait for the first authenticated connection; refuse the others."""
        self._sock.settimeout(timeout)
        while True:
            try:
                conn, addr = self._sock.accept()
            except socket.timeout as e:
                raise ChannelError("no side-channel connection in time") from e
            conn.settimeout(AUTH_TIMEOUT)
            try:
                line = _read_line(conn)
                got = json.loads(line).get("auth", "") if line.strip() else ""
            except (OSError, ValueError, AttributeError):
                got = ""
            if isinstance(got, str) and hmac.compare_digest(got.encode(), self.secret.encode()):
                conn.settimeout(None)
                conn.sendall(b'{"ok": true}\n')
                return conn
            self.refused += 1
            self._log(f"pylightnix side channel: refused unauthenticated connection from {addr[0]}:{addr[1]}")
            try:
                conn.sendall(b'{"error": "unauthorized"}\n')
            except OSError:
                pass
            conn.close()

    def serve_forever(self, on_conn: Callable[[socket.socket], None]) -> threading.Thread:
        """Accept authenticated connections in a daemon thread, one after another."""
        def loop() -> None:
            while True:
                try:
                    conn = self.accept()
                except (ChannelError, OSError):
                    return
                on_conn(conn)
        t = threading.Thread(target=loop, name="pylightnix-channel-listener", daemon=True)
        t.pydev_do_not_trace = True  # type: ignore[attr-defined]
        t.is_pydev_daemon_thread = True  # type: ignore[attr-defined]
        t.start()
        return t

    def close(self) -> None:
        self._sock.close()


def connect(host: str, port: int, secret: str, timeout: float = 10.0) -> socket.socket:
    """Connect and authenticate; raises :class:`ChannelError` when refused."""
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.sendall((json.dumps({"auth": secret}) + "\n").encode())
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
