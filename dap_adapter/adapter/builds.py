"""The running realization as the "Pylightnix" view shows it: one state per derivation.

The parent session feeds it what the driver's agent reports (progress, pauses in
the driver, pauses on workers, builds done) and sends the whole table to the
client as the custom DAP event ``pylightnixBuilds`` after each change:
``{"builds": [{"dref", "name", "state", "where", "pauseId"}]}`` with ``state``
one of ``building``, ``paused``, ``failed``, ``done``, ``cancelled``, and, once the
realization is done, ``cached`` for the instantiated derivations it did not build.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List, Optional

EVENT = "pylightnixBuilds"


class Builds:
    """Derivation states of the current realization (thread-safe)."""

    def __init__(self, send: Callable[[str, Dict[str, Any]], None]) -> None:
        self._send = send
        self._lock = threading.Lock()
        self._rows: Dict[str, Dict[str, Any]] = {}
        self._known: Dict[str, str] = {}  # instantiated derivations: dref -> name

    def _set(self, dref: str, name: str, **fields: Any) -> None:
        with self._lock:
            row = self._rows.setdefault(dref, {"dref": dref, "name": name, "state": "building",
                                               "where": None, "pauseId": None})
            row.update(fields)
            table = {"builds": [dict(r) for r in self._rows.values()]}
        self._send(EVENT, table)

    def instantiated(self, derivations: List[List[str]]) -> None:
        """A closure was instantiated (``[[dref, name], ...]``): what is not built is cached."""
        with self._lock:
            self._known.update({str(d): str(n) for d, n in derivations})

    def progress(self, body: Dict[str, Any]) -> None:
        """An agent ``progress`` notification: a stage starts building, or the run ended."""
        if body.get("done"):
            outcome = str(body.get("outcome", "done"))
            with self._lock:
                open_rows = [r for r in self._rows.values() if r["state"] in ("building", "paused")]
            for r in open_rows:
                self._set(r["dref"], r["name"], state="done" if outcome == "done" else
                          "cancelled" if outcome == "cancelled" else "failed", pauseId=None)
            if outcome == "done":
                with self._lock:
                    cached = [(d, n) for d, n in self._known.items() if d not in self._rows]
                for d, n in cached:  # needed and matched from the store, never built
                    self._set(d, n, state="cached")
            return
        if body.get("dref"):
            self._set(str(body["dref"]), str(body.get("name", "?")), state="building",
                      where=str(body.get("where") or "driver"), pauseId=None)

    def built(self, dref: str, name: str) -> None:
        self._set(dref, name, state="done", pauseId=None)

    def paused(self, dref: str, name: str, where: str = "driver", pause_id: Optional[str] = None,
               failed: bool = False) -> None:
        self._set(dref, name, state="failed" if failed else "paused", where=where, pauseId=pause_id)

    def resumed(self, dref: str, name: str, state: str) -> None:
        """A pause ended: ``committed``/``continued``/``cancelled``/``lost`` (or an engine state)."""
        new = {"committed": "done", "cancelled": "cancelled", "lost": "failed"}.get(state, "building")
        self._set(dref, name, state=new, pauseId=None)

    def rows(self) -> List[Dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._rows.values()]
