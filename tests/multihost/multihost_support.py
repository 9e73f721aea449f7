"""A second host on this machine, for the two-host tests (issue 16 §4).

:class:`TwoHosts` builds, as root:

- a network namespace ``plxmh<pid>`` joined to this one by a veth pair
  ``pmh<pid>h`` / ``pmh<pid>w`` with the addresses ``10.213.X.1/30`` (here, the
  *host end*) and ``10.213.X.2/30`` (the *worker host*); no route, no forwarding:
  traffic only between these two ends;
- a Dask scheduler on ``10.213.X.1`` (its HTTP port pinned there too, so nothing
  listens on 0.0.0.0);
- the *GPU worker*: ``dask worker --resources GPU=1 --nthreads 1`` in that namespace
  and in a mount namespace of its own, where a tmpfs hides :attr:`TwoHosts.base`,
  the folder holding the driver's stores and debug files: it has its own loopback
  and its own store (:attr:`TwoHosts.worker_store`), so copy mode applies;
- the *CPU worker*: a worker without resources on the host end (its own store
  too), so a stage that needs a GPU has somewhere else it could wrongly go.

Before a test uses it, :meth:`TwoHosts.check_isolation` proves from inside the
worker's namespaces that the driver's 127.0.0.1 and store are out of reach (with a
positive control each, so the checks cannot pass vacuously), and raises
:class:`IsolationError` otherwise. :meth:`TwoHosts.close` kills only the processes
it started (their process groups, then whatever is left in its own namespace),
deletes the link and the namespace, and checks that nothing is left; it runs on
every exit path (the fixture registers it before anything is created).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from pylightnix.wire.process import pid_alive

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "security"))
from adapter_probes import socket_inodes  # noqa: E402  (the same /proc reading as the port attacks)

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NS_PREFIX = "plxmh"
LINK_PREFIX = "pmh"
SETUP_TIMEOUT = 30.0  # what a loaded machine may take; the target on an idle one is 15 s


class Unavailable(Exception):
    """This machine cannot make a second host (e.g. no CAP_SYS_ADMIN in a container): a skip."""


class IsolationError(AssertionError):
    """The second host is not isolated as the tests assume: none of them may run."""


def unavailable() -> Optional[str]:
    """Why the harness cannot run here (a skip reason), or None."""
    if not hasattr(os, "getuid") or os.getuid() != 0:
        return "the two-host harness needs root (ip netns, veth, unshare, mount)"
    for tool in ("ip", "unshare", "nsenter"):
        if shutil.which(tool) is None:
            return f"the two-host harness needs the '{tool}' command"
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"'ip netns' is unavailable: {r.stderr.strip()}"
    return None


def _die_with_parent() -> List[str]:
    """A command prefix: SIGKILL when the test process dies (``PR_SET_PDEATHSIG``, kept across
    exec), so a killed pytest leaves no scheduler or worker behind. Empty where ``setpriv``
    lacks ``--pdeathsig`` (util-linux < 2.33): teardown still kills them on every other path."""
    global _PDEATHSIG
    if _PDEATHSIG is None:
        ok = subprocess.run(["setpriv", "--pdeathsig", "KILL", "true"], capture_output=True).returncode == 0 \
            if shutil.which("setpriv") else False
        _PDEATHSIG = ["setpriv", "--pdeathsig", "KILL"] if ok else []
    return _PDEATHSIG


_PDEATHSIG: Optional[List[str]] = None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {r.stderr.strip()}")
    return r


def _netns_names() -> List[str]:
    return [line.split()[0] for line in _ip("netns", "list").stdout.splitlines() if line.strip()]


def _link_exists(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0


def _kill_netns_pids(ns: str) -> None:
    """Kill every process inside our own namespace ``ns`` (only we start processes there)."""
    r = _ip("netns", "pids", ns, check=False)
    for pid in (int(p) for p in r.stdout.split() if p.isdigit()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_stale() -> None:
    """Namespaces and links this harness left behind in runs whose test process is gone
    (a SIGKILLed pytest cannot run its finalizers); those of live runs stay untouched."""
    for ns in _netns_names():
        m = re.fullmatch(NS_PREFIX + r"(\d+)", ns)
        if m and not pid_alive(int(m.group(1))):
            _kill_netns_pids(ns)
            _ip("netns", "del", ns, check=False)
            _ip("link", "del", f"{LINK_PREFIX}{m.group(1)}h", check=False)


def _subnet() -> int:
    """X of an unused 10.213.X.0/30, derived from our pid (concurrent runs get other ones)."""
    used = _ip("-o", "addr", "show").stdout + _ip("route", "show", "table", "all").stdout
    start = os.getpid() % 250
    for i in range(250):
        x = (start + i) % 250 + 1
        if f"10.213.{x}." not in used:
            return x
    raise RuntimeError("no unused 10.213.X.0/30 subnet for the second host")


# ------------------------------------------------------------------ sockets in /proc

def _decode(addr: str) -> Tuple[str, int]:
    host, port = addr.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        ip = socket.inet_ntop(socket.AF_INET, struct.pack("=I", int(host, 16)))
    else:  # /proc/net/tcp6: four host-order 32-bit words
        ip = socket.inet_ntop(socket.AF_INET6, b"".join(struct.pack("=I", int(host[i:i + 8], 16))
                                                         for i in range(0, 32, 8)))
    return ip, int(port, 16)


def listeners(pids: Iterable[int]) -> List[Tuple[str, int, int]]:
    """Every listening TCP socket (IPv4 and IPv6) of the processes, read in each process's
    own network namespace (``/proc/PID/net/tcp*``): ``[(address, port, pid)]``."""
    out = []
    for pid in pids:
        inodes = socket_inodes(pid)
        for table in ("tcp", "tcp6"):
            try:
                with open(f"/proc/{pid}/net/{table}") as f:
                    rows = f.read().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                if fields[3] == "0A" and fields[9] in inodes:  # LISTEN, one of this process's sockets
                    ip, port = _decode(fields[1])
                    out.append((ip, port, pid))
    return sorted(set(out))


def is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip in ("::1", "::ffff:127.0.0.1")


def ns_inode(pid: int, kind: str) -> int:
    """The inode of a process's namespace (``net``, ``mnt``), as ``os.stat('/proc/self/ns/net')`` gives it."""
    return os.stat(f"/proc/{pid}/ns/{kind}").st_ino


