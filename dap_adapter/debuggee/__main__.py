"""Entry point of the debuggee:
``python -m dap_adapter.debuggee (--program P | --module M) [--stop-on-entry] -- ARGS``.

The session launches this module through debugpy instead of the user's
program. It connects the agent to the adapter (address and secret come in the
environment and are removed from it before the program runs), drops tracing
while only build breakpoints are set (:mod:`dap_adapter.debuggee.tracing`), and runs
the program as ``__main__`` the way ``python P ARGS`` / ``python -m M ARGS``
would: same ``sys.argv``, same ``sys.path[0]``, exceptions and exit codes
untouched.

:func:`dap_adapter.debuggee.attach.serve_attach` makes a running process attachable
instead (``pylightnix debug --listen``).
"""
from __future__ import annotations

import os
import runpy
import sys
from typing import List


def main(argv: List[str]) -> None:
    if len(argv) < 2 or argv[0] not in ("--program", "--module"):
        raise SystemExit("usage: python -m dap_adapter.debuggee (--program PATH | --module NAME) -- ARGS")
    kind, target = argv[0], argv[1]
    rest = argv[2:]
    stop_on_entry = bool(rest) and rest[0] == "--stop-on-entry"
    if stop_on_entry:
        rest = rest[1:]
    if rest and rest[0] == "--":
        rest = rest[1:]
    from dap_adapter import bundle
    bundle.use()  # IPython for the Debug Console, if this interpreter has none
    from dap_adapter.debuggee import agent, tracing
    agent.install()
    agent.start_from_env()
    sys.argv = [target, *rest]
    sys.path[0] = os.path.dirname(os.path.abspath(target)) if kind == "--program" else os.getcwd()
    if stop_on_entry:  # stop at the program's first line (the adapter reports it as "entry")
        tracing.step_into(my_code=True)
    else:
        tracing.go_untraced()
    try:
        if kind == "--program":
            runpy.run_path(target, run_name="__main__")
        else:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException:
        # untraced, pydevd did not see the exception leave the program: report it now,
        # so the "Uncaught Exceptions" filter still stops (post mortem)
        if tracing.is_untraced():
            tracing.report_uncaught(sys.exc_info())
        raise


if __name__ == "__main__":
    main(sys.argv[1:])
