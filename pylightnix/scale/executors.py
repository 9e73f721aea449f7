"""Executors: where ``realize`` runs the builds of independent derivations.

``Sequential()`` (the default) builds in the calling process, one at a time.
``Processes(n)`` runs builds in a local pool of ``n`` worker processes.
``Dask(client, address)`` runs builds as tasks on a ``distributed`` cluster.
The driver (:mod:`pylightnix.scale.driver`) stays in charge of the graph; an
executor only starts one build, reports when it is done and cancels builds.
``PYLIGHTNIX_EXECUTOR`` (:data:`EXECUTOR_FORMS`) sets the default for every
``realize`` that names none.
"""
from __future__ import annotations

import atexit
import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
import multiprocessing
import os
import pickle
import secrets
import signal
import sys
import threading
import time
import urllib.parse
import warnings
import weakref
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from pylightnix.core import settings
from pylightnix.core.errors import ExecutorError, ExecutorSettingsError

Task = Callable[..., Any]  # task(payload, *blobs)
#: (key, data): large immutable inputs of a task, e.g. archives of realizations. An executor may send
#: each key once per worker instead of once per task.
Blobs = List[Tuple[str, bytes]]


#: what ``PYLIGHTNIX_EXECUTOR`` accepts (its error message lists them all)
EXECUTOR_FORMS = settings.EXECUTOR_FORMS
#: seconds ``Dask(address=...)`` waits for the scheduler to answer, unless ``timeout=`` or this variable says
ENV_DASK_TIMEOUT = "PYLIGHTNIX_DASK_TIMEOUT"
DASK_TIMEOUT = settings.DASK_TIMEOUT
#: the address schemes a Dask scheduler listens on, across processes
DASK_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
#: ``Processes(n)`` starts at most this many processes per CPU (more only queue up on the CPUs)
PROCESSES_PER_CPU = 4
#: seconds a pool process whose driver died gives its build to clean up before it exits
ORPHAN_GRACE = 2.0


def require_cloudpickle() -> Any:
    """cloudpickle, which ships stage functions from ``__main__`` and closures to workers
    (a dependency of pylightnix-breakpoints: missing only in a broken install)."""
    try:
        import cloudpickle
    except ImportError:
        raise ExecutorError("running builds outside the driver process needs cloudpickle, which "
                            "pylightnix-breakpoints depends on; this install lacks it: "
                            f"{sys.executable} -m pip install 'cloudpickle>=2.2'") from None
    return cloudpickle


