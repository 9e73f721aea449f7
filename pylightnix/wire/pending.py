"""Requests sent to a peer and not answered yet: the one request/response matcher.

Every peer that answers requests by id uses it: the side channel
(:mod:`pylightnix.wire.channel`), the adapter's connection to debugpy and the test
DAP client (both in ``dap_adapter``). A request is registered under its id
before it is written (so the answer can never come first), with a callback
(called once, in the thread that resolves it) or for a blocking :meth:`Pending.wait`.
When the peer goes away, :meth:`Pending.close` fails everything still open
with the answer ``gone(id)``, and so is any request registered later: nobody
waits forever.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Hashable, Optional


class _Entry:
    __slots__ = ("on_answer", "claimed", "done", "answer")

    def __init__(self, on_answer: Optional[Callable[[Any], None]]) -> None:
        self.on_answer = on_answer
        self.claimed = False  #: an answer (or the failure) is being delivered: never a second one
        self.done = threading.Event()
        self.answer: Any = None


class Pending:
    """Open requests by id; ``gone(id)`` is the answer of each one the peer left open."""

    def __init__(self, gone: Callable[[Hashable], Any] = lambda rid: None) -> None:
        self._gone = gone
        self._lock = threading.Lock()
        self._entries: Dict[Hashable, _Entry] = {}
        self._last_id = 0
        self.closed = False

    def new_id(self) -> int:
        """A fresh request id (1, 2, ...), for peers that do not number their messages."""
        with self._lock:
            self._last_id += 1
            return self._last_id

    def expect(self, rid: Hashable, on_answer: Optional[Callable[[Any], None]] = None) -> None:
        """Register request ``rid``: its answer goes to ``on_answer``, or is kept for :meth:`wait`."""
        entry = _Entry(on_answer)
        with self._lock:
            entry.claimed = self.closed
            self._entries[rid] = entry
        if entry.claimed:
            self._finish(rid, entry, self._gone(rid))

    def resolve(self, rid: Hashable, answer: Any) -> bool:
        """The peer answered ``rid``; False if nobody expects that answer (it is dropped).
        A callback's exception propagates to the caller."""
        with self._lock:
            entry = self._entries.get(rid)
            if entry is None or entry.claimed:
                return False
            entry.claimed = True
        self._finish(rid, entry, answer)
        return True

    def _finish(self, rid: Hashable, entry: _Entry, answer: Any) -> None:
        """Deliver the answer of a claimed entry (a callback's entry is forgotten first)."""
        entry.answer = answer
        if entry.on_answer is not None:
            with self._lock:
                if self._entries.get(rid) is entry:
                    del self._entries[rid]
        entry.done.set()
        if entry.on_answer is not None:
            entry.on_answer(answer)

    def wait(self, rid: Hashable, timeout: Optional[float]) -> Any:
        """The answer to ``rid`` (registered without a callback); ``gone(rid)`` once the peer
        went away. Raises TimeoutError when none came in time; the request stays registered
        (wait again, or :meth:`discard` it)."""
        with self._lock:
            entry = self._entries.get(rid)
            closed = self.closed
        if entry is None:
            if closed:
                return self._gone(rid)
            raise KeyError(f"request {rid!r} was not registered")
        if not entry.done.wait(timeout):
            raise TimeoutError(f"no answer to request {rid!r} within {timeout}s")
        return entry.answer

    def discard(self, rid: Hashable) -> None:
        """Forget ``rid``; a late answer to it is dropped."""
        with self._lock:
            self._entries.pop(rid, None)

    def close(self) -> None:
        """The peer went away: every open request gets ``gone(id)`` (callback exceptions
        are dropped: there is nobody left to tell)."""
        with self._lock:
            self.closed = True
            open_ = [(rid, e) for rid, e in self._entries.items() if not e.claimed]
            for _, e in open_:
                e.claimed = True
        for rid, entry in open_:
            try:
                self._finish(rid, entry, self._gone(rid))
            except Exception:
                pass
