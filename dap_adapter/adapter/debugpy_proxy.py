"""The connection from our adapter to a real debugpy adapter.

Spawns the adapter of the debugpy this process imports (the user's own, or the VS
Code extension's bundled one: see :mod:`dap_adapter.bundle`) and talks to it over
pipes, for launch and attach alike. It has its own ``seq`` numbering; the session maps
the client's requests onto it and copies answers back with the client's
``request_seq``.

The spawned adapter's *access token* (the proof that a debug server, i.e. pydevd
in the program, must present when it connects to the adapter's server port) is
pinned to a value the session chooses (:data:`BOOTSTRAP`), instead of one only
debugpy knows. The session hands it to the program over the authenticated side
channel for attach (``debugpy.connect(..., access_token=...)``); launch passes it
to debugpy's launcher as debugpy always does. debugpy itself drops the token for
``attach`` with ``listen``; the pinned token keeps it checked there too.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
from typing import Any, Callable, Dict, Optional

from pylightnix.wire.pending import Pending

from dap_adapter.common import protocol
from dap_adapter.common.messaging import BadMessage, Endpoint, Message

ResponseCallback = Callable[[Message], None]

#: runs ``debugpy.adapter`` with
#: - the debug server's token checked by our own ``Connection.authenticate``, against the
#:   session's token ($PYLIGHTNIX_DEBUGPY_TOKEN) held in a closure. debugpy's own check reads
#:   the module attribute ``debugpy.adapter.access_token``, which debugpy sets to None for
#:   attach/listen (then it checks nothing). We used to pin that attribute with a property on
#:   a ModuleType subclass; CPython 3.14+ specializes LOAD_ATTR on module subclasses and skips
#:   such descriptors after the first read at a code location (CPython gh-156399), so the
#:   check silently went away. Replacing the check function itself depends on no attribute
#:   lookup rule: the token is a local of the closure, and the check never skips;
#: - that token handed to whatever debugpy starts that connects back (the launcher, attach
#:   by pid): the wrappers set the module attribute right before debugpy reads it there;
#: - no listener for more DAP clients: debugpy opens one even on stdio (for subprocess
#:   sessions), and any local process could send it ``attach`` (e.g. by PID, injecting
#:   debugpy into another of the user's processes). Our session is its only client;
#:   subprocesses then run undebugged (debugpy unblocks them).
#: A debugpy without these functions is refused (exit 3) rather than run unchecked.
BOOTSTRAP = f"""
import hmac, os, sys
token = os.environ.pop({protocol.ENV_DEBUGPY_TOKEN!r})
sys.path.insert(0, os.environ.pop({protocol.ENV_DEBUGPY_HOME!r}))
import debugpy.adapter
from debugpy.adapter import clients, launchers, servers
if not all(callable(f) for f in (getattr(servers.Connection, "authenticate", None),
                                  getattr(launchers, "spawn_debuggee", None),
                                  getattr(servers, "inject", None))):
    sys.stderr.write("pylightnix: this debugpy has no Connection.authenticate/spawn_debuggee/inject\\n")
    sys.exit(3)

def authenticate(self):
    auth = self.channel.request("pydevdAuthorize", {{"debugServerAccessToken": servers.access_token}})
    try:
        presented = auth["clientAccessToken"]
    except Exception:
        presented = None
    if not isinstance(presented, str) or not hmac.compare_digest(presented.encode(), token.encode()):
        self.channel.close()
        raise RuntimeError("debug server not authorized: wrong or missing clientAccessToken")

servers.Connection.authenticate = authenticate

def handing_out_token(start):
    def wrapper(*args, **kwargs):
        debugpy.adapter.access_token = token
        return start(*args, **kwargs)
    return wrapper

