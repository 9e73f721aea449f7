"""Executors: where ``realize`` runs the builds of independent derivations.

``Sequential()`` (the default) builds in the calling process, one at a time.
``Processes(n)`` runs builds in a local pool of ``n`` worker processes.
``Dask(client, address)`` runs builds as tasks on a ``distributed`` cluster.
The driver (:mod:`pylightnix.scheduler`) stays in charge of the graph; an
executor only starts one build, reports when it is done and cancels builds.
``PYLIGHTNIX_EXECUTOR`` (``sequential``, ``processes:N``, ``dask:ADDRESS``)
sets the default for every ``realize`` that names none.
"""
from __future__ import annotations

import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
import multiprocessing
import os
import pickle
import secrets
import signal
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from pylightnix.errors import ExecutorError

Task = Callable[..., Any]  # task(payload, *blobs)
#: (key, data): large immutable inputs of a task, e.g. archives of realizations. An executor may send
#: each key once per worker instead of once per task.
Blobs = List[Tuple[str, bytes]]


def require_cloudpickle() -> Any:
    """cloudpickle, which ships stage functions from ``__main__`` and closures to workers."""
    try:
        import cloudpickle
    except ImportError:
        raise ExecutorError("running builds outside the driver process needs cloudpickle: "
                            f"{sys.executable} -m pip install 'cloudpickle>=2.2' (or the '[dask]' extra of "
                            "pylightnix-breakpoints, which brings it with distributed)") from None
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
        127.0.0.1 (where paused builds on workers connect to: :mod:`pylightnix.remote`)."""
        return False

    def submit(self, task: Task, payload: bytes, resources: Optional[Dict[str, float]], key: str,
               blobs: Blobs = (), on_start: Optional[Callable[[str], None]] = None  # type: ignore[assignment]
               ) -> cf.Future:
        """Start ``task(payload, *blob_datas)`` somewhere; the future's result is the task's result.
        Executors that can tell call ``on_start(where)`` (from any thread) when the task starts."""
        raise NotImplementedError

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

def _pool_worker_init() -> None:
    """In a fresh pool process: no frontends (they belong to the driver), no pauses,
    and Ctrl-C only matters while a build runs (the driver forwards it)."""
    from pylightnix import breakpoints, events, store
    store._deferred = None  # a forked worker syncs each realization itself
    events._frontends.clear()
    events.set_default_frontend(None)
    breakpoints.set_build_breakpoints([])
    breakpoints.set_break_on_failure(False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


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
    """

    def __init__(self, n: Optional[int] = None, start_method: Optional[str] = None) -> None:
        if n is None:
            n = os.cpu_count() or 1
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ExecutorError(f"Processes(n): expected a positive number of processes, got {n!r}")
        methods = multiprocessing.get_all_start_methods()
        if start_method is None:
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        if start_method not in methods:
            raise ExecutorError(f"Processes(start_method={start_method!r}): expected one of {methods}")
        require_cloudpickle()
        self.n = n
        self.start_method = start_method
        self._pool: Optional[cf.ProcessPoolExecutor] = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Processes({self.n})"

    def same_machine(self) -> bool:
        return True

    def capacity(self) -> int:
        return self.n

    def where(self) -> str:
        return "process pool"

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                ctx = multiprocessing.get_context(self.start_method)
                self._pool = cf.ProcessPoolExecutor(self.n, mp_context=ctx, initializer=_pool_worker_init)
            return self._pool

    def submit(self, task: Task, payload: bytes, resources: Optional[Dict[str, float]], key: str,
               blobs: Blobs = (), on_start: Optional[Callable[[str], None]] = None  # type: ignore[assignment]
               ) -> cf.Future:
        datas = [d for _, d in blobs]
        pool = self._get_pool()
        try:
            return pool.submit(_in_pool, task, payload, datas)
        except BrokenProcessPool:
            self.reset()
            return self._get_pool().submit(_in_pool, task, payload, datas)

    def probe(self, task: Callable[..., bool], *args: Any) -> List[bool]:
        try:  # one probe per process: this also starts all of them before the first build
            pool = self._get_pool()
            return [f.result() for f in [pool.submit(_probe_in_pool, task, args) for _ in range(self.n)]]
        except BrokenProcessPool:
            self.reset()
            raise ExecutorError(f"{self!r}: the worker processes died while starting ({self.start_method}); if "
                                f"the error above is about the 'bootstrapping phase', put the script's top level "
                                f"under `if __name__ == \"__main__\":`, or use Processes(start_method=\"fork\")"
                                ) from None

    def reset(self) -> None:
        """Forget a broken pool (a worker died); the next submit starts a new one."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def cancel(self, futures: List[cf.Future]) -> None:
        """Interrupt every running build (SIGINT: the build cleans up), then drop the pool."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        for f in futures:
            f.cancel()
        procs = list(getattr(pool, "_processes", {}).values())
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGINT)
        cf.wait([f for f in futures if not f.done()], timeout=10)
        for p in procs:
            if p.is_alive():
                p.kill()
        pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------- Dask