class Executor:
    """What the driver needs from an engine that runs builds: a small seam (a
    Ray executor would be a page of code)."""

    #: builds run in the driver process (no shipping, pauses work everywhere)
    local = False
    #: submit's ``on_start`` is called with the worker's address when a build starts
    reports_starts = False
    #: the store on the workers: None finds out with a probe file per run (shared if every worker sees
    #: the driver's store), True requires that, False always copies (e.g. over a filesystem whose locks
    #: cannot be trusted)
    shared: Optional[bool] = None

    def capacity(self) -> int:
        """How many builds may run at once."""
        return 1

    def where(self) -> str:
        """A short description of where builds go, for progress events."""
        return "driver"

    def same_machine(self) -> bool:
        """Whether every worker runs on this machine, so it can reach the driver's
        127.0.0.1 (where paused builds on workers connect to: :mod:`pylightnix.scale.hub`)."""
        return False

    #: builds paused on workers reach the driver's pause hub through the executor's own
    #: connections (:meth:`tunnel`), wherever the workers run
    tunnels_pauses = False

    def tunnel(self, hub: Tuple[str, int, str]) -> Optional[Dict[str, str]]:
        """What a worker needs to reach the pause hub at ``hub`` through this executor's own
        connections for this run (no secret in it), or None: it connects to ``hub`` itself."""
        return None

    def submit(self, task: Task, payload: bytes, resources: Optional[Dict[str, float]], key: str,
               blobs: Blobs = (), on_start: Optional[Callable[[str], None]] = None  # type: ignore[assignment]
               ) -> cf.Future:
        """Start ``task(payload, *blob_datas)`` somewhere; the future's result is the task's result.
        Executors that can tell call ``on_start(where)`` (from any thread) when the task starts."""
        raise NotImplementedError

    def expect(self, builds: int) -> None:
        """A run with at most ``builds`` builds starts (before :meth:`probe`): an executor that
        starts workers for it starts no more than that."""

    def end_run(self) -> None:
        """The run is over: what the executor kept for it (blobs, subscriptions) may go."""

    def probe(self, task: Callable[..., bool], *args: Any) -> List[bool]:
        """Run ``task(*args)`` on every worker (the shared-store probe)."""
        raise NotImplementedError

    def cancel(self, futures: List[cf.Future]) -> None:
        """Stop running builds; they clean up after themselves and store nothing."""

    def close(self) -> None:
        """Release pools and clients this executor created."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Sequential(Executor):
    """Build in the calling process, one derivation at a time (today's behaviour and speed)."""

    local = True

    def __repr__(self) -> str:
        return "Sequential()"


# ---------------------------------------------------------------- local processes

def _pool_worker_init(root: str, tmp: str, ready: Any) -> None:
    """In a fresh pool process: the driver's store, as a new object (its syncs are not deferred:
    a worker syncs each realization itself), no frontends (they belong to the driver), no pauses,
    and Ctrl-C only matters while a build runs (the driver forwards it). The process
    ends soon after the driver does, however the driver ended (:func:`_watch_driver`)."""
    from pylightnix.engine import breakpoints, events
    from pylightnix.core import store
    store.use_store(store.Store(root, tmp))
    events.drop_frontends()
    breakpoints.set_build_breakpoints([])
    breakpoints.set_break_on_failure(False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_driver, args=(os.getppid(),), name="pylightnix-watch-driver",
                     daemon=True).start()
    with ready.get_lock():  # from now on SIGINT is safe here: Processes.cancel may send it
        for i in range(len(ready)):
            if ready[i] == 0:
                ready[i] = os.getpid()
                break


def _watch_driver(ppid: int) -> None:
    """In a pool process: wait until the driver is gone, then interrupt the running build
    (it removes its temporary folder) and exit after :data:`ORPHAN_GRACE` seconds.

    A pool process outlives a driver killed with SIGKILL otherwise, and keeps the
    forkserver and the resource tracker alive with it. Two signs, either is enough:
    the pipe from the driver that multiprocessing hands every child (its sentinel)
    reaches EOF, and, with ``fork``, the parent pid changes. No ``PR_SET_PDEATHSIG``:
    it fires when the *thread* that started the process ends, and with forkserver the
    parent is the fork server, not the driver."""
    parent = multiprocessing.parent_process()
    while True:
        if parent is not None:
            parent.join(0.5)
            gone = not parent.is_alive()
        else:
            time.sleep(0.5)
            gone = False
        if gone or os.getppid() != ppid:
            break
    try:
        os.kill(os.getpid(), signal.SIGINT)  # ignored between builds; a running build cleans up
        time.sleep(ORPHAN_GRACE)
    finally:
        os._exit(1)


def _importing_main() -> bool:
    """Whether this process is a worker importing the driver's script as ``__mp_main__``
    (spawn and forkserver do, in each worker and, on Python 3.14+, in the fork server):
    the script then runs its unguarded top level once more in here."""
    f = sys._getframe(1)
    while f is not None:
        if f.f_code.co_name == "<module>" and f.f_globals.get("__name__") == "__mp_main__":
            return True
        f = f.f_back  # type: ignore[assignment]
    return False


def _in_pool(task: Task, payload: bytes, blobs: List[bytes]) -> bytes:
    """Run a build; its result or exception travels back with cloudpickle, so classes
    defined in ``__main__`` come back as the very classes the driver knows."""
    cloudpickle = require_cloudpickle()
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        try:
            return cloudpickle.dumps((True, task(payload, *blobs)))
        except BaseException as e:
            try:
                return cloudpickle.dumps((False, e))
            except Exception as e2:
                return cloudpickle.dumps((False, ExecutorError(f"a build failed with {e!r}, which cannot be sent "
                                                               f"back to the driver ({e2})")))
    finally:
        signal.signal(signal.SIGINT, old)


def _probe_in_pool(task: Callable[..., bool], args: Tuple[Any, ...]) -> bool:
    return task(*args)


class Processes(Executor):
    """Builds in a pool of ``n`` local worker processes (default: the CPU count).

    Stage functions, also those defined in ``__main__``, a notebook or a closure,
    are shipped with cloudpickle. The pool starts on first use and is reused by
    later realizations until :meth:`close`. Workers start with ``start_method``
    (default ``forkserver``, else ``spawn``): they never inherit the driver's
    threads, debugger or CUDA context, and, as with Dask's LocalCluster, a
    script must guard its top level with ``if __name__ == "__main__":``.
    ``"fork"`` starts faster and needs no guard, at those risks.

    A run starts no more processes than it has builds, and ``n`` above
    :data:`PROCESSES_PER_CPU` times the CPU count is lowered to that, with a
    ``RuntimeWarning``. Pool processes end within seconds when the driver dies.
    """

    def __init__(self, n: Optional[int] = None, start_method: Optional[str] = None) -> None:
        if n is None:
            n = os.cpu_count() or 1
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ExecutorError(f"Processes(n): expected a positive number of processes, got {n!r}")
        cap = max_processes()
        if n > cap:
            warnings.warn(f"Processes({n}): {n} processes on {os.cpu_count() or 1} CPU(s) only queue up on them; "
                          f"using {cap} ({PROCESSES_PER_CPU} per CPU, the most Processes starts)",
                          RuntimeWarning, stacklevel=2)
            n = cap
        methods = multiprocessing.get_all_start_methods()
        if start_method is None:
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        if start_method not in methods:
            raise ExecutorError(f"Processes(start_method={start_method!r}): expected one of {methods}")
        require_cloudpickle()
        self.n = n
        self.start_method = start_method
        self._pool: Optional[cf.ProcessPoolExecutor] = None
        self._ready: Any = None  # the pool's ready workers (see _pool_worker_init)
        self._size = n  # processes of the next pool: at most the builds of the run that starts it
        self._lock = threading.Lock()
        _open_pools.add(self)

    def __repr__(self) -> str:
        return f"Processes({self.n})"

    def same_machine(self) -> bool:
        return True

    def capacity(self) -> int:
        return self.n

    def where(self) -> str:
        return "process pool"

    def expect(self, builds: int) -> None:
        """A run with at most ``builds`` builds starts: the pool gets no more processes
        than that (a pool too small for this run is replaced; its builds still finish)."""
        if _importing_main():
            # A worker (or the 3.14 fork server) runs an unguarded script's top level again. It cannot start
            # processes; end it quietly, so that the driver's ExecutorError (see _not_started) stands alone.
            raise SystemExit(1)
        want = max(1, min(self.n, builds))
        with self._lock:
            old = None
            if self._pool is not None and self._size < want:
                old, self._pool = self._pool, None
            self._size = want if self._pool is None else self._size
        if old is not None:
            old.shutdown(wait=False)

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                ctx = multiprocessing.get_context(self.start_method)
                from pylightnix.core.store import current_store
                s = current_store()  # handed to each worker: the store it starts with
                # pids of the workers done starting: a SIGINT before that ends a worker with a traceback
                self._ready = ctx.Array("i", self._size)
                self._pool = cf.ProcessPoolExecutor(self._size, mp_context=ctx, initializer=_pool_worker_init,
                                                    initargs=(s.root, s.tmp, self._ready))
            return self._pool

    def _not_started(self, e: BaseException) -> ExecutorError:
        # close, not reset: wait for the pool's manager thread. Left running, it closes its wake-up pipe
        # while the interpreter's exit writes to it (3.11: "Exception ignored ... OSError: [Errno 9] Bad
        # file descriptor" after the ExecutorError). No build runs here, so the wait is short.
        self.close()
        return ExecutorError(f"{self!r}: the worker processes could not start ({self.start_method}: "
                             f"{type(e).__name__}: {e}); if this script's top level is not under "
                             f"`if __name__ == \"__main__\":`, put it there (each worker imports the script "
                             f"again), or use Processes(start_method=\"fork\")")

    def submit(self, task: Task, payload: bytes, resources: Optional[Dict[str, float]], key: str,
               blobs: Blobs = (), on_start: Optional[Callable[[str], None]] = None  # type: ignore[assignment]
               ) -> cf.Future:
        datas = [d for _, d in blobs]
        try:
            return self._get_pool().submit(_in_pool, task, payload, datas)
        except _START_ERRORS:  # a worker died: one new pool
            self.reset()
        try:
            return self._get_pool().submit(_in_pool, task, payload, datas)
        except _START_ERRORS as e:
            raise self._not_started(e) from None

    def probe(self, task: Callable[..., bool], *args: Any) -> List[bool]:
        try:  # one probe per process: this also starts all of them before the first build
            pool = self._get_pool()
            return [f.result() for f in [pool.submit(_probe_in_pool, task, args) for _ in range(self._size)]]
        except _START_ERRORS as e:
            raise self._not_started(e) from None

    def reset(self) -> None:
        """Forget a broken pool (a worker died); the next submit starts a new one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def cancel(self, futures: List[cf.Future]) -> None:
        """Interrupt every running build (SIGINT: the build cleans up), then drop the pool."""
        with self._lock:
            pool, self._pool, ready = self._pool, None, self._ready
        if pool is None:
            return
        for f in futures:
            f.cancel()
        procs = list(getattr(pool, "_processes", {}).values())
        interrupted: Set[int] = set()
        deadline = time.monotonic() + 10
        while True:  # a worker still starting may take a queued build later: interrupt it once it is ready
            with ready.get_lock():
                pids = set(ready[:]) - {0} - interrupted
            for p in procs:
                if p.pid in pids and p.is_alive():
                    os.kill(p.pid, signal.SIGINT)
                    interrupted.add(p.pid)
            left = [f for f in futures if not f.done()]
            if not left or time.monotonic() > deadline:
                break
            cf.wait(left, timeout=0.1)
        for p in procs:
            if p.is_alive():
                p.kill()
        pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _drop_pools_at_exit() -> None:
    """Let go of every pool while modules still exist. A pool collected during the
    interpreter's teardown runs its weakref callback with ``multiprocessing`` gone
    (``AttributeError: 'NoneType' object has no attribute 'util'`` on 3.10)."""
    for p in list(_open_pools):
        with p._lock:
            pool, p._pool = p._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


_open_pools: "weakref.WeakSet[Processes]" = weakref.WeakSet()
atexit.register(_drop_pools_at_exit)


#: how starting pool processes fails: a worker died (BrokenProcessPool), or, on Python 3.14+ where the
#: fork server imports the script too, the fork server died during its handshake (ConnectionResetError,
#: EOFError, BrokenPipeError); also EAGAIN/EMFILE when the system has no processes or files left
_START_ERRORS = (BrokenProcessPool, OSError, EOFError)


def max_processes() -> int:
    """The most processes ``Processes(n)`` starts: :data:`PROCESSES_PER_CPU` per CPU."""
    return PROCESSES_PER_CPU * (os.cpu_count() or 1)


# ---------------------------------------------------------------- Dask

def _require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ExecutorError(f"Dask(...) needs the 'distributed' package: {sys.executable} -m pip install "
                            "'distributed>=2023.6' (or the '[dask]' extra of pylightnix-breakpoints)") from None
    require_cloudpickle()
    return distributed


def check_dask_address(address: str) -> str:
    """``address`` if it can name a Dask scheduler (``SCHEME://HOST:PORT``, or ``HOST:PORT`` for
    tcp, SCHEME one of :data:`DASK_SCHEMES`, PORT 1-65535); else ExecutorError, before any
    connection is tried. Whether a scheduler listens there is for the connection to tell."""
    def bad(why: str) -> ExecutorError:
        return ExecutorError(f"Dask(address={address!r}): {why}; expected SCHEME://HOST:PORT such as "
                             f"tcp://127.0.0.1:8786 (SCHEME: {', '.join(DASK_SCHEMES)})")
    if not isinstance(address, str) or not address.strip():
        raise bad("no address")
    scheme, sep, _ = address.partition("://")
    if not sep:
        scheme, address_url = "tcp", "tcp://" + address
    else:
        scheme, address_url = scheme.lower(), address
    if scheme not in DASK_SCHEMES:
        raise bad(f"unknown scheme {scheme!r}")
    try:
        parts = urllib.parse.urlsplit(address_url)
        port = parts.port
    except ValueError as e:  # "[::1", a port out of range or not a number
        raise bad(str(e)) from None
    if not parts.hostname:
        raise bad("no host")
    if port is None or port == 0:
        raise bad("no port" if port is None else "port 0")
    if parts.username is not None or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise bad("more than a host and a port")
    return address


def dask_timeout(timeout: Optional[float] = None) -> float:
    """Seconds to wait for a Dask scheduler: ``timeout``, else ``PYLIGHTNIX_DASK_TIMEOUT``, else 30."""
    if timeout is None:
        return settings.dask_timeout()
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < 1e6:
        raise ExecutorError(f"Dask(timeout={timeout!r}): expected a positive number of seconds")
    return float(timeout)


class _Interrupted(BaseException):
    """Raised inside a build on a Dask worker when the driver cancels it."""


_builds_lock = threading.Lock()
_builds: Dict[str, Set[int]] = {}  # run name -> threads running a build of that run, on this worker
_interrupted: Set[int] = set()


def _dask_task(task: Task, payload: bytes, run: str, key: str, *blobs: bytes) -> Any:
    """Run ``task(payload)`` on a Dask worker, interruptible by :func:`_interrupt_builds`
    (Dask itself cannot stop a running task); tell the driver where it started."""
    from distributed import get_worker
    worker = get_worker()
    worker.log_event(run, (key, worker.address))
    me = threading.get_ident()
    with _builds_lock:
        _builds.setdefault(run, set()).add(me)
    try:
        return task(payload, *blobs)
    except _Interrupted:
        raise ExecutorError("the build was cancelled by the driver; nothing was stored") from None
    finally:
        with _builds_lock:
            _builds[run].discard(me)
            if not _builds[run]:
                del _builds[run]
            late = me in _interrupted
            _interrupted.discard(me)
        if late:  # an interrupt sent just as the build ended must not hit the worker's own code
            try:
                for _ in range(10000):
                    pass
            except _Interrupted:
                pass


def _interrupt_builds(run: str) -> int:
    """On a worker: raise _Interrupted in every running build of ``run``."""
    from pylightnix.wire.process import raise_in_thread
    with _builds_lock:
        tids = list(_builds.get(run, ()))
        for tid in tids:
            _interrupted.add(tid)
            raise_in_thread(tid, _Interrupted)
    return len(tids)


class Dask(Executor):
    """Builds as tasks on a Dask ``distributed`` cluster: on ``client``, on a new
    client connected to ``address``, or on the current default client.

    Workers that see the driver's store build straight into it; others get copies
    (``shared``: see :attr:`Executor.shared`).

    ``address`` is checked at once (:func:`check_dask_address`); the connection is made on
    first use and gives up after ``timeout`` seconds (default: ``PYLIGHTNIX_DASK_TIMEOUT``,
    else 30).

    A derivation's ``resources`` (``mkdrv(..., resources={"GPU": 1})``) become
    the task's worker resources. Run workers with one thread each
    (``--nthreads 1``): a build may change the process's working directory.

    Builds paused on a worker, on any host, reach the driver through Dask's own
    connections to the scheduler (:mod:`pylightnix.scale.tunnel`).
    """

    tunnels_pauses = True

    def __init__(self, client: Any = None, address: Optional[str] = None, shared: Optional[bool] = None,
                 timeout: Optional[float] = None) -> None:
        if client is not None and address is not None:
            raise ExecutorError("Dask(client=..., address=...): give one of them, not both")
        if address is not None:
            check_dask_address(address)
        self.timeout = dask_timeout(timeout)
        self._distributed = _require_distributed()
        if shared not in (None, True, False):
            raise ExecutorError(f"Dask(shared=...): expected None (probe), True or False, got {shared!r}")
        self.shared = shared
        self.reports_starts = True
        self._client = client
        self._own = False
        self.address = address
        self._run_name: Optional[str] = None  # names this run's builds on the workers and its event topic
        self._blobs: Dict[str, Any] = {}  # blob key -> distributed.Future of the scattered data
        self._on_start: Dict[str, Callable[[str], None]] = {}  # task key -> whom to tell where it started
        self._relay: Any = None  # this run's tunnels to the pause hub (pylightnix.scale.tunnel.Relay)

    def __repr__(self) -> str:
        return f"Dask(address={self.address!r})" if self.address else "Dask()"

    @property
    def client(self) -> Any:
        if self._client is None:
            if self.address is not None:
                self._client = self._connect()
                self._own = True
            else:
                try:
                    return self._distributed.default_client()
                except ValueError:
                    raise ExecutorError("Dask(): no Dask client is running; pass client= or address=, or "
                                        "create a distributed.Client first") from None
        return self._client

    def _connect(self) -> Any:
        """A client of the scheduler at ``self.address``, or ExecutorError after ``self.timeout``.
        distributed retries a refused connection until its timeout, but waits without one
        for the handshake (a port where something else listens): so the client is made in a
        thread, given up on after the timeout (closed if it ever connects)."""
        lock, done = threading.Lock(), threading.Event()
        box: Dict[str, Any] = {}

        def connect() -> None:
            try:
                client = self._distributed.Client(self.address, timeout=self.timeout)
            except Exception as e:
                box["error"] = e
                done.set()
                return
            with lock:
                if box.get("abandoned"):
                    client.close()
                box["client"] = client
            done.set()
        threading.Thread(target=connect, name="pylightnix-dask-connect", daemon=True).start()
        answered = done.wait(self.timeout + 1)  # distributed's own error, if any, comes first
        with lock:
            box["abandoned"] = not answered
        if answered and "client" in box:
            return box["client"]
        why = f": {type(box['error']).__name__}: {box['error']}" if "error" in box else ""
        raise ExecutorError(f"Dask: no scheduler answered at {self.address} within {self.timeout:g} s{why}; check "
                            f"the address, or wait longer with {ENV_DASK_TIMEOUT}=SECONDS (or Dask(..., "
                            f"timeout=SECONDS))")

    def same_machine(self) -> bool:
        from pylightnix.scale.hub import is_local_address
        workers = list(self.client.scheduler_info().get("workers", {}))
        return bool(workers) and all(is_local_address(a) for a in workers)

    def capacity(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def where(self) -> str:
        return f"dask {self.client.scheduler.address}"

    def submit(self, task: Task, payload: bytes, resources: Optional[Dict[str, float]], key: str,
               blobs: Blobs = (), on_start: Optional[Callable[[str], None]] = None  # type: ignore[assignment]
               ) -> cf.Future:
        if self._run_name is None:
            self._run_name = f"pylightnix-run-{secrets.token_hex(8)}"
            self.client.subscribe_topic(self._run_name, self._started)
        if on_start is not None:
            self._on_start[key] = on_start
        shared = []
        for k, data in blobs:  # scattered once; Dask moves each to a worker at most once
            if k not in self._blobs:
                self._blobs[k] = self.client.scatter(data, hash=False)
            shared.append(self._blobs[k])
        dfut = self.client.submit(_dask_task, task, payload, self._run_name, key, *shared, key=key, pure=False,
                                  resources=dict(resources or {}) or None)
        fut: cf.Future = cf.Future()
        fut.set_running_or_notify_cancel()
        fut.dask_future = dfut  # type: ignore[attr-defined]

        def done(_: Any) -> None:
            try:
                fut.set_result(None)  # the driver fetches the real result (or exception) itself
            except cf.InvalidStateError:
                pass
        dfut.add_done_callback(done)
        return fut

    def probe(self, task: Callable[..., bool], *args: Any) -> List[bool]:
        return list(self.client.run(task, *args).values())

    def cancel(self, futures: List[cf.Future]) -> None:
        dfuts = [f.dask_future for f in futures if hasattr(f, "dask_future")]  # type: ignore[attr-defined]
        if self._run_name is not None:
            self.client.run(_interrupt_builds, self._run_name)  # running builds stop and clean up
        if dfuts:
            self.client.cancel(dfuts, force=True)

    def _started(self, event: Any) -> None:
        """A worker's log event (time, (task key, worker address)): a build started there."""
        key, where = event[1]
        callback = self._on_start.pop(key, None)
        if callback is not None:
            callback(where)

    def tunnel(self, hub: Tuple[str, int, str]) -> Optional[Dict[str, str]]:
        if self._relay is None or self._relay.hub != hub:
            from pylightnix.scale.tunnel import Relay
            if self._relay is not None:
                self._relay.close()
            self._relay = Relay(self.client, hub)
        return self._relay.topics()

    def end_run(self) -> None:
        self._blobs.clear()
        self._on_start.clear()
        if self._relay is not None:
            self._relay.close()
            self._relay = None
        if self._run_name is not None:
            self.client.unsubscribe_topic(self._run_name)
            self._run_name = None

    def close(self) -> None:
        self._blobs.clear()
        if self._own and self._client is not None:
            self._client.close()
            self._client = None


def result_of(fut: cf.Future) -> Any:
    """The task's result (raising its exception), whichever executor ran it."""
    dfut = getattr(fut, "dask_future", None)
    if dfut is not None:
        return dfut.result()
    ok, value = pickle.loads(fut.result())
    if not ok:
        raise value
    return value


# ---------------------------------------------------------------- PYLIGHTNIX_EXECUTOR

def parse_executor(value: str) -> Executor:
    """An executor from one of :data:`EXECUTOR_FORMS`; ExecutorError naming ``value`` otherwise
    (a Dask address is checked here, without connecting)."""
    kind, arg = settings.parse_executor_spec(value)
    if kind == "sequential":
        return Sequential()
    if kind == "processes":
        return Processes() if arg is None else Processes(int(arg))
    try:
        return Dask(address=None if arg is None else str(arg))
    except ExecutorError as e:
        raise ExecutorSettingsError(f"PYLIGHTNIX_EXECUTOR={value!r}: {e}") from None


_env_executor: Tuple[str, Optional[Executor]] = ("", None)


def default_executor() -> Optional[Executor]:
    """The executor named by ``PYLIGHTNIX_EXECUTOR`` (made once per value), or None for Sequential."""
    global _env_executor
    value = settings.executor()
    if value is None:
        return None
    if _env_executor[0] != value:
        ex = parse_executor(value)
        old = _env_executor[1]
        _env_executor = (value, ex)
        if old is not None:
            old.close()
    return _env_executor[1]
