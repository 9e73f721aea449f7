"""Test support for the adapter: schema validation, adapter processes, launch helper."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional

import jsonschema

import debugpy

from dap_adapter.testing import Client, adapter_env

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROGRAMS = os.path.join(HERE, "programs")
PIPELINE = os.path.join(PROGRAMS, "pipeline.py")
SCHEMA_PATH = os.path.join(os.path.dirname(debugpy.__file__), "_vendored", "pydevd", "_pydevd_bundle",
                           "_debug_adapter", "debugProtocol.json")

with open(SCHEMA_PATH) as _f:
    SCHEMA = json.load(_f)
DEFS = SCHEMA["definitions"]
_validators: Dict[str, Any] = {}


def _validator(defname: str) -> Any:
    v = _validators.get(defname)
    if v is None:
        v = jsonschema.Draft4Validator({"$ref": f"#/definitions/{defname}", "definitions": DEFS})
        _validators[defname] = v
    return v


def definition_for(msg: Dict[str, Any]) -> str:
    """The DAP schema definition a message must satisfy."""
    kind = msg.get("type")
    if kind == "event":
        name = str(msg.get("event", ""))
        d = name[:1].upper() + name[1:] + "Event"
        return d if d in DEFS else "Event"
    if kind == "response":
        if not msg.get("success"):
            return "ErrorResponse"
        cmd = str(msg.get("command", ""))
        d = cmd[:1].upper() + cmd[1:] + "Response"
        return d if d in DEFS else "Response"
    if kind == "request":
        cmd = str(msg.get("command", ""))
        d = cmd[:1].upper() + cmd[1:] + "Request"
        return d if d in DEFS else "Request"
    return "ProtocolMessage"


class SchemaChecker:
    """Validates every message the adapter sends; also checks seq strictly increases."""

    def __init__(self) -> None:
        self.count = 0
        self.last_seq = 0
        self.by_definition: Dict[str, int] = {}

    def __call__(self, msg: Dict[str, Any]) -> None:
        self.count += 1
        d = definition_for(msg)
        self.by_definition[d] = self.by_definition.get(d, 0) + 1
        errors = sorted(_validator(d).iter_errors(msg), key=lambda e: list(e.path))
        if errors:
            raise ValueError(f"{d} invalid: {errors[0].message} in {json.dumps(msg)[:400]}")
        if msg["seq"] <= self.last_seq:
            raise ValueError(f"seq not increasing: {msg['seq']} after {self.last_seq}")
        self.last_seq = msg["seq"]


def env_for(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = adapter_env(extra)
    env.pop("PYLIGHTNIX_BREAK", None)
    env.pop("PYLIGHTNIX_BREAK_ON_FAILURE", None)
    return env


def spawn_pipes(checker: SchemaChecker) -> Client:
    """The adapter as an editor runs it: stdin/stdout."""
    return Client.spawn(env=env_for(), check=checker)


def spawn_tcp(checker: SchemaChecker) -> Client:
    """The adapter as ``--port`` server (launch.json debugServer); port chosen by the OS."""
    proc = subprocess.Popen([sys.executable, "-m", "dap_adapter", "--port", "0", "--once"],
                            stderr=subprocess.PIPE, env=env_for(), text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    port = int(line.rsplit(":", 1)[1])
    return Client.connect(port, check=checker, proc=proc)


INIT_ARGS = {"adapterID": "pylightnix", "clientID": "pytest", "clientName": "pytest",
             "linesStartAt1": True, "columnsStartAt1": True, "pathFormat": "path",
             "supportsVariableType": True, "supportsRunInTerminalRequest": False}


def launch(c: Client, root: str, program: str = PIPELINE, function_breakpoints: List[str] = (),
           filters: List[str] = ("uncaught",), env: Optional[Dict[str, str]] = None,
           extra: Optional[Dict[str, Any]] = None, line_breakpoints: Optional[Dict[str, List[int]]] = None,
           init: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """initialize (``INIT_ARGS`` updated with ``init``), launch, breakpoints,
    configurationDone; returns the launch response."""
    caps = c.request("initialize", {**INIT_ARGS, **(init or {})})["body"]
    args: Dict[str, Any] = {"program": program, "console": "internalConsole", "cwd": os.path.dirname(program),
                            "justMyCode": True,
                            "env": {"PYLIGHTNIX_ROOT": root, "PYLIGHTNIX_PROGRESS": "0", **(env or {})}}
    args.update(extra or {})
    seq = c.send_request("launch", args)
    c.event("initialized", timeout=30)
    fb = c.request("setFunctionBreakpoints",
                   {"breakpoints": [{"name": n} for n in function_breakpoints]})["body"]["breakpoints"]
    for path, lines in (line_breakpoints or {}).items():
        c.request("setBreakpoints", {"source": {"path": path}, "breakpoints": [{"line": n} for n in lines]})
    c.request("setExceptionBreakpoints", {"filters": list(filters)})
    c.request("configurationDone")
    resp = c.response(seq, timeout=30)
    assert resp["success"], resp
    return {"caps": caps, "function_breakpoints": fb, "launch": resp}


def top_frame(c: Client, thread_id: int) -> Dict[str, Any]:
    return c.request("stackTrace", {"threadId": thread_id})["body"]["stackFrames"][0]


def locals_of(c: Client, frame_id: int) -> Dict[str, str]:
    scopes = c.request("scopes", {"frameId": frame_id})["body"]["scopes"]
    ref = scopes[0]["variablesReference"]
    return {v["name"]: v["value"] for v in c.request("variables", {"variablesReference": ref})["body"]["variables"]}


def repl(c: Client, frame_id: int, text: str) -> str:
    r = c.request("evaluate", {"expression": text, "frameId": frame_id, "context": "repl"})
    return r["body"]["result"]


def repl_error(c: Client, frame_id: int, text: str) -> str:
    """A console cell that raises: its ``evaluate`` fails, the message is what it printed."""
    r = c.request("evaluate", {"expression": text, "frameId": frame_id, "context": "repl"}, ok=False)
    assert r["success"] is False and not r.get("body"), r
    return r["message"]


def debuggee_pid(c: Client, timeout: float = 30) -> int:
    return int(c.event("process", timeout=timeout)["body"]["systemProcessId"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid: int, timeout: float) -> float:
    """Seconds until ``pid`` is gone (raises after ``timeout``)."""
    t0 = time.monotonic()
    while alive(pid):
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"process {pid} still alive after {timeout}s")
        time.sleep(0.02)
    return time.monotonic() - t0


def kill_quietly(pid: Optional[int]) -> None:
    if pid and alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def realizations(root: str, name: str) -> List[str]:
    """Realization folders of derivations called ``name`` in the store under ``root``."""
    store = os.path.join(root, "store-v0")
    out = []
    if not os.path.isdir(store):
        return out
    for d in os.listdir(store):
        if d.endswith("-" + name):
            p = os.path.join(store, d)
            out += [x for x in os.listdir(p) if os.path.isdir(os.path.join(p, x))]
    return out


def tmp_entries(root: str) -> List[str]:
    t = os.path.join(root, "tmp")
    return os.listdir(t) if os.path.isdir(t) else []


def free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_output(c: Client, text: str, timeout: float = 30) -> str:
    """Wait until the debuggee's output (all output events so far) contains ``text``."""
    deadline = time.monotonic() + timeout
    while text not in c.output_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not in output: {c.output_text()[-2000:]!r}")
        try:
            c.event("output", timeout=0.2, after=len(c.received))
        except Exception:
            pass
    return c.output_text()
