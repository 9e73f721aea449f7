"""Build pauses as the adapter sees them: announced by the agent, then stopped in pydevd.

The agent announces a pause over the side channel (and waits for the answer)
before its thread enters the pause frame; the next ``stopped`` event with
reason ``function breakpoint`` is that pause. Here that event is rewritten
into what the user sees (reason, description, ``text`` = the DRef, the hit
build breakpoints), the pause is remembered under its DAP thread id until the
agent says it resumed, and ``exceptionInfo`` for a failed build is answered.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional

from dap_adapter.common.protocol import BEFORE, FAILURE


@dataclass
class PauseInfo:
    """One build pause: what the agent announced, and its DAP thread once stopped."""

    kind: str
    name: str
    dref: str
    exception: Optional[Dict[str, Any]] = None
    thread_id: Optional[int] = None

    def description(self) -> str:
        if self.kind == FAILURE:
            e = self.exception or {}
            return f"Build of {self.name} failed: {e.get('typeName')}: {e.get('message')}"
        return f"Paused before building {self.name}"


class Pauses:
    """Announced and current build pauses (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._announced: Deque[PauseInfo] = deque()
        self._by_thread: Dict[int, PauseInfo] = {}

    def announce(self, params: Dict[str, Any]) -> None:
        """The agent is about to stop for this pause."""
        info = PauseInfo(kind=str(params.get("kind", BEFORE)), name=str(params.get("name", "?")),
                         dref=str(params.get("dref", "")), exception=params.get("exception"))
        with self._lock:
            self._announced.append(info)

    def on_stopped(self, body: Dict[str, Any], hit_ids: Callable[[str], List[int]]) -> Dict[str, Any]:
        """Rewrite a pydevd ``stopped`` body if it is an announced build pause."""
        if body.get("reason") != "function breakpoint":
            return body
        with self._lock:
            if not self._announced:
                return body  # an ordinary Python function breakpoint
            pause = self._announced.popleft()
            tid = body.get("threadId")
            pause.thread_id = tid
            if isinstance(tid, int):
                self._by_thread[tid] = pause
        out = {k: v for k, v in body.items() if k != "hitBreakpointIds"}
        out["text"] = pause.dref
        out["description"] = pause.description()
        out["allThreadsStopped"] = True
        if pause.kind == FAILURE:
            out["reason"] = "exception"
        else:
            out["reason"] = "function breakpoint"
            ids = hit_ids(pause.name)
            if ids:
                out["hitBreakpointIds"] = ids
        return out

    def resumed(self, dref: str) -> None:
        """The agent's pause frame returned."""
        with self._lock:
            for tid, p in list(self._by_thread.items()):
                if p.dref == dref:
                    del self._by_thread[tid]
            # announced but never stopped (no trace function): forget it
            self._announced = deque(p for p in self._announced if p.dref != dref)

    def at(self, thread_id: Any) -> Optional[PauseInfo]:
        with self._lock:
            return self._by_thread.get(thread_id)

    def threads(self) -> List[int]:
        with self._lock:
            return list(self._by_thread)

    def clear(self) -> None:
        with self._lock:
            self._by_thread.clear()
            self._announced.clear()


def exception_info(pause: PauseInfo) -> Dict[str, Any]:
    """``exceptionInfo`` response body for a failed-build pause."""
    e = pause.exception or {}
    return {
        "exceptionId": e.get("fullTypeName") or e.get("typeName") or "Exception",
        "description": pause.description(),
        "breakMode": "always",
        "details": {"message": e.get("message", ""), "typeName": e.get("typeName", ""),
                    "fullTypeName": e.get("fullTypeName", ""), "stackTrace": e.get("stackTrace", "")},
    }