launchers.spawn_debuggee = handing_out_token(launchers.spawn_debuggee)
servers.inject = handing_out_token(servers.inject)
clients.listener = None
clients.serve = lambda host, port: (host, 0)
from debugpy.adapter.__main__ import main
main()
"""


class DebugpyGone(Exception):
    """The debugpy adapter went away or never came up."""


class DebugpyProxy:
    """Requests to debugpy with callbacks; events and reverse requests go to handlers."""

    def __init__(self, endpoint: Endpoint, on_event: Callable[[Message], None],
                 on_reverse_request: Callable[[Message], None], on_close: Callable[["DebugpyProxy"], None],
                 proc: Optional[subprocess.Popen] = None,
                 log: Optional[Callable[[str], None]] = None) -> None:
        self.ep = endpoint
        self._log = log
        if log is not None:
            endpoint._on_send = lambda m: log("-> debugpy " + json.dumps(m))
        self.proc = proc
        self._on_event = on_event
        self._on_reverse_request = on_reverse_request
        self._on_close = on_close
        #: answers by our seq; a request left open when debugpy exits gets an error response
        self._pending = Pending(lambda seq: {"type": "response", "request_seq": seq, "success": False,
                                             "command": "", "message": "debugpy adapter exited"})
        self.closed = False
        self._thread = threading.Thread(target=self._read, name="debugpy-reader", daemon=True)
        self._thread.start()

    @classmethod
    def spawn(cls, token: str, python: str = sys.executable, **handlers: Any) -> "DebugpyProxy":
        """Start the adapter of the debugpy this process imports, on pipes; debug servers
        must present ``token`` to it. That adapter launches the debuggee with the same
        debugpy (by path), whatever the debuggee's interpreter has installed."""
        spec = importlib.util.find_spec("debugpy")
        if spec is None or not spec.origin:
            raise DebugpyGone(f"debugpy is not installed for {sys.executable}; install it with "
                              f"`{sys.executable} -m pip install 'debugpy>=1.8.0'`")
        home = os.path.dirname(os.path.dirname(spec.origin))
        env = dict(os.environ, **{protocol.ENV_DEBUGPY_TOKEN: token, protocol.ENV_DEBUGPY_HOME: home})
        proc = subprocess.Popen([python, "-c", BOOTSTRAP], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0, env=env)
        assert proc.stdin is not None and proc.stdout is not None
        return cls(Endpoint.from_streams(proc.stdout, proc.stdin), proc=proc, **handlers)

    def _send(self, command: str, arguments: Optional[Dict[str, Any]],
              register: Callable[[int], None]) -> int:
        """Write a request; ``register`` sees its seq before it goes out (no answer can come first)."""
        msg: Message = {"type": "request", "command": command}
        if arguments is not None:
            msg["arguments"] = arguments
        if self.closed:
            raise DebugpyGone("debugpy adapter is gone")
        return self.ep.send(msg, lambda m: register(m["seq"]))["seq"]

    def request(self, command: str, arguments: Optional[Dict[str, Any]] = None,
                on_response: Optional[ResponseCallback] = None) -> int:
        """Send a request; ``on_response`` is called (in the reader thread) with the answer."""
        def register(seq: int) -> None:
            if on_response is not None:
                self._pending.expect(seq, on_response)

        return self._send(command, arguments, register)

    def call(self, command: str, arguments: Optional[Dict[str, Any]] = None,
             timeout: float = 10.0) -> Message:
        """Blocking request (never call from the reader thread)."""
        seq = self._send(command, arguments, self._pending.expect)
        try:
            return self._pending.wait(seq, timeout)
        except TimeoutError:
            raise DebugpyGone(f"debugpy did not answer {command} within {timeout}s") from None
        finally:
            self._pending.discard(seq)

    def respond(self, request_seq: int, command: str, body: Optional[Dict[str, Any]] = None,
                success: bool = True, message: Optional[str] = None) -> None:
        """Answer a reverse request from debugpy."""
        self.ep.respond(request_seq, command, body, success, message)

    def _read(self) -> None:
        for msg in self.ep.messages():
            if self._log is not None:
                self._log("debugpy -> " + (json.dumps(msg) if isinstance(msg, dict) else repr(msg)))
            if isinstance(msg, BadMessage):
                continue
            kind = msg.get("type")
            if kind == "response":
                try:
                    self._pending.resolve(msg.get("request_seq", -1), msg)
                except Exception as e:
                    print(f"dap_adapter: response handler failed: {e!r}", file=sys.stderr)
            elif kind == "event":
                try:
                    self._on_event(msg)
                except Exception as e:
                    print(f"dap_adapter: event handler failed: {e!r}", file=sys.stderr)
            elif kind == "request":
                self._on_reverse_request(msg)
        self.closed = True
        self._pending.close()
        self._on_close(self)

    def close(self) -> None:
        self.ep.close()
        if self.proc is not None:
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
