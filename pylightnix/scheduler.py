"""The parallel driver: realize a closure with builds running on an executor.

The driver walks the closure in the calling process. It matches cached stages
itself and hands every derivation whose dependencies are realized to the
executor, at most ``executor.capacity()`` at a time. A build takes its
derivation's lock, matches again (another driver may have built it) and commits
atomically, exactly as a sequential build does; so several drivers and a
cluster can share one store.

The store on the workers is found out once per run with a probe file:

- *shared mode*: every worker sees the probe in the driver's store, so builds
  go straight into it;
- *copy mode*: otherwise each build receives the dependency realizations its
  worker lacks (archives checked against their RRefs), builds in the worker's
  own store and sends its realizations back; the driver checks their hashes and
  commits them under its own lock for the derivation.

A derivation with a build breakpoint, and every build while break-on-failure
is on, pauses on its worker when the worker runs on this machine
(:mod:`pylightnix.remote`); on other clusters it is built in the driver.
"""
from __future__ import annotations

import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
import heapq
import os
import pickle
import queue
import secrets
import socket
import sys
import time
import traceback
import types
from os.path import join
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from pylightnix import events
from pylightnix import breakpoints
from pylightnix.build import build_class, stage_function
from pylightnix.events import COMMITTED
from pylightnix.breakpoints import break_on_failure, match_breakpoint
from pylightnix.config import Config
from pylightnix.engine import _TmpArea, _build, _match, _needed, _name
from pylightnix.errors import BuildCancelled, BuildError, ExecutorError, MatcherError, PauseNotServed, StoreError
from pylightnix.executors import Executor, require_cloudpickle, result_of
from pylightnix.manager import Closure, Derivation
from pylightnix.store import Store, derivation_try_lock, remember_deps, store_instantiate, store_pin, store_root, \
    tmp_root, use_store_at
from pylightnix.transfer import pack, unpack, unpack_built
from pylightnix.types import Context, DRef, RealizeArg, RRef

#: largest pickled ``__main__`` value (other than functions, classes and modules) that goes
#: along to a console at a pause on a worker
MAIN_VALUE_LIMIT = 64 * 1024
#: the same for functions, classes (pickled by value with what they refer to) and modules
MAIN_CODE_LIMIT = 1024 * 1024
#: how often a killed worker process's build is started again (Dask retries on its own)
RETRIES = 3

# ---------------------------------------------------------------- on the worker


def _location() -> str:
    distributed = sys.modules.get("distributed")  # a Dask worker has it; a pool process need not import it
    if distributed is not None:
        try:
            return distributed.get_worker().address
        except ValueError:
            pass
    return f"{socket.gethostname()} pid {os.getpid()}"


