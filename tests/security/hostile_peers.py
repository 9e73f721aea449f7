"""What another local user runs against a pause hub, ``--listen`` or ``pylightnix attach``.

A stand-alone script (no import from this checkout), run as uid 65534 with the
system python: ``python3 -I hostile_peers.py MODE ARGS...``

- ``flood PORT N``: keep N idle connections open to PORT; each one the listener
  closes is opened again at once. Prints ``READY`` once N are open; on SIGTERM,
  ``OPENED k`` (how many connections it made in all).
- ``fakehub DIR``: listen on 127.0.0.1, plant ``DIR/attach-PORT.json`` claiming to be a
  pause hub with a paused build ``abc123``, print ``PLANTED PATH``, then print
  ``GOT <first line>`` for every connection (what a fooled attacher would send).
- ``badhellos PORT``: open connections whose hello is not valid (a lone surrogate,
  invalid UTF-8, a list, a number for the secret, deep nesting, NUL bytes) and print,
  per connection, ``CLOSED <seconds> <reply>`` once the listener has closed it.
"""
import errno
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time

NOBODY = 65534


def flood(port: int, n: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 100
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want if hard == resource.RLIM_INFINITY else min(want, hard), hard))
    sel = selectors.DefaultSelector()
    opened = [0]

    def open_one() -> None:
        s = socket.socket()
        s.setblocking(False)
        if s.connect_ex(("127.0.0.1", port)) not in (0, errno.EINPROGRESS):
            s.close()
            time.sleep(0.01)
            return
        sel.register(s, selectors.EVENT_READ)
        opened[0] += 1

    def done(*_):
        print(f"OPENED {opened[0]}", flush=True)
        os._exit(0)
    signal.signal(signal.SIGTERM, done)
    while len(sel.get_map()) < n:
        open_one()
    print("READY", flush=True)
    while True:
        for key, _ in sel.select(0.5):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:  # the listener closed it: open another
                sel.unregister(s)
                s.close()
        while len(sel.get_map()) < n:
            open_one()


def fakehub(d: str) -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    path = os.path.join(d, f"attach-{port}.json")
    info = {"pid": os.getpid(), "host": "127.0.0.1", "port": port, "secret": "planted", "role": "hub",
            "pauses": [{"id": "abc123", "name": "beta", "dref": "", "kind": "before", "where": "evil",
                        "pid": os.getpid(), "hubPort": port}]}
    with open(path, "w") as f:
        json.dump(info, f)
    print(f"PLANTED {path}", flush=True)
    while True:
        c, _ = srv.accept()
        c.settimeout(5)
        try:
            line = c.makefile("rb").readline()
        except OSError:
            line = b""
        print(f"GOT {line!r}", flush=True)
        c.close()


BAD_HELLOS = [
    b'{"auth": "\\ud800"}\n',                    # a lone surrogate (valid JSON, no valid UTF-8 for it)
    b'{"auth": "\\udfff\\ud800", "role": "worker"}\n',
    b'{"auth": "\xff\xfe"}\n',                    # invalid UTF-8
    b'["auth"]\n',
    b'{"auth": 12345}\n',
    b'[' * 100000 + b'\n',                         # deep nesting (also longer than a hello may be)
    b'{"auth": "\x00\x00"}\n',
]


def badhellos(port: int) -> None:
    for hello in BAD_HELLOS:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        t0 = time.monotonic()
        try:
            s.sendall(hello)
        except OSError:
            pass
        reply = b""
        try:
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except OSError:
            pass
        print(f"CLOSED {time.monotonic() - t0:.2f} {reply!r}", flush=True)
        s.close()


# ----------------------------------------------------------------- for the tests
def spawn(mode: str, *args: object) -> "subprocess.Popen[str]":
    """Run this script as uid/gid 65534 with the system python (the checkout's venv may
    not be readable by that user); its stdout is a pipe of text lines."""
    python = shutil.which("python3", path="/usr/bin:/usr/local/bin:/bin")
    assert python, "no system python3 for the other user"

    def drop() -> None:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    return subprocess.Popen([python, "-I", os.path.abspath(__file__), mode, *map(str, args)], preexec_fn=drop,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, cwd="/")


def let_in(path: str) -> None:
    """Let the other user reach ``path`` (pytest's own folders are 0700)."""
    p = os.path.abspath(path)
    while p != "/":
        mode = os.stat(p).st_mode
        if mode & 0o005 != 0o005:
            os.chmod(p, mode | 0o005)
        p = os.path.dirname(p)


def expect_line(proc: "subprocess.Popen[str]", prefix: str, timeout: float = 60) -> str:
    """The first line of ``proc`` that starts with ``prefix``."""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"{proc.args} ended without {prefix!r} (status {proc.wait()})")
        if line.startswith(prefix):
            return line.rstrip("\n")
    raise AssertionError(f"no {prefix!r} from {proc.args} in {timeout} s")


def stop(proc: "subprocess.Popen[str]") -> str:
    """SIGTERM, then the rest of its output."""
    if proc.poll() is None:
        proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "flood":
        flood(int(sys.argv[2]), int(sys.argv[3]))
    elif mode == "fakehub":
        fakehub(sys.argv[2])
    else:
        badhellos(int(sys.argv[2]))
