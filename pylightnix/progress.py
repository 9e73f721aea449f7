"""The progress frontend: what a realization shows while it builds.

The engine never prints; it emits ``on_realize_start``, ``on_progress`` (a stage
starts building), ``on_built`` and ``on_realize_end``. This frontend turns them
into output on stderr:

- on a terminal, a live line (rich): stage i of N, its name, how many stages
  were cached, and the elapsed time; it disappears at a pause and at the end,
  where one summary line remains;
- otherwise (a pipe, a file, CI), one line per built stage plus a summary;
  also on a terminal once a stage builds on a worker (``Processes``, Dask),
  whose own prints would otherwise land on the live line.

Cached stages print nothing, so a realization that builds nothing is silent.
``PYLIGHTNIX_PROGRESS=0`` silences both.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, List, Optional, TextIO

from pylightnix import settings
from pylightnix.errors import BuildCancelled
from pylightnix.events import BuildPause, Frontend

PREFIX = "[pylightnix]"


def enabled() -> bool:
    """False when ``$PYLIGHTNIX_PROGRESS`` is off (:func:`pylightnix.settings.progress`)."""
    return settings.progress()


class _Run:
    """One realization being shown."""

    def __init__(self, target: str, total: int) -> None:
        self.name = target.split("-", 1)[-1]
        self.total = total
        self.started = time.monotonic()
        self.building = 0  # stages whose build started
        self.built = 0     # stages whose build finished
        self.index = 0     # 0-based position of the stage being built


class _Live:
    """A rich progress line on a terminal, stopped while the user works at a pause."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn(PREFIX, markup=False), TextColumn("{task.description}", markup=False), BarColumn(bar_width=20),
                                 TimeElapsedColumn(), console=Console(file=stream), transient=True)
        self.task: Any = None
        self.running = False

    def show(self, run: _Run, name: str, where: str = "driver") -> None:
        cached = run.index - run.built
        text = (f"building {name}{_on(where)} (stage {run.index + 1} of {run.total}"
                + (f", {cached} cached)" if cached else ")"))
        if self.task is None:
            self.task = self.progress.add_task(text, total=run.total)
        self.progress.update(self.task, description=text, completed=run.index)
        if not self.running:
            self.progress.start()
            self.running = True

    def stop(self) -> None:
        if self.running:
            self.progress.stop()
            self.running = False


class ProgressFrontend(Frontend):
    """Shows realizations on ``stream`` (default: the current ``sys.stderr``)."""

    handles_pauses = False

    def __init__(self, stream: Optional[TextIO] = None) -> None:
        self._stream = stream
        self._local = threading.local()

    # -- state per thread: nested realizations (a realize inside a realizer) share the outer display
    def _runs(self) -> List[_Run]:
        runs = getattr(self._local, "runs", None)
        if runs is None:
            runs = self._local.runs = []
        return runs

    def _out(self) -> TextIO:
        return self._stream or sys.stderr

    def _live(self) -> Optional[_Live]:
        live = getattr(self._local, "live", None)
        if live is None and _is_terminal(self._out()):
            live = self._local.live = _Live(self._out())
        return live

    def _print(self, line: str) -> None:
        out = self._out()
        out.write(line + "\n")
        out.flush()

    # -- engine events
    def on_realize_start(self, *, target: str, total: int, **kw: Any) -> None:
        self._runs().append(_Run(target, total) if enabled() else None)  # type: ignore[arg-type]

    def on_progress(self, *, index: int, total: int, dref: str, name: str, where: str = "driver",
                    **kw: Any) -> None:
        runs = self._runs()
        if not runs or runs[-1] is None:
            return
        run = runs[-1]
        run.index, run.building = index, run.building + 1
        if where != "driver":  # a worker may print to this terminal too: never onto a live line
            self._plain()
        live = None if getattr(self._local, "plain", False) else self._live()
        if live is not None:
            live.show(run, name, where)
        else:
            self._print(f"{PREFIX} building {name}{_on(where)} (stage {index + 1} of {total})")

    def _plain(self) -> None:
        """One line per stage from now on in this realization (the live line ends)."""
        live = getattr(self._local, "live", None)
        if live is not None:
            live.stop()
            self._local.live = None
        self._local.plain = True

    def on_notice(self, *, text: str, **kw: Any) -> None:
        """Printed whatever ``PYLIGHTNIX_PROGRESS`` says: a breakpoint is never moved silently."""
        self._plain()
        self._print(f"{PREFIX} {text}")

    def on_built(self, *, dref: str, name: str, rrefs: List[str], **kw: Any) -> None:
        runs = self._runs()
        if runs and runs[-1] is not None:
            runs[-1].built += 1

    def on_pause(self, *, pause: Optional[BuildPause], **kw: Any) -> None:
        live = getattr(self._local, "live", None)
        if live is not None:
            live.stop()  # the terminal belongs to the user until the next stage starts

    on_failure = on_pause

    def on_remote_pause(self, *, remote: object, **kw: Any) -> None:
        self.on_pause(pause=None)  # the same: a paused build needs the terminal

    def on_realize_end(self, *, target: str, total: int, error: Optional[BaseException], **kw: Any) -> None:
        runs = self._runs()
        if not runs:
            return
        run = runs.pop()
        if not runs:
            self._plain()
            self._local.plain = False
        if run is None or run.building == 0:
            return
        secs = time.monotonic() - run.started
        if error is None:
            self._print(f"{PREFIX} realized {run.name}: {run.built} built, {run.total - run.built} cached, "
                        f"{secs:.1f} s")
        else:
            why = "cancelled" if isinstance(error, (GeneratorExit, BuildCancelled)) else type(error).__name__
            self._print(f"{PREFIX} realization of {run.name} stopped after {secs:.1f} s ({why}): {run.built} of "
                        f"{run.total} stages built")


def _on(where: str) -> str:
    """Where a build runs, for the progress line: nothing for this process."""
    return "" if where == "driver" else f" on {where}"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError):
        return False


def install() -> ProgressFrontend:
    """Register the progress frontend (done once, when pylightnix is imported)."""
    from pylightnix.events import add_frontend

    return add_frontend(ProgressFrontend())  # type: ignore[return-value]