def sees_probe(path: str, content: str) -> bool:
    """Whether this process reads ``content`` in the probe file ``path`` (shared store)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read() == content
    except OSError:
        return False


def _drive_defaults(steps: Any) -> List[RRef]:
    """Run the engine with no frontend: every pause does its default (build, or raise)."""
    try:
        next(steps)
        while True:
            steps.send(None)
    except StopIteration as e:
        return e.value


def _main_globals(blob: bytes) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, data in pickle.loads(blob).items():
        try:
            out[k] = pickle.loads(data)
        except Exception:  # e.g. a module the worker cannot import: the console goes without it
            continue
    return out


def _drive_remote(steps: Any, debug: Dict[str, Any], where: str, built: List[bool]) -> List[RRef]:
    """Run the engine on a worker, serving each pause through the driver's pause hub;
    a result committed by hand counts as built."""
    from pylightnix import remote
    shipped: Optional[Dict[str, Any]] = None  # unpickled at the first pause, shared by the next
    try:
        pause = next(steps)
        while True:
            if shipped is None:
                shipped = _main_globals(debug["globals"])
            pause.user_globals = shipped  # the driver's, for the console (each pause copies them)
            try:
                remote.serve(pause, debug["hub"], where, debug.get("service"),
                             debug.get("reattach", remote.REATTACH_TIMEOUT))
            except PauseNotServed:
                steps.close()  # the engine drops this build (temporary folder, lock) before the error travels
                raise
            if pause.state == COMMITTED:
                built.append(True)
            pause = steps.send(None)
    except StopIteration as e:
        return e.value


def _sendable(e: BaseException, dref: DRef, where: str) -> BaseException:
    """``e`` with the worker traceback attached, or a BuildError if ``e`` cannot travel back."""
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    note = f"[pylightnix] the build of {dref} failed on {where}; worker traceback:\n{tb}"
    try:
        e.worker_traceback = tb  # type: ignore[attr-defined]
        if hasattr(e, "add_note"):
            e.add_note(note)
        pickle.loads(require_cloudpickle().dumps(e))
        return e
    except Exception:
        return BuildError(f"{dref}: the stage raised {type(e).__name__}: {e}, which cannot be sent back to the "
                          f"driver\n{note}", dref=dref)


def run_build(payload: bytes, *archives: bytes) -> Dict[str, Any]:
    """The task a worker runs: build one derivation (or match it) and report the RRefs.
    In copy mode ``archives`` are the dependency realizations, in the order of ``spec["ship"]``."""
    spec = pickle.loads(payload)
    drv: Derivation = spec["drv"]._replace(realizer=pickle.loads(spec["realizer"]))
    where = _location()
    if spec["shared"]:
        if not sees_probe(*spec["probe"]):
            raise StoreError(f"{drv.dref}: worker {where} does not see the driver's store {spec['store']} "
                             f"(the probe file is missing); start workers that share it, or use copy mode",
                             dref=drv.dref)
        use_store_at(spec["store"], spec["tmp"] if os.path.isdir(spec["tmp"]) else Store.from_env().tmp)
    else:
        env = Store.from_env()
        use_store_at(env.root, env.tmp)
        for (cfg, rref), data in zip(spec["ship"], archives):
            store_instantiate(Config(cfg), check=True)
            unpack(rref, data)
    remember_deps(drv.dref, drv.deps)
    ran: List[bool] = []
    realizer = drv.realizer

    def counted(*args: Any) -> Any:
        ran.append(True)
        return realizer(*args)
    counted.__pylightnix_stage_function__ = stage_function(realizer)  # type: ignore[attr-defined]
    counted.__pylightnix_build_class__ = build_class(realizer)  # type: ignore[attr-defined]
    area = _TmpArea()
    failure: Optional[BaseException] = None
    debug = spec.get("debug")
    try:
        steps = _build(drv._replace(realizer=counted), spec["ctx"], *spec["index"], spec["forced"], False,
                       spec["rarg"], area)
        if debug is None:
            rrefs = _drive_defaults(steps)
        else:  # pause here, by the driver's breakpoints, and let the driver's hub serve the pauses
            with breakpoints.overridden(debug["breakpoints"], debug["on_failure"]):
                rrefs = _drive_remote(steps, debug, where, ran)
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        failure = _sendable(e, drv.dref, where)
    finally:
        area.close()
    if failure is not None:
        raise failure  # outside the handler: a replacement does not drag the original along as its context
    out: Dict[str, Any] = {"rrefs": rrefs, "built": bool(ran), "where": where}
    if not spec["shared"]:
        out["archives"] = [(r, pack(r)) for r in rrefs]
    return out


# ---------------------------------------------------------------- in the driver

class _Job:
    def __init__(self, drv: Derivation, index: int, ctx: Context, payload: bytes, blobs: List[Tuple[str, bytes]],
                 lock_fd: int = -1) -> None:
        self.drv = drv
        self.index = index
        self.ctx = ctx
        self.payload = payload
        self.blobs = blobs
        self.lock_fd = lock_fd
        self.attempts = 1
        #: why a failure of this build on its worker could not pause there (break-on-failure with
        #: pauses not served on workers): it is then built again in the driver, where it can
        self.fails_here: Optional[str] = None

    def release(self) -> None:
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1


class _TooLarge(Exception):
    """A pickle went past its limit (:func:`limited_dumps`)."""


class _LimitedWriter:
    """A file for a pickler that keeps at most ``limit`` bytes and raises past them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.parts: List[bytes] = []

    def check(self, more: int) -> None:
        if self.size + more > self.limit:
            raise _TooLarge(f"more than {self.limit} bytes")

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes
        self.check(n)
        self.size += n
        self.parts.append(bytes(data))
        return n


def _flat_size(v: Any) -> int:
    """What ``v`` holds itself (``sys.getsizeof``, an array's ``nbytes``), not what it refers to."""
    nbytes = getattr(v, "nbytes", 0) if not isinstance(v, type) else 0
    return max(sys.getsizeof(v), nbytes if isinstance(nbytes, int) else 0)


