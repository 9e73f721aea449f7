"""A realization's progress as DAP ``progressStart``/``progressUpdate``/``progressEnd``.

The agent in the debuggee forwards the engine's ``on_progress`` (a stage starts
building) and ``on_realize_end`` as ``progress`` notifications; here they become
one cancellable progress per realization, e.g. "Realizing: convnn_mnist (2 of 5)",
shown only to clients whose ``initialize`` said ``supportsProgressReporting``.
A realization whose stages are all cached shows none.
"""
from __future__ import annotations

import itertools
import threading
from typing import Any, Callable, Dict, Optional

_ids = itertools.count(1)
OUTCOMES = {"done": "Done", "failed": "Failed", "cancelled": "Cancelled"}


class BuildProgress:
    """The current realization's progress, sent through ``send(event, body)``."""

    def __init__(self, send: Callable[[str, Dict[str, Any]], None]) -> None:
        self.send = send
        self.enabled = False
        self._id: Optional[str] = None
        self._lock = threading.Lock()

    def is_current(self, progress_id: Any) -> bool:
        with self._lock:
            return progress_id is not None and progress_id == self._id

    def update(self, body: Dict[str, Any]) -> None:
        """One notification from the agent: a stage starts building, or ``done``."""
        if body.get("done"):
            self.end(OUTCOMES.get(str(body.get("outcome")), "Done"))
            return
        if not self.enabled:
            return
        index, total = int(body.get("index", 0)), max(1, int(body.get("total", 1)))
        message = f"{body.get('name', '?')} ({index + 1} of {total})"
        percentage = round(100.0 * index / total, 1)
        with self._lock:
            start = self._id is None
            if start:
                self._id = f"pylightnix-realize-{next(_ids)}"
            pid = self._id
        if start:
            self.send("progressStart", {"progressId": pid, "title": "Realizing", "message": message,
                                        "percentage": percentage, "cancellable": True})
        else:
            self.send("progressUpdate", {"progressId": pid, "message": message, "percentage": percentage})

    def paused(self, name: str, failed: bool) -> None:
        """A build pause: say so instead of the stage built before it."""
        with self._lock:
            pid = self._id
        if pid is not None:
            what = "build failed, paused" if failed else "paused before building"
            self.send("progressUpdate", {"progressId": pid, "message": f"{name}: {what}"})

    def end(self, message: str) -> None:
        with self._lock:
            pid, self._id = self._id, None
        if pid is not None:
            self.send("progressEnd", {"progressId": pid, "message": message})
