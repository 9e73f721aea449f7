"""DAP wire format: ``Content-Length`` framing, JSON bodies, seq numbering.

This layer knows nothing about debugging. It turns a byte stream into DAP
messages and back, numbers outgoing messages, and reports *bad input* (a
malformed header, a body that is not JSON, a message that is not a DAP
message) as :class:`BadMessage` values instead of dying, so the session above it
can answer with an error response or an ``output`` event and keep serving.

Resynchronisation: after garbage, the reader skips forward to the next
``Content-Length:`` header, so one bad message never wedges the stream.
"""
from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, Iterator, Optional, Union

HEADER = b"Content-Length:"
SEPARATOR = b"\r\n\r\n"
#: refuse absurd bodies instead of trying to allocate them
MAX_BODY = 64 * 1024 * 1024
#: a header block longer than this without its blank line is garbage
MAX_HEADER = 8 * 1024

Message = Dict[str, Any]


@dataclass
class BadMessage:
    """Input that could not be turned into a DAP message."""

    kind: str      #: "header", "json" or "shape"
    detail: str
    raw: bytes = b""
    #: the parsed JSON when ``kind == "shape"`` (e.g. a request without command)
    parsed: Any = None


class MessageReader:
    """Parse DAP messages out of chunks returned by ``read_chunk`` (``b""`` = EOF).

    Work is linear in the input: garbage is dropped as it arrives (only a tail
    that may hold the start of a header is kept), a header may be at most
    :data:`MAX_HEADER` bytes, and the buffer is a ``bytearray`` (no quadratic
    copying of large bodies)."""

    def __init__(self, read_chunk: Callable[[], bytes]) -> None:
        self._read_chunk = read_chunk
        self._buf = bytearray()
        self._eof = False
        self._skipped = 0          #: garbage bytes dropped and not reported yet
        self._skipped_head = b""   #: the first of them, for the report

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._read_chunk()
        if not chunk:
            self._eof = True
            return False
        self._buf += chunk
        return True

    def __iter__(self) -> Iterator[Union[Message, BadMessage]]:
        while True:
            item = self.read()
            if item is None:
                return
            yield item

    def _drop(self, n: int) -> bytes:
        """Drop ``n`` garbage bytes from the buffer (counted for the next report)."""
        garbage = bytes(self._buf[:n])
        del self._buf[:n]
        if garbage.strip():
            if not self._skipped:
                self._skipped_head = garbage[:200]
            self._skipped += len(garbage)
        return garbage

    def _garbage_report(self, detail: str) -> BadMessage:
        n, head = self._skipped, self._skipped_head
        self._skipped, self._skipped_head = 0, b""
        return BadMessage("header", f"{detail} ({n} bytes skipped)", head)

    def read(self) -> Optional[Union[Message, BadMessage]]:
        """Next message, a :class:`BadMessage`, or None at end of stream."""
        # 1. find a header start; anything before it is garbage
        while True:
            start = self._buf.find(HEADER)
            sep = self._buf.find(SEPARATOR)
            if start != 0 and sep >= 0 and (start < 0 or sep < start):
                self._drop(sep + len(SEPARATOR))
                return self._garbage_report("header block without Content-Length")
            if start > 0:
                self._drop(start)
                if self._skipped:
                    return self._garbage_report("data before Content-Length header")
                continue
            if start < 0:  # keep only what may be the beginning of a header
                keep = len(HEADER) - 1
                if len(self._buf) > keep:
                    self._drop(len(self._buf) - keep)
            elif sep >= 0:
                end = sep
                break
            elif len(self._buf) > MAX_HEADER:
                self._drop(len(HEADER))  # the rest is garbage until the next header
                self._skipped = 0
                return BadMessage("header", f"header longer than {MAX_HEADER} bytes without a blank line",
                                  bytes(self._buf[:200]))
            if not self._fill():
                self._drop(len(self._buf))
                if self._skipped:
                    return self._garbage_report("truncated or malformed header at end of stream")
                return None
        header = bytes(self._buf[:end])
        del self._buf[:end + len(SEPARATOR)]
        length: Optional[int] = None
        for line in header.split(b"\r\n"):
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    length = None
        if length is None or length < 0 or length > MAX_BODY:
            return BadMessage("header", f"malformed header: {header[:200]!r}", header[:200])
        # 2. the body
        while len(self._buf) < length:
            if not self._fill():
                body = bytes(self._buf)
                self._buf.clear()
                return BadMessage("json", f"stream ended {length - len(body)} bytes into a body", body[:200])
        body = bytes(self._buf[:length])
        del self._buf[:length]
        return parse(body)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def parse(body: bytes) -> Union[Message, BadMessage]:
    """One message body: the message, or a :class:`BadMessage` saying what is wrong with it."""
    try:
        msg = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        return BadMessage("json", f"invalid JSON body: {str(e)[:200]}", body[:200])
    if not isinstance(msg, dict) or msg.get("type") not in ("request", "response", "event"):
        return BadMessage("shape", "not a DAP message (needs type request/response/event)", body[:200], msg)
    if not _is_int(msg.get("seq")):
        return BadMessage("shape", "seq must be an integer", body[:200], msg)
    if msg["type"] == "request" and not isinstance(msg.get("command"), str):
        return BadMessage("shape", "request without a command", body[:200], msg)
    if msg["type"] == "response" and not _is_int(msg.get("request_seq")):
        return BadMessage("shape", "response without an integer request_seq", body[:200], msg)
    if msg["type"] == "event" and not isinstance(msg.get("event"), str):
        return BadMessage("shape", "event without a name", body[:200], msg)
    return msg