def limited_dumps(cloudpickle: Any, obj: Any, limit: int) -> bytes:
    """``cloudpickle.dumps(obj)``, or ``_TooLarge`` as soon as the pickle passes ``limit`` bytes:
    the pickler writes frames of ~64 KB as it goes, and a large buffer (a numpy array, with
    protocol 5) is measured before it is copied, so a 300 MB value costs about ``limit``."""
    out = _LimitedWriter(limit)

    def in_band(buf: pickle.PickleBuffer) -> bool:
        out.check(memoryview(buf).nbytes)
        return True
    cloudpickle.CloudPickler(out, protocol=5, buffer_callback=in_band).dump(obj)
    return b"".join(out.parts)


class _Run:
    """One realization on one executor: the probe, the mode and the shipping."""

    def __init__(self, executor: Executor, by_dref: Dict[DRef, Derivation], builds: int) -> None:
        self.executor = executor
        self.by_dref = by_dref
        self.cloudpickle = require_cloudpickle()
        self.store, self.tmp = store_root(), tmp_root()
        executor.expect(builds)
        content = secrets.token_hex(16)
        self.probe = (join(self.store, f".tmp-{os.getpid()}-{content[:8]}-probe"), content)
        with open(self.probe[0], "w", encoding="utf-8") as f:
            f.write(content)
        if executor.shared is False:
            self.shared = False
        else:
            try:
                seen = executor.probe(sees_probe, *self.probe)
            except BaseException:  # e.g. the workers could not start: no probe file stays behind
                self.close()
                raise
            self.shared = bool(seen) and all(seen)
            if executor.shared and not self.shared:
                self.close()
                raise ExecutorError(f"{executor!r}: {seen.count(False)} of {len(seen)} workers do not see the "
                                    f"driver's store {self.store}; use shared=None to copy realizations to them")
        self.where = executor.where() + ("" if self.shared else " (copy mode)")
        self.packs: Dict[RRef, bytes] = {}
        self.realizers: Dict[int, Tuple[Any, bytes]] = {}
        self._main: Optional[bytes] = None

    def main_globals(self) -> bytes:
        """The driver's ``__main__`` globals a console at a pause on a worker needs (your
        functions and classes, imported modules and names, small values), pickled once
        per run; what cannot be pickled, or is large, stays behind.

        Each value is pickled into a writer that gives up past its limit
        (:data:`MAIN_VALUE_LIMIT`, :data:`MAIN_CODE_LIMIT`), so a large global costs
        at most that much work and memory, however deep it is: ``sys.getsizeof`` is
        shallow and a ``__sizeof__`` may raise. Nothing a global does fails the run."""
        if self._main is None:
            main = sys.modules.get("__main__")
            picked: Dict[str, bytes] = {}
            for k, v in list(vars(main).items()) if main is not None else []:
                if k.startswith("__"):
                    continue
                try:
                    code = callable(v) or isinstance(v, types.ModuleType)
                    limit = MAIN_CODE_LIMIT if code else MAIN_VALUE_LIMIT
                    if _flat_size(v) > limit:  # a long str or a strided array would be copied whole first
                        continue
                    data = limited_dumps(self.cloudpickle, v, limit)
                except Exception:  # unpicklable, or a dataset: it stays behind
                    continue
                picked[k] = data
            self._main = pickle.dumps(picked)
        return self._main

    def close(self) -> None:
        self.executor.end_run()
        try:
            os.remove(self.probe[0])
        except FileNotFoundError:
            pass

    def ship(self, drv: Derivation, results: Dict[DRef, List[RRef]]) -> List[Tuple[Dict[str, Any], RRef, bytes]]:
        """Copy mode: every realization ``drv`` depends on, transitively, with its derivation's
        config and its archive (made once per run)."""
        if self.shared:
            return []
        out = []
        seen: Set[DRef] = set()
        stack = list(drv.deps)
        while stack:
            d = stack.pop()
            if d in seen:
                continue
            seen.add(d)
            dep = self.by_dref[d]
            stack.extend(dep.deps)
            for r in results[d]:
                if r not in self.packs:
                    self.packs[r] = pack(r)
                out.append((dep.config.val, r, self.packs[r]))
        return out

    def _realizer_bytes(self, drv: Derivation) -> bytes:
        """The pickled realizer, once per realizer object and run (stages often share one)."""
        hit = self.realizers.get(id(drv.realizer))
        if hit is None or hit[0] is not drv.realizer:
            hit = self.realizers[id(drv.realizer)] = (drv.realizer, self.cloudpickle.dumps(drv.realizer))
        return hit[1]

    def payload(self, drv: Derivation, index: Tuple[int, int], ctx: Context, rarg: RealizeArg, forced: bool,
                ship: List[Tuple[Dict[str, Any], RRef, bytes]], debug: Optional[Dict[str, Any]] = None) -> bytes:
        try:
            spec = {"drv": drv._replace(realizer=None), "realizer": self._realizer_bytes(drv), "index": index,
                    "ctx": ctx, "rarg": rarg, "forced": forced, "shared": self.shared, "store": self.store,
                    "tmp": self.tmp, "probe": self.probe, "ship": [(cfg, r) for cfg, r, _ in ship],
                    "debug": debug}
            return self.cloudpickle.dumps(spec)
        except Exception as e:
            for what, obj in (("realizer", derivation_function(drv)), ("matcher", drv.matcher),
                              ("realize_args", rarg)):
                try:
                    self.cloudpickle.dumps(obj)
                except Exception as e2:
                    raise ExecutorError(f"{drv.dref}: cannot ship the {what} {obj!r} to {self.executor!r}: "
                                        f"{type(e2).__name__}: {e2}", dref=drv.dref) from e2
            raise ExecutorError(f"{drv.dref}: cannot ship the derivation to {self.executor!r}: "
                                f"{type(e).__name__}: {e}", dref=drv.dref) from e

    def receive(self, job: _Job, out: Dict[str, Any]) -> List[RRef]:
        """The build's RRefs in the driver's store (copy mode: committed here, then matched)."""
        if self.shared:
            return list(out["rrefs"])
        if not isinstance(out, dict):
            raise StoreError(f"{job.drv.dref}: the worker sent back {type(out).__name__} instead of the build's "
                             f"result; nothing was stored", dref=job.drv.dref)
        where = out.get("where")
        got = unpack_built(job.drv.dref, out.get("archives"), str(where))
        rrefs = _match(job.drv, job.ctx)
        if rrefs is None:
            raise MatcherError(f"{job.drv.dref}: the matcher asks for a build after receiving "
                               f"{got} from {where}", dref=job.drv.dref)
        return rrefs


