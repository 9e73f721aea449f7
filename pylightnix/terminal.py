"""The terminal frontend: at a build pause, open an embedded IPython shell.

This is the plain fallback for terminals and SSH sessions (no editor needed).
When the engine pauses before building a derivation (a build breakpoint) or
after its realizer raised (break-on-failure), :class:`TerminalFrontend` opens
an IPython shell whose namespace holds the script's ``__main__`` globals plus
the pause's ``name``, ``dref``, ``config``, ``buildargs`` (and, for a failure,
``b`` and ``exc``). Leaving the shell resumes the engine, which then does what
the pause says: commit (``repl_continueBuild(b)``), cancel (``repl_cancel()``)
or, if left pending, the default (run the realizer / re-raise).

Without a terminal (stdin is not a TTY, or the process is a background job) a pause cannot be served: the frontend
prints one line on stderr and either continues or cancels the build, as chosen
with ``--no-tty=continue|fail`` or ``PYLIGHTNIX_NO_TTY``. It never waits for
input that cannot come.

IPython is imported only when a shell actually opens, so importing this module
(which ``import pylightnix`` does) stays cheap.
"""
from __future__ import annotations

import os
import re
import sys
import traceback
import types
from typing import Any, Dict, List, Optional, TextIO

from pylightnix import settings
from pylightnix.events import (BEFORE, CANCELLED, COMMITTED, FAILURE, BuildPause, Frontend, format_folded,
                               user_traceback)

#: what a pause does when there is no terminal to open a shell in
NO_TTY_CONTINUE, NO_TTY_FAIL = NO_TTY_CHOICES = settings.NO_TTY_CHOICES
#: environment variable choosing the no-terminal behaviour (default ``continue``)
NO_TTY_ENV = "PYLIGHTNIX_NO_TTY"

_PREFIX = "pylightnix:"
_LOCATION = "pylightnix.terminal"  # IPython embed location id


def no_tty_policy(value: Optional[str] = None) -> str:
    """Validate a ``--no-tty`` choice; ``None`` reads ``$PYLIGHTNIX_NO_TTY``."""
    return settings.no_tty(value) or NO_TTY_CONTINUE


def terminal_problem() -> Optional[str]:
    """Why no shell can open here (``None`` if one can): stdin must be a terminal
    and this process must be in its foreground (a background job that reads the
    terminal would just be stopped by SIGTTIN)."""
    stdin = sys.stdin
    try:
        if stdin is None or stdin.closed or not stdin.isatty():
            return "stdin is not a terminal"
        fd = stdin.fileno()
    except (AttributeError, ValueError, OSError):
        return "stdin is not a terminal"
    try:
        if os.tcgetpgrp(fd) != os.getpgrp():
            return "this process runs in the background of its terminal"
    except OSError:
        pass  # no job control information: assume foreground
    return None


