"""What the session sends debugpy for the client's launch and attach configurations.

launch: the program runs under our bootstrap (``-m dap_adapter.debuggee``),
which connects the agent before running the user's program exactly as python
would. The side channel's address and secret travel in the environment.
Both: ``rules`` that keep the adapter (and, with justMyCode, the engine) out of
stepping while our pause frame stays user code, so pydevd stops in it.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Tuple

import dap_adapter
from dap_adapter import bundle
from dap_adapter.common import protocol

PACKAGE_DIR = os.path.dirname(os.path.abspath(dap_adapter.__file__))
PACKAGE_PARENT = os.path.dirname(PACKAGE_DIR)
#: keys understood by the adapter and not passed to debugpy
OUR_KEYS = ("buildBreakpoints", "breakOnFailedBuilds", "pylightnixChannel", "pylightnixAttachFile")


def break_on_failed_builds(args: Dict[str, Any]) -> bool:
    """launch.json's ``breakOnFailedBuilds``: the "Failed builds" filter from the first
    run on (the filter in the Breakpoints view appears only once a session runs)."""
    value = args.get("breakOnFailedBuilds", False)
    if not isinstance(value, bool):
        raise LaunchError(f"breakOnFailedBuilds: expected true or false, got {value!r}")
    return value


class LaunchError(Exception):
    """A launch/attach configuration that cannot work (shown to the user)."""


def rules(args: Dict[str, Any]) -> List[Dict[str, Any]]:
    """User rules first (first match wins), then: our pause frame is user code, the
    adapter is not, and with justMyCode (the default) the engine is not either, so
    Step Into from a pause lands in the stage function."""
    out = list(args.get("rules") or [])
    out.append({"path": os.path.join(PACKAGE_DIR, "debuggee", "pause_frame.py"), "include": True})
    out.append({"path": os.path.join(PACKAGE_DIR, "**"), "include": False})
    out.append({"module": "dap_adapter", "include": False})
    if bundle.LIBS:  # the extension's debugpy and IPython are library code, not the user's
        out.append({"path": os.path.join(bundle.LIBS, "*"), "include": False})
    if args.get("justMyCode", True) is not False:
        out.append({"module": "pylightnix", "include": False})
    return out


#: debugpy does not follow the program into its subprocesses: worker processes (a
#: ``Processes`` pool, a ``LocalCluster``) would otherwise all run traced, and a build
#: paused on one connects its own debugger for its child session (pylightnix.scale.hub)
NO_SUBPROCESSES = False


def launch_args(args: Dict[str, Any], channel_port: int, secret: str) -> Tuple[Dict[str, Any], str, bool]:
    """debugpy launch arguments for the client's ``args``.

    Returns ``(arguments, program label, stop on entry)``; raises :class:`LaunchError`."""
    program, module = args.get("program"), args.get("module")
    cwd = args.get("cwd") or os.getcwd()
    if not program and not module:
        raise LaunchError("launch: give `program` (a script path) or `module`")
    if args.get("cwd") and not os.path.isdir(cwd):
        raise LaunchError(f"launch: cwd is not a directory: {cwd}")
    if program:
        path = program if os.path.isabs(program) else os.path.join(cwd, program)
        if not os.path.isfile(path):
            raise LaunchError(f"launch: program not found: {path}")
        target, label = ["--program", path], path
    else:
        target, label = ["--module", str(module)], str(module)
    env = dict(args.get("env") or {})
    env[protocol.ENV_CHANNEL] = f"127.0.0.1:{channel_port}"
    env[protocol.ENV_SECRET] = secret
    pp = [p for p in env.get("PYTHONPATH", os.environ.get("PYTHONPATH", "")).split(os.pathsep)
          if p and p != PACKAGE_PARENT]
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_PARENT, *pp])
    out = {k: v for k, v in args.items() if k not in OUR_KEYS and k not in ("program", "module")}
    # debugpy would stop on entry to our bootstrap; the bootstrap stops on the program's
    # first line instead, and the session reports that stop as "entry"
    entry = bool(out.pop("stopOnEntry", False))
    out["module"] = protocol.DEBUGGEE_MODULE
    out["args"] = target + (["--stop-on-entry"] if entry else []) + ["--"] + [str(a) for a in args.get("args") or []]
    out["env"] = env
    out["cwd"] = cwd
    out.setdefault("console", "internalConsole")
    out["rules"] = rules(args)
    out["subProcess"] = NO_SUBPROCESSES
    return out, label, entry


def attach_args(args: Dict[str, Any], host: str, port: int) -> Dict[str, Any]:
    """debugpy attach arguments for the client's ``args``."""
    out = {k: v for k, v in args.items() if k not in OUR_KEYS and k != "connect"}
    out["connect"] = {"host": host, "port": port}
    out["rules"] = rules(args)
    out["subProcess"] = NO_SUBPROCESSES
    return out