def _remote_pauses(executor: Executor) -> Tuple[bool, str]:
    """Whether builds that may pause can pause on their workers (else they build here), and
    if not, why (for the frontends: a breakpoint is never moved or skipped silently)."""
    from pylightnix import remote
    if not remote.enabled():
        return False, f"{remote.ENV_REMOTE} is off"
    if not events.remote_pauses_served():
        return False, "the frontend in charge of pauses serves them only in the driver"
    try:
        if executor.same_machine():
            return True, ""
        return False, (f"the workers of {executor.where()} run on other hosts, and pauses on workers are "
                       f"served only on this machine")
    except Exception as e:  # a cluster we cannot ask: build paused derivations here, as before
        return False, f"{executor.where()} did not say where its workers run ({e})"


def derivation_function(drv: Derivation) -> Any:
    """The user's function behind the realizer, which is what fails to pickle."""
    from pylightnix.manager import derivation_stage_function
    f = derivation_stage_function(drv)
    try:
        require_cloudpickle().dumps(f)
    except Exception:
        return f
    return drv.realizer


def realize_parallel(closure: Closure, executor: Executor, force_rebuild: Set[DRef], assert_realized: Set[DRef],
                     realize_args: Optional[Dict[DRef, RealizeArg]], keep_going: bool) -> List[RRef]:
    """Realize ``closure``'s target, building independent derivations on ``executor``.

    Like the sequential engine, it pins what it uses against gc and tells frontends
    when the realization starts and ends."""
    order = _needed(closure)
    pin = store_pin([d.dref for d in order])
    error: Optional[BaseException] = None
    events.notify("on_realize_start", closure.dref, len(order))
    try:
        return _realize_parallel(closure, order, executor, force_rebuild, assert_realized, realize_args, keep_going)
    except BaseException as e:
        error = e
        raise
    finally:
        pin.close()
        events.notify("on_realize_end", closure.dref, len(order), error)