def _require_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ExecutorError(f"Dask(...) needs the 'distributed' package: {sys.executable} -m pip install "
                            "'distributed>=2023.6' 'cloudpickle>=2.2' (or the '[dask]' extra of pylightnix-breakpoints)") from None
    require_cloudpickle()
    return distributed


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
    from pylightnix.process import raise_in_thread
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

    A derivation's ``resources`` (``mkdrv(..., resources={"GPU": 1})``) become
    the task's worker resources. Run workers with one thread each
    (``--nthreads 1``): a build may change the process's working directory.
    """

    def __init__(self, client: Any = None, address: Optional[str] = None, shared: Optional[bool] = None) -> None:
        self._distributed = _require_distributed()
        if client is not None and address is not None:
            raise ExecutorError("Dask(client=..., address=...): give one of them, not both")
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

    def __repr__(self) -> str:
        return f"Dask(address={self.address!r})" if self.address else "Dask()"

    @property
    def client(self) -> Any:
        if self._client is None:
            if self.address is not None:
                try:
                    self._client = self._distributed.Client(self.address)
                except OSError as e:
                    raise ExecutorError(f"Dask: cannot connect to the scheduler at {self.address}: {e}") from e
                self._own = True
            else:
                try:
                    return self._distributed.default_client()
                except ValueError:
                    raise ExecutorError("Dask(): no Dask client is running; pass client= or address=, or "
                                        "create a distributed.Client first") from None
        return self._client

    def same_machine(self) -> bool:
        from pylightnix.remote import is_local_address
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

    def end_run(self) -> None:
        self._blobs.clear()
        self._on_start.clear()
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
    """``sequential``, ``processes``, ``processes:N``, ``dask`` (the default client) or ``dask:ADDRESS``."""
    kind, sep, arg = value.strip().partition(":")
    kind = kind.strip().lower()
    if kind == "sequential" and not sep:
        return Sequential()
    if kind == "processes":
        if not sep:
            return Processes()
        try:
            n = int(arg)
        except ValueError:
            n = 0
        if n < 1:
            raise ExecutorError(f"PYLIGHTNIX_EXECUTOR={value!r}: 'processes:N' needs a positive number N, "
                                f"got {arg!r}")
        return Processes(n)
    if kind == "dask":
        if sep and not arg.strip():
            raise ExecutorError(f"PYLIGHTNIX_EXECUTOR={value!r}: 'dask:ADDRESS' needs an address such as "
                                f"tcp://127.0.0.1:8786")
        return Dask(address=arg.strip() or None)
    raise ExecutorError(f"PYLIGHTNIX_EXECUTOR={value!r}: expected 'sequential', 'processes:N' or 'dask:ADDRESS'")


_env_executor: Tuple[str, Optional[Executor]] = ("", None)


def default_executor() -> Optional[Executor]:
    """The executor named by ``PYLIGHTNIX_EXECUTOR`` (made once per value), or None for Sequential."""
    global _env_executor
    value = os.environ.get("PYLIGHTNIX_EXECUTOR", "")
    if not value.strip():
        return None
    if _env_executor[0] != value:
        ex = parse_executor(value)
        old = _env_executor[1]
        _env_executor = (value, ex)
        if old is not None:
            old.close()
    return _env_executor[1]
