"""Entry point of the debuggee:
``python -m dap_adapter.debuggee (--program P | --module M) [--stop-on-entry] -- ARGS``.

The session launches this module through debugpy instead of the user's
program. It connects the agent to the adapter (address and secret come in the
environment and are removed from it before the program runs), drops tracing
while only build breakpoints are set (:mod:`dap_adapter.tracing`), and runs
the program as ``__main__`` the way ``python P ARGS`` / ``python -m M ARGS``
would: same ``sys.argv``, same ``sys.path[0]``, exceptions and exit codes
untouched.

:func:`serve_attach` makes a running process attachable instead
(``pylightnix debug --listen``).
"""
from __future__ import annotations

import ipaddress
import os
import runpy
import sys
import time
from typing import Any, Dict, List, Optional

ENV_WAIT = "PYLIGHTNIX_DEBUG_WAIT"


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
    from dap_adapter import agent, console, tracing
    methods = agent.install().methods
    methods["interrupt"], methods["exit"] = console.interrupt, _exit_now
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


#: exit status of a program ended by the adapter's ``terminate`` (as if SIGKILLed)
EXIT_TERMINATED = 137


def _exit_now(params: Dict[str, Any]) -> None:
    """Side-channel request ``exit``: ``terminate`` found the program still running."""
    sys.stderr.flush()
    os._exit(EXIT_TERMINATED)


def _wait_for_previous_debugger(timeout: float = 10.0) -> None:
    """A re-attach: pydevd disposes of the previous adapter's connection shortly after it
    went away; until then ``debugpy.connect`` would not connect anew."""
    if "pydevd" not in sys.modules:
        return
    from pydevd import get_global_debugger
    deadline = time.monotonic() + timeout
    while get_global_debugger() is not None:
        if time.monotonic() > deadline:
            raise RuntimeError("a debugger is still connected to this program")
        time.sleep(0.05)


def _connect_debugger(params: Dict[str, Any]) -> Dict[str, Any]:
    """Side-channel request of an authenticated adapter: connect pydevd out to its debugpy
    adapter, presenting the adapter's access token."""
    host, port, token = str(params.get("host", "")), int(params.get("port", 0)), str(params.get("token", ""))
    if not ipaddress.ip_address(host).is_loopback or not 0 < port < 65536 or not token:
        raise ValueError(f"connect_debugger: need a loopback host, a port and a token, got {host}:{port}")
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # stdlib breakpoints are not our use
    import debugpy
    _wait_for_previous_debugger()
    debugpy.connect((host, port), access_token=token)
    return {"ok": True, "pid": os.getpid()}


def serve_attach(host: str, port: int, wait: Optional[bool] = None) -> str:
    """Make this process attachable by ``dap_adapter`` (``pylightnix debug --listen``).

    Listens on ``host:port`` (loopback) for the side channel only, writes the attach
    file with the per-session secret (:mod:`pylightnix.attach_info`) and installs the
    agent. Nothing here listens for a debugger: an adapter that proved the secret asks
    the program (``connect_debugger``) to connect pydevd out to the adapter's own
    debugpy, with that adapter's access token. With ``wait`` (default:
    ``$PYLIGHTNIX_DEBUG_WAIT``), blocks until an adapter has attached and sent its
    breakpoints. Returns the attach file's path; the caller runs the script.
    Raises :class:`pylightnix.attach_info.AttachInfoError` for an unusable attach-file
    directory, OSError when the port cannot be bound.
    """
    from dap_adapter import agent as agent_mod, console, tracing
    from pylightnix import attach_info
    from pylightnix.channel import Listener, new_secret
    if wait is None:
        wait = os.environ.get(ENV_WAIT, "") not in ("", "0", "false", "no")
    attach_info.private_directory()  # refuse a shared directory before listening
    secret = new_secret()
    listener = Listener(secret, port=port, host=host)
    path = attach_info.write(listener.port, {"pid": os.getpid(), "host": listener.host,
                                             "port": listener.port, "secret": secret})
    import atexit
    atexit.register(attach_info.remove, listener.port, os.getpid())
    agent = agent_mod.install()
    agent.methods["connect_debugger"] = _connect_debugger
    agent.methods["interrupt"] = console.interrupt

    def exit_now(params: Dict[str, Any]) -> None:
        attach_info.remove(listener.port, os.getpid())
        _exit_now(params)

    agent.methods["exit"] = exit_now
    listener.serve_forever(agent.attach_channel)
    print(f"pylightnix: waiting for a debugger to attach on {listener.host}:{listener.port} "
          f"(attach file {path})", file=sys.stderr, flush=True)
    if wait:
        agent.configured.wait()
        tracing.go_untraced()
    return path


if __name__ == "__main__":
    main(sys.argv[1:])