def _realize_parallel(closure: Closure, order: List[Derivation], executor: Executor, force_rebuild: Set[DRef],
                      assert_realized: Set[DRef], realize_args: Optional[Dict[DRef, RealizeArg]],
                      keep_going: bool) -> List[RRef]:
    from pylightnix.realize import drive
    total = len(order)
    by_dref = {d.dref: d for d in order}
    index = {d.dref: i for i, d in enumerate(order)}
    missing = {d.dref: len(d.deps) for d in order}
    users: Dict[DRef, List[DRef]] = {d.dref: [] for d in order}
    for d in order:
        for dep in d.deps:
            users[dep].append(d.dref)
    ready = [i for i, d in enumerate(order) if not d.deps]
    heapq.heapify(ready)
    results: Dict[DRef, List[RRef]] = {}
    rargs = realize_args or {}
    running: Dict[cf.Future, _Job] = {}
    deferred: List[int] = []
    failure: Optional[BaseException] = None
    area = _TmpArea()
    run: Optional[_Run] = None
    capacity, capacity_at = executor.capacity(), time.monotonic()
    remote_ok: List[Tuple[bool, str]] = []  # whether builds can pause on their workers, else why not; asked once
    here: Set[DRef] = set()  # builds moved into the driver, so that their pause is served
    told: Set[DRef] = set()

    def notice(drv: Derivation, text: str) -> None:
        """Tell every frontend, once per derivation, that its pause is served elsewhere than asked."""
        if drv.dref not in told:
            told.add(drv.dref)
            events.notify("on_notice", text, dref=drv.dref, name=_name(drv))

    def build_here(job: "_Job", why: str) -> None:
        """A build sent away comes back to be built in the driver, where its pause is served."""
        job.release()
        here.add(job.drv.dref)
        notice(job.drv, why)
        heapq.heappush(ready, job.index)

    def finish(drv: Derivation, rrefs: List[RRef]) -> None:
        results[drv.dref] = rrefs
        for u in users[drv.dref]:
            missing[u] -= 1
            if missing[u] == 0:
                heapq.heappush(ready, index[u])

    def fail(e: BaseException) -> None:
        nonlocal failure
        if failure is None:
            failure = e

    inbox: "queue.Queue[Callable[[], None]]" = queue.Queue()  # work for this thread from other threads
    wake = [cf.Future()]  # done when something was put into `inbox`

    def post(work: Callable[[], None]) -> None:  # any thread
        inbox.put(work)
        try:
            wake[0].set_result(None)
        except cf.InvalidStateError:
            pass

    def on_start(job: _Job) -> Callable[[str], None]:
        def tell(where: str) -> None:
            suffix = "" if run is None or run.shared else " (copy)"
            post(lambda: events.notify("on_progress", job.index, total, job.drv.dref, _name(job.drv),
                                       where=where + suffix))
        return tell

    def remote_event(kind: str, remote: Any) -> None:  # the pause hub's thread
        from pylightnix.remote import deliver
        post(lambda: deliver(kind, remote))

    hub: Any = None
    watched: List[DRef] = []

    def debug_info(drv: Derivation) -> Optional[Dict[str, Any]]:
        """Debug info for a build that may pause on its worker; None: it builds here."""
        nonlocal hub
        from pylightnix import remote
        if hub is None:
            hub = remote.hub()
        hub.watch(drv.dref, remote_event)
        watched.append(drv.dref)
        assert run is not None
        return {"hub": hub.address, "breakpoints": breakpoints.build_breakpoints(),
                "on_failure": break_on_failure(), "globals": run.main_globals(),
                "service": events.remote_service(), "reattach": remote.reattach_timeout()}

    def submit(job: _Job) -> None:
        assert run is not None
        fut = executor.submit(run_build, job.payload, job.drv.resources,
                              f"pylightnix-{_name(job.drv)}-{secrets.token_hex(6)}", job.blobs, on_start(job))
        running[fut] = job
        if not executor.reports_starts:
            events.notify("on_progress", job.index, total, job.drv.dref, _name(job.drv), where=run.where)

    try:
        while True:
            while ready and (failure is None or keep_going):
                i = heapq.heappop(ready)
                drv = order[i]
                ctx: Context = {d: results[d] for d in sorted(drv.deps)}
                forced = drv.dref in force_rebuild
                rrefs = None if forced else _match(drv, ctx)
                if rrefs is not None:
                    finish(drv, rrefs)
                    continue
                if drv.dref in assert_realized:
                    raise StoreError(f"{drv.dref} was expected to be realized already, but it needs a build",
                                     dref=drv.dref)
                rarg = dict(rargs.get(drv.dref, {}))
                breaks = match_breakpoint(_name(drv)) is not None
                pauses = break_on_failure() or breaks
                if pauses and not executor.local and not remote_ok:
                    remote_ok.append(_remote_pauses(executor))
                away = pauses and not executor.local and remote_ok[0][0]  # it may pause on its worker
                if breaks and not executor.local and not away and drv.dref not in here:
                    here.add(drv.dref)
                    notice(drv, f"{_name(drv)} builds in the driver, not on a worker, so that its breakpoint "
                                f"pauses: {remote_ok[0][1]}")
                if executor.local or drv.dref in here:
                    try:
                        rrefs = drive(_build(drv, ctx, i, total, forced, False, rarg, area))
                    except BuildCancelled:
                        raise
                    except Exception as e:
                        fail(e)
                        continue
                    finish(drv, rrefs)
                    continue
                if len(running) >= capacity and time.monotonic() - capacity_at > 1.0:
                    capacity, capacity_at = executor.capacity(), time.monotonic()  # a cluster may grow
                if len(running) >= capacity:
                    heapq.heappush(ready, i)
                    break
                if run is None:
                    run = _Run(executor, by_dref, total - len(results))
                ship = run.ship(drv, results)
                payload = run.payload(drv, (i, total), ctx, rarg, forced, ship,
                                      debug_info(drv) if away else None)
                fd = -1
                if not run.shared:  # copy mode: the driver holds the derivation's lock while it is built away
                    fd = derivation_try_lock(drv.config)
                    if fd < 0:
                        deferred.append(i)
                        continue
                    rrefs = None if forced else _match(drv, ctx)
                    if rrefs is not None:
                        os.close(fd)
                        finish(drv, rrefs)
                        continue
                job = _Job(drv, i, ctx, payload, [(r, data) for _, r, data in ship], fd)
                if pauses and not away:
                    job.fails_here = remote_ok[0][1]
                submit(job)
            if not running and not deferred:
                break
            if running:
                done, _ = cf.wait(list(running) + [wake[0]], timeout=0.1 if deferred else None,
                                  return_when=cf.FIRST_COMPLETED)
                if wake[0].done():
                    wake[0] = cf.Future()  # replaced before draining: a later post sets the new one
                while not inbox.empty():
                    inbox.get()()
                done = {f for f in done if f in running}
            else:  # only builds whose lock another driver holds: look again soon
                done = set()
                time.sleep(0.1)
            for i in deferred:
                heapq.heappush(ready, i)
            deferred.clear()
            for fut in done:
                job = running.pop(fut)
                try:
                    out = result_of(fut)
                    rrefs = run.receive(job, out) if run is not None else []
                except BrokenProcessPool:  # a worker process died; the pool starts anew on the next submit
                    if job.attempts >= RETRIES:
                        job.release()
                        fail(ExecutorError(f"{job.drv.dref}: the worker process died {job.attempts} times while "
                                           f"building it", dref=job.drv.dref))
                        continue
                    job.attempts += 1
                    submit(job)
                    continue
                except PauseNotServed as e:  # the worker cannot reach our pause hub: later pauses stay here too
                    remote_ok[:] = [(False, str(e))]
                    build_here(job, f"{e}; it builds in the driver instead, where it pauses")
                    continue
                except Exception as e:
                    if job.fails_here is not None and not isinstance(e, (ExecutorError, StoreError, BuildCancelled)):
                        build_here(job, f"{_name(job.drv)} failed on its worker and builds again in the driver, "
                                        f"where its failure pauses: {job.fails_here}")
                        continue
                    job.release()
                    fail(e)
                    continue
                job.release()
                if out.get("built"):
                    events.notify("on_built", job.drv.dref, _name(job.drv), list(rrefs))
                finish(job.drv, rrefs)
            if failure is not None and not keep_going and not running:
                break
    except BaseException:
        if hub is not None:  # Ctrl-C, or the run failed: builds paused on workers are cancelled, not run
            for p in hub.pauses():
                if p.dref in watched:
                    p.cancel()
        executor.cancel(list(running))
        for job in running.values():
            job.release()
        raise
    finally:
        area.close()
        if run is not None:
            run.close()
        for dref in watched:
            hub.watch(dref, None)
        while not inbox.empty():  # a pause that ended as the run ended: frontends still hear of it
            inbox.get()()
    if failure is not None:
        raise failure
    return results[closure.dref]