#: run inside a namespace as ``python -c PROBE HOST PORT``: prints the first bytes a listener
#: sends, "REFUSED", or "ERROR <type>"
PROBE = r'''
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
except ConnectionRefusedError:
    print("REFUSED"); sys.exit(0)
except OSError as e:
    print("ERROR", type(e).__name__); sys.exit(0)
s.settimeout(3)
try:
    print("GOT", s.recv(64).decode(errors="replace") or "<eof>")
except OSError as e:
    print("CONNECTED", type(e).__name__)
'''


class Listener:
    """A listener in this process on ``host`` (any free port) that hands each connection to ``serve``."""

    def __init__(self, host: str, serve: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._serve = serve
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                self._serve(conn)
            except OSError:
                conn.close()

    def close(self) -> None:
        self.sock.close()


def token_listener(host: str) -> Tuple[Listener, str]:
    """A reachability probe's target: sends a random token to whoever connects."""
    token = secrets.token_hex(8)

    def send(conn: socket.socket) -> None:
        with conn:
            conn.sendall(token.encode())
    return Listener(host, send), token


def forwarder(target: Tuple[str, int]) -> Listener:
    """``ssh -L`` in miniature: a listener on our 127.0.0.1 whose connections are relayed to ``target``."""
    from pylightnix.scale.hub import splice

    def relay(conn: socket.socket) -> None:
        out = socket.create_connection(target, timeout=10)
        out.settimeout(None)  # a Dask connection may stay idle for long
        splice(conn, out)
    return Listener("127.0.0.1", relay)


# ------------------------------------------------------------------ the harness

class TwoHosts:
    """The driver's host (this network and mount namespace) and a worker host (see the module doc)."""

    def __init__(self, base: Path, tag: Optional[str] = None, tunnel: bool = False) -> None:
        """``tunnel``: no CPU worker, and the GPU worker is reached (by the scheduler and the
        driver) through a forwarder on our 127.0.0.1, as through ``ssh -L``: its Dask address
        is ``tcp://127.0.0.1:PORT`` although it runs on the other host."""
        tag = tag or str(os.getpid())  # names and stale-run cleanup go by the test process's pid
        self.tunnel = tunnel
        self._forwarder: Optional[Listener] = None
        self.ns = f"{NS_PREFIX}{tag}"
        self.host_if = f"{LINK_PREFIX}{tag}h"
        self.worker_if = f"{LINK_PREFIX}{tag}w"
        self.base = Path(base)  # hidden from the GPU worker by its tmpfs
        self.worker_store = str(self.base / "worker" / "store")  # exists only in the GPU worker's mount namespace
        self.cpu_worker_store = str(self.base / "cpu-worker" / "store")
        self.logs = Path(str(self.base) + "-logs")  # outside `base`: the fixture reads the workers' logs here
        self.host_ip = self.worker_ip = ""
        self.scheduler_address = ""
        self.worker_address = ""        # the GPU worker in the namespace, as Dask knows it
        self.worker_port = 0            # the port it listens on (at worker_ip)
        self.cpu_worker_address = ""
        self.dask_ports: Set[Tuple[str, int]] = set()  # every (address, port) Dask itself listens on
        self.scheduler_pid = self.worker_pid = self.cpu_worker_pid = 0
        self._procs: List[subprocess.Popen] = []
        self._files: list = []
        self._created_ns = self._created_link = False
        self.setup_seconds = 0.0

    # ---------------------------------------------------------------- set-up

    def start(self) -> None:
        t0 = time.monotonic()
        remove_stale()
        self.base.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        x = _subnet()
        self.host_ip, self.worker_ip = f"10.213.{x}.1", f"10.213.{x}.2"
        try:
            _ip("netns", "add", self.ns)
        except RuntimeError as e:
            raise Unavailable(str(e)) from None
        self._created_ns = True
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.worker_if)
        self._created_link = True
        _ip("link", "set", self.worker_if, "netns", self.ns)
        _ip("addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        _ip("-n", self.ns, "addr", "add", f"{self.worker_ip}/30", "dev", self.worker_if)
        _ip("-n", self.ns, "link", "set", self.worker_if, "up")
        _ip("-n", self.ns, "link", "set", "lo", "up")

        sched_file = self.logs / "scheduler.json"
        self.scheduler_pid = self._spawn("scheduler", [
            sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", self.host_ip, "--port", "0",
            "--dashboard-address", f"{self.host_ip}:0", "--scheduler-file", str(sched_file)], self._env())
        info = self._wait(lambda: sched_file.exists() and sched_file.stat().st_size and
                          json.loads(sched_file.read_text()), "the scheduler's address", t0)
        self.scheduler_address = info["address"]

        worker_cmd = [sys.executable, "-m", "distributed.cli.dask_worker", self.scheduler_address,
                      "--nthreads", "1", "--no-nanny", "--name"]
        hidden = str(self.base)
        script = (f"mount -t tmpfs -o mode=0700 tmpfs {hidden} && "
                  f"mkdir -p {self.worker_store} {hidden}/worker/tmp && "
                  f"exec \"$@\"")
        if self.tunnel:
            self.worker_port = 20000 + os.getpid() % 10000  # the namespace is new: every port is free there
            self._forwarder = forwarder((self.worker_ip, self.worker_port))
            where = ["--listen-address", f"tcp://{self.worker_ip}:{self.worker_port}",
                     "--contact-address", f"tcp://127.0.0.1:{self._forwarder.port}"]
        else:
            where = ["--host", self.worker_ip]
        self.worker_pid = self._spawn("worker", [
            "ip", "netns", "exec", self.ns, "unshare", "--mount", "--propagation", "private",
            "sh", "-c", script, "sh", *worker_cmd, "gpu-worker", *where,
            "--dashboard-address", f"{self.worker_ip}:0", "--resources", "GPU=1",
            "--local-directory", f"{hidden}/worker/tmp"],
            self._env(PYLIGHTNIX_ROOT=self.worker_store, TMPDIR=f"{hidden}/worker/tmp"))
        if not self.tunnel:
            os.makedirs(self.cpu_worker_store, exist_ok=True)
            self.cpu_worker_pid = self._spawn("cpu-worker", [
                *worker_cmd, "cpu-worker", "--host", self.host_ip, "--dashboard-address", f"{self.host_ip}:0",
                "--local-directory", str(self.base / "cpu-worker")],
                self._env(PYLIGHTNIX_ROOT=self.cpu_worker_store))
        n_workers = 1 if self.tunnel else 2

        def workers() -> Dict[str, dict]:
            from distributed import Client
            with Client(self.scheduler_address, timeout=10) as c:
                c.wait_for_workers(n_workers, timeout=max(1.0, SETUP_TIMEOUT - (time.monotonic() - t0)))
                return c.scheduler_info()
        sinfo = self._wait(workers, f"{n_workers} worker(s) registered with the scheduler", t0)
        self.dask_ports = {(self.host_ip, int(self.scheduler_address.rsplit(":", 1)[1]))}
        self.dask_ports |= {(self.host_ip, int(p)) for p in sinfo.get("services", {}).values()}
        for addr, w in sinfo["workers"].items():
            host, port = addr[len("tcp://"):].rsplit(":", 1)
            self.dask_ports.add((host, int(port)))
            self.dask_ports |= {(host, int(p)) for p in (w.get("services") or {}).values()}
            if w.get("nanny"):
                nhost, nport = w["nanny"][len("tcp://"):].rsplit(":", 1)
                self.dask_ports.add((nhost, int(nport)))
            if w.get("name") == "gpu-worker":
                self.worker_address = addr
            elif w.get("name") == "cpu-worker":
                self.cpu_worker_address = addr
        if self.tunnel:
            expected = self.worker_address == f"tcp://127.0.0.1:{self._forwarder.port}"  # type: ignore[union-attr]
        else:
            expected = (self.worker_address.startswith(f"tcp://{self.worker_ip}:")
                        and self.cpu_worker_address.startswith(f"tcp://{self.host_ip}:"))
            self.worker_port = int(self.worker_address.rsplit(":", 1)[1])
        if not expected:
            raise RuntimeError(f"unexpected workers: {sorted(sinfo['workers'])}")
        self.check_isolation()
        self.setup_seconds = time.monotonic() - t0

    def _env(self, **extra: str) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYLIGHTNIX_", "DASK_"))}
        env.update(PYTHONUNBUFFERED="1", PYTHONPATH=os.pathsep.join([str(REPO), str(HERE)]), **extra)
        return env

    def _spawn(self, name: str, args: Sequence[str], env: Dict[str, str]) -> int:
        log = open(self.logs / f"{name}.log", "ab")
        self._files.append(log)
        proc = subprocess.Popen([*_die_with_parent(), *args], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=str(self.logs))
        self._procs.append(proc)
        return proc.pid

    def _wait(self, probe, what: str, t0: float):  # type: ignore[no-untyped-def]
        err: Optional[BaseException] = None
        while True:
            dead = [p for p in self._procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"waiting for {what}: {dead[0].args[:4]} exited with {dead[0].returncode}; "
                                   f"logs:\n{self.log_text()}")
            try:
                got = probe()
            except (OSError, ValueError, TimeoutError) as e:
                got, err = None, e
            if got:
                return got
            if time.monotonic() - t0 > SETUP_TIMEOUT:
                raise RuntimeError(f"no {what} after {SETUP_TIMEOUT:.0f} s ({err!r}); "
                                   f"logs:\n{self.log_text()}")
            time.sleep(0.1)

    def log_text(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(self.logs.glob("*.log")))

    def worker_log(self) -> str:
        """What the GPU worker (and the stages it ran) printed so far."""
        return (self.logs / "worker.log").read_text(errors="replace")

    def cpu_worker_log(self) -> str:
        return (self.logs / "cpu-worker.log").read_text(errors="replace")

    # ---------------------------------------------------------------- use

    def on_worker(self, args: Sequence[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:  # type: ignore[no-untyped-def]
        """Run ``args`` on the worker host: in the GPU worker's own network and mount namespaces
        (``nsenter`` into the worker process: its loopback, its tmpfs, its store)."""
        return subprocess.run(["nsenter", "-t", str(self.worker_pid), "--net", "--mount", "--", *args],
                              capture_output=True, text=True, timeout=timeout, **kw)

    def worker_python(self, code: str, *args: str) -> str:
        r = self.on_worker([sys.executable, "-I", "-c", code, *args])
        if r.returncode != 0:
            raise RuntimeError(f"on the worker host: {code[:60]!r}: {r.stderr}")
        return r.stdout.strip()

    def probe_from_worker(self, host: str, port: int) -> str:
        """Connect from the worker host to ``host:port``: "REFUSED", "GOT <bytes>", ..."""
        return self.worker_python(PROBE, host, str(port))

    def probe_from_host(self, host: str, port: int) -> str:
        """Connect from the driver's host to ``host:port`` (the same probe, the other way)."""
        return subprocess.run([sys.executable, "-I", "-c", PROBE, host, str(port)], capture_output=True,
                              text=True, timeout=30).stdout.strip()

    def driver_env(self, store: str, **extra: str) -> Dict[str, str]:
        """The environment of a driver on the host end: its store under :attr:`base` (hidden
        from the worker host), its private debug folder, and the cluster as its executor."""
        debug = self.base / "driver" / "debug"
        debug.mkdir(parents=True, exist_ok=True)
        debug.chmod(0o700)
        env = self._env(PYLIGHTNIX_ROOT=store, PYLIGHTNIX_DEBUG_DIR=str(debug),
                        PYLIGHTNIX_EXECUTOR=f"dask:{self.scheduler_address}")
        env.update(extra)
        return env

    def driver_store(self, name: str) -> str:
        """A fresh store path for a driver (under :attr:`base`, so the worker host cannot see it)."""
        path = self.base / "driver" / name / "store"
        assert not path.exists(), path
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)

    # ---------------------------------------------------------------- isolation

    def check_isolation(self) -> None:
        """Raise :class:`IsolationError` unless, seen from the worker host, the driver's
        loopback and store are out of reach, and, seen from here, the worker is reachable
        only through the veth address. Each check has a positive control."""
        problems: List[str] = []

        def expect(ok: bool, what: str) -> None:
            if not ok:
                problems.append(what)

        me = os.getpid()
        expect(_ip("netns", "identify", str(self.worker_pid)).stdout.strip() == self.ns,
               f"the GPU worker (pid {self.worker_pid}) is not in the namespace {self.ns}")
        expect(ns_inode(self.worker_pid, "net") != ns_inode(me, "net"), "the GPU worker shares our network namespace")
        expect(ns_inode(self.worker_pid, "mnt") != ns_inode(me, "mnt"), "the GPU worker shares our mount namespace")

        # the driver's loopback: a listener on our 127.0.0.1 is unreachable from the worker host, by any address;
        # a listener on the host end's address is reachable (the control: the probe itself works)
        (local, local_token), (veth, veth_token) = token_listener("127.0.0.1"), token_listener(self.host_ip)
        try:
            for host in ("127.0.0.1", self.host_ip):
                got = self.probe_from_worker(host, local.port)
                expect(local_token not in got, f"the driver's 127.0.0.1:{local.port} is reachable from the worker "
                                               f"host at {host}: {got}")
            got = self.probe_from_worker(self.host_ip, veth.port)
            expect(got == f"GOT {veth_token}", f"control: {self.host_ip}:{veth.port} is not reachable from the "
                                                f"worker host ({got}); the probe proves nothing")
        finally:
            local.close()
            veth.close()

        # the driver's store: a marker under `base` is invisible on the worker host; the worker's own files
        # are there for it and invisible here
        marker = self.base / "driver" / f"isolation-marker-{secrets.token_hex(4)}"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("driver")
        theirs = f"{self.worker_store}/isolation-{secrets.token_hex(4)}"
        seen = json.loads(self.worker_python(
            "import json, os, sys; open(sys.argv[2], 'w').write('worker')\n"
            "print(json.dumps([os.path.exists(sys.argv[1]), open(sys.argv[2]).read(), "
            "os.stat('/proc/self/ns/net').st_ino, os.stat('/proc/self/ns/mnt').st_ino]))", str(marker), theirs))
        expect(seen[0] is False, f"the driver's store is visible on the worker host ({marker})")
        expect(seen[1] == "worker", "control: the worker host cannot write its own store")
        expect(not os.path.exists(theirs), f"the worker host's store is visible here ({theirs})")
        expect(seen[2:] == [ns_inode(self.worker_pid, "net"), ns_inode(self.worker_pid, "mnt")],
               "on_worker does not run in the GPU worker's namespaces")
        marker.unlink()

        # the worker seen from here: its Dask port answers on the veth address, not on our loopback
        wport = self.worker_port
        with socket.create_connection((self.worker_ip, wport), timeout=5):
            pass
        if self.tunnel:
            pass  # our 127.0.0.1 reaches the worker through the forwarder, on purpose
        elif wport not in {p for _, p, _ in _host_listener_ports()}:  # else some other program has that port here
            try:
                socket.create_connection(("127.0.0.1", wport), timeout=2).close()
                problems.append(f"the worker's port {wport} answers on our 127.0.0.1")
            except ConnectionRefusedError:
                pass
        for ip, port, _ in listeners([self.worker_pid]):
            expect(ip == self.worker_ip or is_loopback(ip),
                   f"the GPU worker listens on {ip}:{port}, beyond its veth address and its own loopback")
        if problems:
            raise IsolationError("the second host is not isolated:\n  " + "\n  ".join(problems))

    # ---------------------------------------------------------------- teardown

    def close(self) -> None:
        """Kill what we started, remove the link and the namespace, and check that nothing is left.
        Safe to call at any point of :meth:`start` and more than once."""
        errors = []
        for proc in reversed(self._procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)  # its own group (start_new_session)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 1.0  # nothing to save: a short grace, then SIGKILL
        for proc in reversed(self._procs):
            try:
                proc.wait(max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(5)
        self._procs.clear()
        if self._forwarder is not None:
            self._forwarder.close()
            self._forwarder = None
        for f in self._files:
            f.close()
        self._files.clear()
        if self._created_ns and self.ns in _netns_names():
            _kill_netns_pids(self.ns)  # e.g. a command left running by on_worker
            deadline = time.monotonic() + 5
            while _ip("netns", "pids", self.ns, check=False).stdout.strip() and time.monotonic() < deadline:
                time.sleep(0.05)
        if self._created_link and _link_exists(self.host_if):
            _ip("link", "del", self.host_if, check=False)
        if self._created_ns and self.ns in _netns_names():
            _ip("netns", "del", self.ns, check=False)
        if self._created_ns and self.ns in _netns_names():
            errors.append(f"the namespace {self.ns} is still there")
        if self._created_link and _link_exists(self.host_if):
            errors.append(f"the link {self.host_if} is still there")
        self._created_ns = self._created_link = False
        if errors:
            raise RuntimeError("two-host teardown: " + "; ".join(errors))


def _host_listener_ports() -> List[Tuple[str, int, int]]:
    """Every TCP listener of this network namespace (any process): ``[(address, port, 0)]``."""
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for row in f.read().splitlines()[1:]:
                fields = row.split()
                if fields[3] == "0A":
                    ip, port = _decode(fields[1])
                    out.append((ip, port, 0))
    return out