def _describe(pause: BuildPause) -> str:
    if pause.kind == FAILURE:
        exc = pause.exception
        what = f"{type(exc).__name__}: {exc}" if exc is not None else "unknown error"
        return f"build of {pause.name} failed ({what})"
    return f"paused before building {pause.name}"


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory when it is below it (shorter, and
    still clickable in editors' terminals), else absolute."""
    rel = os.path.relpath(path)
    return path if rel.startswith(os.pardir) else rel


def banner(pause: BuildPause) -> str:
    """The text shown when the shell opens: where we are and what to type."""
    lines = [f"=== pylightnix: {_describe(pause)} ===",
             f"    {pause.dref}"]
    loc = pause.location()
    if loc is not None:
        what = "raised at" if pause.kind == FAILURE else "declared at"
        lines.append(f"    {what} {_shown_path(loc[0])}:{loc[1]}")
    if pause.breakpoint and pause.kind == BEFORE:
        lines.append(f"    (build breakpoint {pause.breakpoint!r})")
    lines.append("In scope: your script's globals, name, dref, config, buildargs"
                 + (", b (the failed Build, state intact), exc (the exception)"
                    if pause.kind == FAILURE else "") + ".")
    if pause.kind == FAILURE:
        lines += [
            "  fix the broken function, rerun that part on b, then:",
            "  repl_continueBuild(b)          commit b's outputs as the realization",
            "  repl_cancel()                  cancel: realize() raises BuildCancelled",
            "  exit or Ctrl-D                 give up: the exception propagates",
        ]
    else:
        cls = pause.build_class
        if cls is not None:
            make = f"  b = {cls.__name__}(repl_buildargs())"
            lines += [f"{make:<31}  build by hand (the stage's Build class),",
                      f"{'':<33}then run your stage functions on b"]
        lines += [
            "  repl_continueBuild(b)          commit b's outputs as the realization",
            "  repl_cancel()                  cancel: realize() raises BuildCancelled",
            "  exit or Ctrl-D                 continue: the stage's realizer runs",
        ]
    return "\n".join(lines)


_COMMENTED_EXIT = re.compile(r"\s*(exit|quit)\s*#[^\n]*\n?")


def exit_without_comment(lines: List[str]) -> List[str]:
    """An IPython input transformer: a cell that is only ``exit`` or ``quit`` with a trailing
    comment becomes the bare word. IPython's autocall would make it ``exit(# ...)``, a
    SyntaxError, and the README's transcripts are typed comments included."""
    if len(lines) == 1:
        m = _COMMENTED_EXIT.fullmatch(lines[0])
        if m:
            return [m.group(1) + "\n"]
    return lines


def pause_namespace(pause: BuildPause) -> Dict[str, Any]:
    """The shell's own variables for ``pause`` (the script's globals come on top).

    ``buildargs`` is a ready :class:`BuildArgs` (``Model(buildargs)`` works like
    ``Model(repl_buildargs())``); it is an immutable tuple whose output folders
    land in the engine's per-build temporary folder, so it costs nothing to make.
    """
    import pylightnix
    ns: Dict[str, Any] = {
        "name": pause.name,
        "dref": pause.dref,
        "config": pause.config,
        "buildargs": pause.buildargs(),
        "pause": pause,
    }
    for helper in ("repl_buildargs", "repl_continueBuild", "repl_cancel",
                   "lsref", "catref", "rmref", "shell", "shellref", "du"):  # the last six: pylightnix.bashlike
        if hasattr(pylightnix, helper):
            ns[helper] = getattr(pylightnix, helper)
    if pause.kind == FAILURE:
        ns["b"] = pause.build
        ns["exc"] = pause.exception
    if pause.build_class is not None:  # the banner's ``b = C(repl_buildargs())`` works as typed
        ns[pause.build_class.__name__] = pause.build_class
    return ns


class TerminalFrontend(Frontend):
    """Serves build pauses with an embedded IPython shell in the terminal.

    One IPython shell object is created on the first pause and reused for the
    following ones; each pause gets a fresh local namespace, so variables typed
    at one pause never leak into the script or into the next pause (assign to
    ``__main__`` explicitly if you want that).
    """

    #: what it attaches to builds paused on workers with (pylightnix.remote)
    remote_service = "console"

    def __init__(self, no_tty: Optional[str] = None, *, stderr: Optional[TextIO] = None) -> None:
        self.no_tty = no_tty_policy(no_tty)
        #: the user chose a no-terminal policy (else a pause on a worker waits for an attach)
        self.no_tty_explicit = no_tty is not None or settings.no_tty() is not None
        self._attached_here = False
        self._stderr = stderr
        self._shell: Any = None
        #: failures left to propagate whose traceback was printed at their pause
        self.shown: List[BaseException] = []

    # -- Frontend hooks -----------------------------------------------------
    def on_pause(self, *, pause: BuildPause, **kw: Any) -> None:
        self._serve(pause)

    def on_failure(self, *, pause: BuildPause, **kw: Any) -> None:
        self._serve(pause)

    def on_remote_pause(self, *, remote: Any, **kw: Any) -> None:
        """A build paused on a worker: say how to attach; on an interactive terminal with
        nothing attached yet, offer to attach right here."""
        self._say(f"{remote.describe()}; attach with: pylightnix attach {remote.id}")
        problem = terminal_problem()
        if problem is not None:
            if self.no_tty_explicit:  # --no-tty/PYLIGHTNIX_NO_TTY: do not wait for an attach
                if self.no_tty == NO_TTY_FAIL:
                    self._say(f"{remote.name}: cancelling the build ({NO_TTY_ENV}/--no-tty=fail)")
                    remote.cancel()
                else:
                    self._say(f"{remote.name}: continuing ({NO_TTY_ENV}/--no-tty=continue)")
                    remote.resume()
            return
        if self._attached_here:
            return
        try:
            answer = _ask(f"{_PREFIX} attach here? [Y/n] ").strip().lower()
        except (EOFError, KeyboardInterrupt):  # Ctrl-D, Ctrl-C: "no"
            answer = "n"
        if answer not in ("", "y", "yes"):
            self._say(f"not attaching; {remote.name} stays paused: pylightnix attach {remote.id}")
            return
        from pylightnix.remote import CONSOLE, AttachError
        from pylightnix.remote_console import run_client
        self._attached_here = True
        try:
            run_client(*remote.open(CONSOLE), sys.stdout)
        except AttachError as e:
            self._say(f"cannot attach here: {e}")
        finally:
            self._attached_here = False

    def on_remote_detached(self, *, remote: Any, **kw: Any) -> None:
        wait = remote.reattach_timeout
        self._say(f"{remote.name} ({remote.id}): the attached console's connection dropped; the build stays "
                  f"paused for {wait:g} s (then it is cancelled): pylightnix attach {remote.id}")

    def on_remote_resumed(self, *, remote: Any, **kw: Any) -> None:
        what = {"committed": "committed by hand; continuing", "cancelled": "build cancelled",
                "lost": "the worker went away"}.get(remote.state, "continuing on its worker")
        self._say(f"{remote.name} ({remote.id}): {what}")

    # -- implementation -----------------------------------------------------
    @property
    def stderr(self) -> TextIO:
        return self._stderr if self._stderr is not None else sys.stderr

    def _say(self, text: str) -> None:
        print(f"{_PREFIX} {text}", file=self.stderr, flush=True)

    def _serve(self, pause: BuildPause) -> None:
        problem = terminal_problem()
        if problem is not None:
            self._no_terminal(pause, problem)
            return
        exc = pause.exception if pause.kind == FAILURE else None
        if exc is not None:
            self.stderr.write(format_folded(exc, user_traceback(exc.__traceback__)))
        self._open_shell(pause)
        self._report(pause)
        if exc is not None and pause.kind == FAILURE and pause.state not in (COMMITTED, CANCELLED):
            self._shown(exc)

    def _shown(self, exc: BaseException) -> None:
        """``exc`` propagates, and its traceback is on the screen already: if it ends the
        program, the interpreter prints its last line only (other exceptions as before)."""
        self.shown.append(exc)
        previous = sys.excepthook

        def excepthook(kind: type, value: BaseException, tb: Any) -> None:
            if any(value is e for e in self.shown):
                self.stderr.write("".join(traceback.format_exception_only(kind, value)).rstrip("\n")
                                  + "  (its traceback is above, where the build paused)\n")
            else:
                previous(kind, value, tb)

        sys.excepthook = excepthook

    def _no_terminal(self, pause: BuildPause, problem: str) -> None:
        why = f"{_describe(pause)} ({pause.dref}), but {problem}, so no shell can open"
        if pause.kind == FAILURE:
            # Either policy ends in failure; the original exception says most.
            self._say(f"{why}; the exception propagates "
                      f"(run in a terminal to fix and commit by hand)")
        elif self.no_tty == NO_TTY_FAIL:
            pause.cancel()
            self._say(f"{why}; cancelling the build ({NO_TTY_ENV}/--no-tty=fail)")
        else:
            self._say(f"{why}; continuing, the stage's realizer runs "
                      f"({NO_TTY_ENV}/--no-tty=continue)")

    def _report(self, pause: BuildPause) -> None:
        if pause.state == COMMITTED:
            self._say(f"{pause.name}: committed {', '.join(pause.rrefs or [])}; continuing")
        elif pause.state == CANCELLED:
            self._say(f"{pause.name}: build cancelled")
        elif pause.kind == FAILURE:
            self._say(f"{pause.name}: nothing committed; the exception propagates")
        else:
            self._say(f"{pause.name}: continuing, the stage's realizer runs")

    def _make_shell(self) -> Any:
        from IPython.terminal.embed import InteractiveShellEmbed
        from IPython.terminal.ipapp import load_default_config

        config = load_default_config()
        config.InteractiveShellEmbed = config.TerminalInteractiveShell
        config.InteractiveShellEmbed.confirm_exit = False
        config.InteractiveShellEmbed.term_title = False
        saved_hook = sys.excepthook  # the embed shell replaces it; keep the script's
        try:
            shell = InteractiveShellEmbed(config=config, banner1="", exit_msg="",
                                          _init_location_id=_LOCATION)
        finally:
            sys.excepthook = saved_hook
        shell.input_transformers_cleanup.append(exit_without_comment)
        return shell

    def _open_shell(self, pause: BuildPause) -> None:
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.terminal.embed import InteractiveShellEmbed, KillEmbedded

        # Like IPython.embed(): our shell is "the" IPython instance while it
        # runs (get_ipython(), magics), and whatever was there before comes back.
        saved = InteractiveShell._instance
        if saved is not None:
            type(saved).clear_instance()
        ps = (getattr(sys, "ps1", None), getattr(sys, "ps2", None))
        saved_hook = sys.excepthook
        try:
            if self._shell is None:
                self._shell = self._make_shell()
            shell = self._shell
            for cls in InteractiveShellEmbed._walk_mro():
                cls._instance = shell
            shell._call_location_id = _LOCATION
            shell.embedded_active = True  # undo a %kill_embedded from an earlier pause
            main = sys.modules.get("__main__")
            module = main if isinstance(main, types.ModuleType) else types.ModuleType("__main__")
            # The shell's namespace is a *copy* of the script's globals plus the
            # pause's variables: magics (%timeit, %whos) see everything, while
            # assignments stay in the shell and never clobber the script.
            local_ns = dict(vars(module))
            local_ns.update(pause_namespace(pause))
            shell.execution_count = 1  # each pause's shell starts at In [1]
            try:
                shell(header=banner(pause), local_ns=local_ns, module=module,
                      _call_location_id=_LOCATION)
            except KillEmbedded:
                # %exit_raise: the user wants out; the clean way out is a cancel.
                shell.should_raise = False
                pause.cancel()
        finally:
            InteractiveShellEmbed.clear_instance()
            if saved is not None:
                for cls in type(saved)._walk_mro():
                    cls._instance = saved
            if ps[0] is not None:
                sys.ps1, sys.ps2 = ps
            sys.excepthook = saved_hook


def _ask(question: str) -> str:
    """A line typed at the terminal. prompt_toolkit reads it with the terminal in raw mode,
    so Ctrl-C is a key for this process (KeyboardInterrupt here), not a SIGINT to the
    whole foreground group, which holds the worker processes whose builds run meanwhile."""
    from prompt_toolkit import prompt
    return prompt(question)


def default_frontend() -> Frontend:
    """Factory for :func:`pylightnix.events.set_default_frontend`: the terminal
    frontend with the no-terminal policy from ``$PYLIGHTNIX_NO_TTY``."""
    return TerminalFrontend()
