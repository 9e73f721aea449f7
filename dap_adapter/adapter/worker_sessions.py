"""The parent session's side of builds paused on workers: one child session each.

With an executor, a build that hits a build breakpoint pauses on its worker
(:mod:`pylightnix.scale.hub`), and the driver's agent reports it (``worker_paused``).
As debugpy does for subprocesses, the parent then asks the client for a child
session with the reverse request ``startDebugging``: an ``attach`` configuration
naming the paused build (``pylightnixPause``) and the driver's pause hub
(``connect``). The client starts a new adapter for it, which attaches through
the hub (:meth:`~dap_adapter.adapter.agent_peer.AgentPeer.connect_paused_build`)
and shows the build paused in its worker, with its own Debug Console. A client
that cannot start child sessions gets a console line with ``pylightnix attach ID``.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from dap_adapter.common import protocol

if TYPE_CHECKING:
    from dap_adapter.adapter.session import Session


def session_name(pause: Dict[str, Any]) -> str:
    """What the Call Stack calls the child session."""
    from pylightnix.scale.remote_pause import worker_label
    where = worker_label(pause.get("where"), pause.get("pid"))
    if pause.get("kind") == protocol.FAILURE:
        return f"Build of {pause.get('name')} failed ({where})"
    return f"Paused before building {pause.get('name')} ({where})"


class WorkerSessions:
    """Builds paused on workers that the parent session knows of (thread-safe)."""

    def __init__(self, session: "Session") -> None:
        self.session = session
        self._lock = threading.Lock()
        self._paused: Dict[str, Dict[str, Any]] = {}
        self._inherited: Dict[str, Any] = {}

    def inherit(self, arguments: Dict[str, Any]) -> None:
        """The launch or attach arguments the child sessions inherit (justMyCode, rules...)."""
        self._inherited = dict(arguments)

    def active(self) -> List[Dict[str, Any]]:
        with self._lock:
            return list(self._paused.values())

    def configuration(self, pause: Dict[str, Any]) -> Dict[str, Any]:
        """The child session's attach configuration."""
        cfg: Dict[str, Any] = {k: v for k, v in self._inherited.items()
                               if k in ("justMyCode", "rules", "redirectOutput", "showReturnValue")}
        cfg.update({"type": "pylightnix", "request": "attach", "name": session_name(pause),
                    "connect": {"host": "127.0.0.1", "port": int(pause["hubPort"])},
                    protocol.PAUSED_BUILD_KEY: {k: pause.get(k) for k in ("id", "name", "dref", "kind", "where", "pid")}})
        return cfg

    def paused(self, pause: Dict[str, Any]) -> None:
        s = self.session
        with self._lock:
            self._paused[str(pause.get("id"))] = pause
        s.builds.paused(str(pause.get("dref")), str(pause.get("name")), where=str(pause.get("where")),
                        pause_id=str(pause.get("id")))
        if not s.client.init_args.get("supportsStartDebuggingRequest"):
            s.client.event("output", {"category": "console", "output":
                           f"{session_name(pause)}; this editor cannot open child debug sessions: attach "
                           f"with `pylightnix attach {pause.get('id')}` in a terminal\n"})
            return

        def answered(resp: Optional[Dict[str, Any]]) -> None:
            if resp is not None and not resp.get("success"):
                s.client.event("output", {"category": "stderr", "output":
                               f"pylightnix adapter: the editor did not open a session for "
                               f"{pause.get('name')}: {resp.get('message')}; attach with "
                               f"`pylightnix attach {pause.get('id')}` in a terminal\n"})
        s.client.request("startDebugging", {"request": "attach", "configuration": self.configuration(pause)},
                         answered)

    def resumed(self, body: Dict[str, Any]) -> None:
        with self._lock:
            self._paused.pop(str(body.get("id")), None)
        self.session.builds.resumed(str(body.get("dref")), str(body.get("name")), str(body.get("state")))
