"""A small blocking DAP client: drives the adapter from tests and benchmarks.

It is not part of the adapter's runtime (the VS Code extension's bundle leaves it
out); it lives in the package because both ``tests/dap`` and ``bench/bench_dap.py``
use it, and it is handy for scripting the adapter by hand. It speaks to ``python -m dap_adapter`` over pipes (:meth:`Client.spawn`)
or TCP (:meth:`Client.connect`). Every received message can be passed to a
``check`` callback (the tests validate each one against the DAP JSON schema).
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional

from pylightnix.wire.pending import Pending

from dap_adapter.common.messaging import BadMessage, Endpoint, Message, connect_retrying


class DAPTimeout(Exception):
    """An expected response or event did not arrive in time."""


class Client:
    """Send requests, wait for responses and events (all received messages are kept)."""

    def __init__(self, endpoint: Endpoint, check: Optional[Callable[[Message], None]] = None,
                 proc: Optional[subprocess.Popen] = None) -> None:
        self.ep = endpoint
        self.proc = proc
        self.check = check
        self.received: List[Message] = []
        self.bad: List[BadMessage] = []
        self.check_errors: List[str] = []
        self._cond = threading.Condition()
        self._pending = Pending()  # responses by request seq; None: the connection closed
        self._closing = False
        self.reverse_handler: Optional[Callable[[Message], Optional[Dict[str, Any]]]] = None
        self._thread = threading.Thread(target=self._read, name="dap-client-reader", daemon=True)
        self._thread.start()

    # -- construction -------------------------------------------------------
    @classmethod
    def spawn(cls, args: Optional[List[str]] = None, env: Optional[Dict[str, str]] = None,
              check: Optional[Callable[[Message], None]] = None, python: str = sys.executable) -> "Client":
        """Start ``python -m dap_adapter`` and talk to it over its stdin/stdout."""
        proc = subprocess.Popen([python, "-m", "dap_adapter", *(args or [])], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env, bufsize=0)
        assert proc.stdin is not None and proc.stdout is not None
        return cls(Endpoint.from_streams(proc.stdout, proc.stdin), check, proc)

    @classmethod
    def connect(cls, port: int, host: str = "127.0.0.1", timeout: float = 10.0,
                check: Optional[Callable[[Message], None]] = None,
                proc: Optional[subprocess.Popen] = None) -> "Client":
        """Connect to ``python -m dap_adapter --port N``."""
        return cls(Endpoint.from_socket(connect_retrying(host, port, timeout)), check, proc)

    # -- reading ------------------------------------------------------------
    def _read(self) -> None:
        for msg in self.ep.messages():
            if isinstance(msg, BadMessage):
                if self._closing:  # our own close cut the stream
                    continue
                with self._cond:
                    self.bad.append(msg)
                    self._cond.notify_all()
                continue
            if self.check is not None:
                try:
                    self.check(msg)
                except Exception as e:  # recorded, asserted on by the tests
                    self.check_errors.append(f"{e}")
            if msg.get("type") == "request":
                self._answer_reverse(msg)
            with self._cond:
                self.received.append(msg)
                self._cond.notify_all()
            if msg.get("type") == "response":
                self._pending.resolve(msg.get("request_seq"), msg)
        with self._cond:
            self.ep.closed = True
            self._cond.notify_all()
        self._pending.close()

    def _answer_reverse(self, msg: Message) -> None:
        try:
            body = self.reverse_handler(msg) if self.reverse_handler else None
        except Exception as e:  # report, keep reading
            self.check_errors.append(f"reverse request handler failed: {e!r}")
            body = None
        if body is None:
            self.ep.respond(msg["seq"], msg["command"], success=False, message="not supported by test client")
        else:
            self.ep.respond(msg["seq"], msg["command"], body)

    def _wait(self, pred: Callable[[Message], bool], timeout: float, what: str,
              start: int = 0) -> Message:
        deadline = time.monotonic() + timeout
        with self._cond:
            i = start
            while True:
                while i < len(self.received):
                    m = self.received[i]
                    i += 1
                    if pred(m):
                        return m
                if self.ep.closed:
                    raise DAPTimeout(f"connection closed while waiting for {what}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DAPTimeout(f"timed out waiting for {what}; last messages: {self.received[-5:]}")
                self._cond.wait(left)

    # -- API ----------------------------------------------------------------
    def send_request(self, command: str, arguments: Optional[Dict[str, Any]] = None) -> int:
        msg: Message = {"type": "request", "command": command}
        if arguments is not None:
            msg["arguments"] = arguments
        return self.ep.send(msg, lambda m: self._pending.expect(m["seq"]))["seq"]

    def response(self, seq: int, timeout: float = 20.0) -> Message:
        """The response to request ``seq`` (sent by :meth:`send_request`, or by :meth:`send_raw`
        with ``expect=seq``); waiting again for the same seq gives the same response."""
        try:
            resp = self._pending.wait(seq, timeout)
        except TimeoutError:
            raise DAPTimeout(f"timed out waiting for response to seq {seq}; "
                             f"last messages: {self.received[-5:]}") from None
        if resp is None:
            raise DAPTimeout(f"connection closed while waiting for response to seq {seq}")
        return resp

    def request(self, command: str, arguments: Optional[Dict[str, Any]] = None,
                timeout: float = 20.0, ok: bool = True) -> Message:
        """Send and wait for the response; with ``ok`` raise if it failed."""
        resp = self.response(self.send_request(command, arguments), timeout)
        if ok and not resp.get("success"):
            raise AssertionError(f"{command} failed: {resp.get('message')} {resp.get('body')}")
        return resp

    def mark(self) -> int:
        """Position in the received list, for waiting on events after this point."""
        with self._cond:
            return len(self.received)

    def event(self, name: str, timeout: float = 20.0, after: int = 0,
              pred: Optional[Callable[[Message], bool]] = None) -> Message:
        """The first event called ``name`` received at index >= ``after``."""
        return self._wait(lambda m: m.get("type") == "event" and m.get("event") == name
                          and (pred is None or pred(m)), timeout, f"event {name}", after)

    def events(self, name: str) -> List[Message]:
        with self._cond:
            return [m for m in self.received if m.get("type") == "event" and m.get("event") == name]

    def output_text(self) -> str:
        return "".join(m["body"].get("output", "") for m in self.events("output"))

    def send_raw(self, data: bytes, expect: Optional[int] = None) -> None:
        """Write bytes as they are; ``expect``: the seq of the request they hold, for :meth:`response`."""
        if expect is not None:
            self._pending.expect(expect)
        self.ep._write(data)

    def close(self, timeout: float = 5.0) -> None:
        self._closing = True
        self.ep.close()
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def adapter_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment for an adapter process that can import this checkout's packages."""
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env
