"""Deadlines for forwarded requests: the client never waits forever on debugpy."""
from __future__ import annotations

import threading
import time
from typing import Callable, Dict, Optional, Tuple


class Watchdog:
    """Calls a request's ``on_timeout`` if it is not discarded in time (one thread for all)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._lock = threading.Lock()
        self._due: Dict[int, Tuple[float, Callable[[], None]]] = {}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def add(self, key: int, on_timeout: Callable[[], None]) -> None:
        with self._lock:
            self._due[key] = (time.monotonic() + self.timeout, on_timeout)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="dap-watchdog", daemon=True)
                self._thread.start()

    def discard(self, key: int) -> None:
        with self._lock:
            self._due.pop(key, None)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            now = time.monotonic()
            with self._lock:
                late = [(k, cb) for k, (t, cb) in self._due.items() if t <= now]
                for k, _ in late:
                    del self._due[k]
            for _, cb in late:
                cb()

    def stop(self) -> None:
        self._stop.set()