def connect_retrying(host: str, port: int, timeout: float, interval: float = 0.05) -> socket.socket:
    """Connect to a peer that may still be starting; the last OSError once ``timeout`` is over."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=2)
            sock.settimeout(None)
            return sock
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(interval)


def encode(msg: Message) -> bytes:
    """Frame one message."""
    body = json.dumps(msg, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


class Endpoint:
    """One side of a DAP connection: numbers and writes messages, reads messages.

    ``send_*`` are thread-safe and assign ``seq``. Reading is done by whoever
    iterates :meth:`messages` (one thread).
    """

    def __init__(self, read_chunk: Callable[[], bytes], write: Callable[[bytes], Any],
                 close: Callable[[], Any] = lambda: None,
                 on_send: Optional[Callable[[Message], None]] = None) -> None:
        self._reader = MessageReader(read_chunk)
        self._write = write
        self._close = close
        self._lock = threading.Lock()
        self._seq = 0
        self._on_send = on_send
        self.closed = False

    # -- constructors -------------------------------------------------------
    @classmethod
    def from_streams(cls, rfile: BinaryIO, wfile: BinaryIO, **kw: Any) -> "Endpoint":
        read1 = getattr(rfile, "read1", None)

        def read_chunk() -> bytes:
            try:
                return read1(65536) if read1 else rfile.read(1)
            except (OSError, ValueError):
                return b""

        def write(data: bytes) -> None:
            wfile.write(data)
            wfile.flush()

        def close() -> None:
            for f in (wfile, rfile):
                try:
                    f.close()
                except (OSError, ValueError):
                    pass

        return cls(read_chunk, write, close, **kw)

    @classmethod
    def from_socket(cls, sock: socket.socket, **kw: Any) -> "Endpoint":
        def read_chunk() -> bytes:
            try:
                return sock.recv(65536)
            except OSError:
                return b""

        def close() -> None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

        return cls(read_chunk, sock.sendall, close, **kw)

    # -- reading ------------------------------------------------------------
    def messages(self) -> Iterator[Union[Message, BadMessage]]:
        return iter(self._reader)

    # -- writing ------------------------------------------------------------
    def send(self, msg: Message, before_write: Optional[Callable[[Message], None]] = None) -> Message:
        """Assign the next seq to ``msg`` and write it; returns it.

        ``before_write`` sees the numbered message before it goes out (to
        register a response callback without a race)."""
        with self._lock:
            self._seq += 1
            msg["seq"] = self._seq
            data = encode(msg)
            if before_write is not None:
                before_write(msg)
            if self._on_send is not None:
                self._on_send(msg)
            if self.closed:
                return msg
            try:
                self._write(data)
            except (OSError, ValueError):
                self.closed = True
        return msg

    def request(self, command: str, arguments: Optional[Dict[str, Any]] = None) -> Message:
        msg: Message = {"type": "request", "command": command}
        if arguments is not None:
            msg["arguments"] = arguments
        return self.send(msg)

    def respond(self, request_seq: int, command: str, body: Optional[Dict[str, Any]] = None,
                success: bool = True, message: Optional[str] = None) -> Message:
        msg: Message = {"type": "response", "request_seq": request_seq, "success": success,
                        "command": command}
        if message is not None:
            msg["message"] = message
        if body is None and not success:
            body = {}  # an ErrorResponse must have a body
        if body is not None:
            msg["body"] = body
        return self.send(msg)

    def error(self, request: Message, text: str, error_id: int = 1) -> Message:
        """Error response to ``request`` with a human-readable message."""
        seq = request.get("seq")
        return self.respond(seq if _is_int(seq) else 0, str(request.get("command", "")),
                            {"error": {"id": error_id, "format": text.replace("{", "(").replace("}", ")"),
                                       "showUser": True}},
                            success=False, message=text)

    def event(self, event: str, body: Optional[Dict[str, Any]] = None) -> Message:
        msg: Message = {"type": "event", "event": event}
        if body is not None:
            msg["body"] = body
        return self.send(msg)

    def close(self) -> None:
        """Close after any write in progress (never leave half a message on the wire)."""
        got = self._lock.acquire(timeout=2)
        try:
            self.closed = True
            self._close()
        finally:
            if got:
                self._lock.release()
