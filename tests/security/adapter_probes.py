"""What a hostile local process tries against the debugger's ports (adapter security tests).

Helpers only (no fixtures): list the loopback ports a process tree listens on
(``/proc``), and try, on one port, everything a raw DAP or debugpy client would
do to run code: ``pydevdAuthorize`` with a wrong token, ``initialize``,
``launch`` of a program, ``attach`` by process id, ``evaluate`` in frames. The
code tried writes a marker file; the tests assert the marker never appears.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
from typing import Dict, Iterable, List, Optional, Set

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "dap"))

from dap_testlib import INIT_ARGS, PIPELINE, env_for, free_port  # noqa: E402,F401

#: a stand-alone client, run as ``python -c PROBE PORT MARKER [PID]``: no import from this
#: checkout, so it also runs as another user
PROBE = r'''
import json, socket, sys, time
port, marker = int(sys.argv[1]), sys.argv[2]
pid = int(sys.argv[3]) if len(sys.argv) > 3 else None
evil = "open(%r, 'w').write('pwned')" % marker
out = {"connected": False, "succeeded": []}
try:
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    out["connected"] = True
except OSError:
    print(json.dumps(out))
    sys.exit(0)
buf, seq = b"", 0
def read_msgs(deadline):
    global buf
    msgs = []
    while time.monotonic() < deadline:
        i = buf.find(b"\r\n\r\n")
        if i >= 0 and buf.startswith(b"Content-Length:"):
            n = int(buf[15:i])
            if len(buf) >= i + 4 + n:
                msgs.append(json.loads(buf[i + 4:i + 4 + n]))
                buf = buf[i + 4 + n:]
                continue
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            raise EOFError
        buf += chunk
        if not buf.startswith(b"Content-Length:") and b"Content-Length:" not in buf:
            buf = b""  # not DAP (e.g. the side channel's refusal)
    return msgs
def call(cmd, args, wait=1.0):
    global seq
    seq += 1
    body = json.dumps({"seq": seq, "type": "request", "command": cmd, "arguments": args}).encode()
    s.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        for m in read_msgs(deadline):
            if m.get("type") == "response" and m.get("request_seq") == seq:
                if m.get("success"):
                    out["succeeded"].append(cmd)
                return m
    return None
try:
    call("pydevdAuthorize", {"debugServerAccessToken": "wrong-token"})
    call("initialize", {"adapterID": "probe", "clientID": "probe", "linesStartAt1": True,
                        "columnsStartAt1": True, "pathFormat": "path"}, wait=5.0)  # may spawn debugpy
    call("launch", {"program": marker + ".py", "console": "internalConsole", "cwd": "/"})
    call("attach", {"connect": {"host": "127.0.0.1", "port": port}, "justMyCode": False})
    if pid:
        call("attach", {"processId": pid, "justMyCode": False})
    call("configurationDone", {})
    r = call("threads", {})
    tids = [t["id"] for t in ((r or {}).get("body") or {}).get("threads", [])] or [1]
    for tid in tids[:3]:
        call("pause", {"threadId": tid})
        time.sleep(0.3)
        r = call("stackTrace", {"threadId": tid})
        for fr in ((r or {}).get("body") or {}).get("stackFrames", [])[:3]:
            call("evaluate", {"expression": evil, "frameId": fr["id"], "context": "repl"})
    call("evaluate", {"expression": evil, "context": "repl"})
    time.sleep(0.5)
except (OSError, EOFError, ValueError):
    pass
print(json.dumps(out))
'''


def try_to_run_code(port: int, marker: str, pid: Optional[int] = None, as_uid: Optional[int] = None,
                    python: str = sys.executable) -> Dict[str, object]:
    """Run :data:`PROBE` against ``port`` (as ``as_uid`` if given); returns its summary:
    ``{"connected": bool, "succeeded": [commands answered with success]}``."""
    with open(marker + ".py", "w") as f:
        f.write(f"open({marker!r}, 'w').write('pwned')\n")
    kw: Dict[str, object] = {}
    if as_uid is not None:
        kw["preexec_fn"] = lambda: (os.setgid(as_uid), os.setuid(as_uid))
    args = [python, "-I", "-c", PROBE, str(port), marker] + ([str(pid)] if pid else [])
    r = subprocess.run(args, capture_output=True, text=True, timeout=90, **kw)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AssertionError(f"probe failed: {r.stdout}{r.stderr}")


def children(pid: int) -> List[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def process_tree(pid: int) -> List[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children(p)
    return out


def socket_inodes(pid: int) -> Set[str]:
    """Inodes of the sockets ``pid`` holds open (its /proc/PID/fd links)."""
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    except OSError:
        pass
    return out


def listening_ports(pids: Iterable[int]) -> Dict[int, int]:
    """TCP ports (IPv4 and IPv6) the processes listen on: ``{port: pid}``."""
    by_inode = {ino: pid for pid in pids for ino in socket_inodes(pid)}
    out: Dict[int, int] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in by_inode:  # LISTEN
                out[int(fields[1].rsplit(":", 1)[1], 16)] = by_inode[fields[9]]
    return out


def listening_addresses(pids: Iterable[int]) -> List[str]:
    """``host:port`` of every listening TCP socket of the processes (to check: loopback only)."""
    by_inode = {ino for pid in pids for ino in socket_inodes(pid)}
    out = []
    with open("/proc/net/tcp") as f:
        for row in f.read().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in by_inode:
                host, port = fields[1].split(":")
                out.append(f"{socket.inet_ntoa(struct.pack('=I', int(host, 16)))}:{int(port, 16)}")
    return out


def start_listening(tmp_path, script: str = PIPELINE, wait: bool = True, port: int = 0,
                    extra_env: Optional[Dict[str, str]] = None):
    """``pylightnix debug --listen 127.0.0.1:PORT [--wait] SCRIPT``; returns (process, port, stderr path)."""
    port = port or free_port()
    env = env_for({"PYLIGHTNIX_DEBUG_DIR": str(tmp_path / "dbg"), "PYLIGHTNIX_ROOT": str(tmp_path / "root"),
                   "PYLIGHTNIX_PROGRESS": "0", **(extra_env or {})})
    err = tmp_path / "listen-err.txt"
    with open(tmp_path / "listen-out.txt", "w") as out_f, open(err, "w") as err_f:
        proc = subprocess.Popen([sys.executable, "-m", "pylightnix", "debug", "--listen", f"127.0.0.1:{port}",
                                 *(["--wait"] if wait else []), script], env=env, stdout=out_f, stderr=err_f)
    deadline = time.monotonic() + 30
    while "waiting for a debugger" not in err.read_text():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"--listen did not come up: {err.read_text()}")
        time.sleep(0.05)
    return proc, port, err


def attach(c, tmp_path, port: int, breaks=("trainer",)) -> int:
    """initialize + attach + build breakpoints + configurationDone; returns the attach seq."""
    c.request("initialize", INIT_ARGS)
    seq = c.send_request("attach", {"connect": {"host": "127.0.0.1", "port": port}, "justMyCode": True,
                                    "pylightnixAttachFile": str(tmp_path / "dbg" / f"attach-{port}.json")})
    c.event("initialized", timeout=30)
    c.request("setFunctionBreakpoints", {"breakpoints": [{"name": n} for n in breaks]})
    c.request("setExceptionBreakpoints", {"filters": []})
    c.request("configurationDone")
    return seq


def stop(proc) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def system_python() -> Optional[str]:
    """An interpreter another user can execute (the checkout's venv may sit under /root)."""
    return shutil.which("python3", path="/usr/bin:/usr/local/bin:/bin")


def json_lines(path) -> List[dict]:
    return [json.loads(x) for x in open(path).read().splitlines() if x.strip()]
