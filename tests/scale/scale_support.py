"""Helpers for the scale-out tests (a module name of its own: every test folder has a conftest)."""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from typing import Any, Dict, List, Tuple

import pytest


def use_store(monkeypatch: pytest.MonkeyPatch, root: str) -> None:
    """Make ``root`` the current store (as PYLIGHTNIX_ROOT)."""
    import pylightnix
    monkeypatch.setenv("PYLIGHTNIX_ROOT", root)
    pylightnix.store_initialize()


def snapshot(closure, with_rrefs: bool) -> Dict[str, List[Tuple[str, Dict[str, bytes]]]]:  # type: ignore[no-untyped-def]
    """Every realization of the closure's derivations: its RRef (or '' when RRefs are not
    compared) and its files' contents, context.json and __buildtime__.txt left out."""
    from pylightnix import rref2path, store_rrefs_
    out = {}
    for d in closure.derivations:
        reals = []
        for r in store_rrefs_(d.dref):
            root = rref2path(r)
            files = {}
            for dirpath, _, names in os.walk(root):
                for n in names:
                    rel = os.path.relpath(os.path.join(dirpath, n), root)
                    if rel not in ("context.json", "__buildtime__.txt"):
                        files[rel] = open(os.path.join(dirpath, n), "rb").read()
            reals.append((r if with_rrefs else "", files))
        out[d.dref] = sorted(reals, key=lambda t: (t[0], sorted(t[1].items())))
    return out


class OutputReader:
    """A subprocess whose merged stdout and stderr are read line by line as they come
    (``lines``), so that a test can wait for a line while the process runs."""

    def __init__(self, argv: List[str], env: Dict[str, str], stdin: Any = subprocess.DEVNULL) -> None:
        self.proc = subprocess.Popen(argv, env=env, stdin=stdin, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines: List[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, pattern: "re.Pattern[str]", count: int = 1, timeout: float = 90) -> List["re.Match[str]"]:
        """The first ``count`` lines matching ``pattern``, waiting for them; fails when the
        process ends or ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                hits = [m for m in map(pattern.search, self.lines) if m]
                if len(hits) >= count:
                    return hits
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError(f"no {pattern.pattern!r} x{count} in the output:\n" + "\n".join(self.lines))
                self._cond.wait(min(left, 0.2))

    def finish(self, timeout: float = 90) -> str:
        """Wait for the process to end; all its output."""
        self.proc.wait(timeout)
        time.sleep(0.1)  # the reader thread takes the last lines
        return "\n".join(self.lines)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
