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
is on, pauses on its worker (:mod:`pylightnix.scale.hub`): Dask workers, on any
host, reach the driver's hub through Dask (:mod:`pylightnix.scale.tunnel`), pool
processes over loopback; where a pause cannot be served there, it is built in the
driver, which says so.

What a worker runs is :mod:`pylightnix.scale.worker`.
"""
from __future__ import annotations

import concurrent.futures as cf
from concurrent.futures.process import BrokenProcessPool
import heapq
import os
import pickle
import queue
import secrets
import sys
import time
import types
from os.path import join
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from pylightnix.core.errors import BuildCancelled, ExecutorError, MatcherError, PauseNotServed, StoreError
from pylightnix.core.store import derivation_try_lock, store_root, tmp_root
from pylightnix.engine import breakpoints, events
from pylightnix.engine.breakpoints import break_on_failure, match_breakpoint
from pylightnix.engine.manager import Closure, Derivation
from pylightnix.engine.steps import Realization, build_one, drive, match, realization, stage_name
from pylightnix.scale import hub
from pylightnix.scale.executors import Executor, require_cloudpickle, result_of
from pylightnix.scale.transfer import pack, unpack_built
from pylightnix.scale.worker import run_build, sees_probe
from pylightnix.types import Context, DRef, RealizeArg, RRef

#: largest pickled ``__main__`` value (other than functions, classes and modules) that goes
#: along to a console at a pause on a worker
MAIN_VALUE_LIMIT = 64 * 1024
#: the same for functions, classes (pickled by value with what they refer to) and modules
MAIN_CODE_LIMIT = 1024 * 1024
#: how often a killed worker process's build is started again (Dask retries on its own)
RETRIES = 3


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
                    "debug": debug, "main_file": getattr(sys.modules.get("__main__"), "__file__", None)}
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
        rrefs = match(job.drv, job.ctx)
        if rrefs is None:
            raise MatcherError(f"{job.drv.dref}: the matcher asks for a build after receiving "
                               f"{got} from {where}", dref=job.drv.dref)
        return rrefs


def _remote_pauses(executor: Executor) -> Tuple[bool, str]:
    """Whether builds that may pause can pause on their workers (else they build here), and
    if not, why (for the frontends: a breakpoint is never moved or skipped silently)."""
    if not hub.enabled():
        return False, f"{hub.ENV_REMOTE} is off"
    if not events.remote_pauses_served():
        return False, "the frontend in charge of pauses serves them only in the driver"
    if executor.tunnels_pauses:  # its workers reach the hub through the executor, wherever they run
        return True, ""
    try:
        if executor.same_machine():
            return True, ""
        return False, (f"the workers of {executor.where()} run on other hosts, and pauses on workers are "
                       f"served only on this machine")
    except Exception as e:  # a cluster we cannot ask: build paused derivations here, as before
        return False, f"{executor.where()} did not say where its workers run ({e})"


def derivation_function(drv: Derivation) -> Any:
    """The user's function behind the realizer, which is what fails to pickle."""
    from pylightnix.engine.manager import derivation_stage_function
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
    when the realization starts and ends (:func:`~pylightnix.engine.steps.realization`)."""
    with realization(closure, assert_realized) as r:
        return ParallelRun(r, executor, force_rebuild, realize_args or {}, keep_going).run()


class ParallelRun:
    """One parallel realization: which derivations are ready, which run where, and
    what came back. The driver's thread runs :meth:`run`; other threads (a build
    starting on its worker, the pause hub) only :meth:`post` work to it."""

    def __init__(self, r: Realization, executor: Executor, force_rebuild: Set[DRef],
                 rargs: Dict[DRef, RealizeArg], keep_going: bool) -> None:
        self.r = r
        self.executor = executor
        self.force_rebuild = force_rebuild
        self.rargs = rargs
        self.keep_going = keep_going
        order = r.order
        self.by_dref = {d.dref: d for d in order}
        self.index = {d.dref: i for i, d in enumerate(order)}
        self.missing = {d.dref: len(d.deps) for d in order}
        self.users: Dict[DRef, List[DRef]] = {d.dref: [] for d in order}
        for d in order:
            for dep in d.deps:
                self.users[dep].append(d.dref)
        self.ready = [i for i, d in enumerate(order) if not d.deps]
        heapq.heapify(self.ready)
        self.running: Dict[cf.Future, _Job] = {}
        self.deferred: List[int] = []
        self.failure: Optional[BaseException] = None
        self.run_: Optional[_Run] = None
        self.capacity, self.capacity_at = executor.capacity(), time.monotonic()
        self.remote_ok: List[Tuple[bool, str]] = []  # whether builds can pause on their workers, else why; asked once
        self.here: Set[DRef] = set()  # builds moved into the driver, so that their pause is served
        self.told: Set[DRef] = set()
        self.inbox: "queue.Queue[Callable[[], None]]" = queue.Queue()  # work for this thread from other threads
        self.wake: cf.Future = cf.Future()  # done when something was put into `inbox`
        self.hub: Any = None
        self.watched: List[DRef] = []

    def notice(self, drv: Derivation, text: str) -> None:
        """Tell every frontend, once per derivation, that its pause is served elsewhere than asked."""
        if drv.dref not in self.told:
            self.told.add(drv.dref)
            events.notify("on_notice", text, dref=drv.dref, name=stage_name(drv))

    def build_here(self, job: _Job, why: str) -> None:
        """A build sent away comes back to be built in the driver, where its pause is served."""
        job.release()
        self.here.add(job.drv.dref)
        self.notice(job.drv, why)
        heapq.heappush(self.ready, job.index)

    def finish(self, drv: Derivation, rrefs: List[RRef]) -> None:
        self.r.results[drv.dref] = rrefs
        for u in self.users[drv.dref]:
            self.missing[u] -= 1
            if self.missing[u] == 0:
                heapq.heappush(self.ready, self.index[u])

    def fail(self, e: BaseException) -> None:
        if self.failure is None:
            self.failure = e

    def post(self, work: Callable[[], None]) -> None:  # any thread
        self.inbox.put(work)
        try:
            self.wake.set_result(None)
        except cf.InvalidStateError:
            pass

    def on_start(self, job: _Job) -> Callable[[str], None]:
        def tell(where: str) -> None:
            suffix = "" if self.run_ is None or self.run_.shared else " (copy)"
            self.post(lambda: events.notify("on_progress", job.index, self.r.total, job.drv.dref,
                                            stage_name(job.drv), where=where + suffix))
        return tell

    def remote_event(self, kind: str, paused: Any) -> None:  # the pause hub's thread
        self.post(lambda: hub.deliver(kind, paused))

    def debug_info(self, drv: Derivation) -> Optional[Dict[str, Any]]:
        """Debug info for a build that may pause on its worker; None: it builds here."""
        if self.hub is None:
            self.hub = hub.hub()
        self.hub.watch(drv.dref, self.remote_event)
        self.watched.append(drv.dref)
        assert self.run_ is not None
        return {"hub": self.hub.address, "tunnel": self.executor.tunnel(self.hub.address),
                "breakpoints": breakpoints.build_breakpoints(),
                "on_failure": break_on_failure(), "globals": self.run_.main_globals(),
                "service": events.remote_service(), "reattach": hub.reattach_timeout()}

    def submit(self, job: _Job) -> None:
        assert self.run_ is not None
        fut = self.executor.submit(run_build, job.payload, job.drv.resources,
                                   f"pylightnix-{stage_name(job.drv)}-{secrets.token_hex(6)}", job.blobs,
                                   self.on_start(job))
        self.running[fut] = job
        if not self.executor.reports_starts:
            events.notify("on_progress", job.index, self.r.total, job.drv.dref, stage_name(job.drv),
                          where=self.run_.where)

    def start_ready(self) -> None:
        """Match, build here or send away every ready derivation, as capacity allows."""
        r, executor = self.r, self.executor
        while self.ready and (self.failure is None or self.keep_going):
            i = heapq.heappop(self.ready)
            drv = r.order[i]
            ctx = r.context(drv)
            forced = drv.dref in self.force_rebuild
            rrefs = None if forced else match(drv, ctx)
            if rrefs is not None:
                self.finish(drv, rrefs)
                continue
            r.must_build(drv)
            rarg = dict(self.rargs.get(drv.dref, {}))
            breaks = match_breakpoint(stage_name(drv)) is not None
            pauses = break_on_failure() or breaks
            if pauses and not executor.local and not self.remote_ok:
                self.remote_ok.append(_remote_pauses(executor))
            away = pauses and not executor.local and self.remote_ok[0][0]  # it may pause on its worker
            if breaks and not executor.local and not away and drv.dref not in self.here:
                self.here.add(drv.dref)
                self.notice(drv, f"{stage_name(drv)} builds in the driver, not on a worker, so that its "
                                 f"breakpoint pauses: {self.remote_ok[0][1]}")
            if executor.local or drv.dref in self.here:
                try:
                    rrefs = drive(build_one(drv, ctx, i, r.total, forced, False, rarg, r.area),
                                  events.dispatch_pause)
                except BuildCancelled:
                    raise
                except Exception as e:
                    self.fail(e)
                    continue
                self.finish(drv, rrefs)
                continue
            if len(self.running) >= self.capacity and time.monotonic() - self.capacity_at > 1.0:
                self.capacity, self.capacity_at = executor.capacity(), time.monotonic()  # a cluster may grow
            if len(self.running) >= self.capacity:
                heapq.heappush(self.ready, i)
                break
            if self.run_ is None:
                self.run_ = _Run(executor, self.by_dref, r.total - len(r.results))
            run = self.run_
            ship = run.ship(drv, r.results)
            payload = run.payload(drv, (i, r.total), ctx, rarg, forced, ship,
                                  self.debug_info(drv) if away else None)
            fd = -1
            if not run.shared:  # copy mode: the driver holds the derivation's lock while it is built away
                fd = derivation_try_lock(drv.config)
                if fd < 0:
                    self.deferred.append(i)
                    continue
                rrefs = None if forced else match(drv, ctx)
                if rrefs is not None:
                    os.close(fd)
                    self.finish(drv, rrefs)
                    continue
            job = _Job(drv, i, ctx, payload, [(rr, data) for _, rr, data in ship], fd)
            if pauses and not away:
                job.fails_here = self.remote_ok[0][1]
            self.submit(job)

    def wait(self) -> Set[cf.Future]:
        """Wait for a build to end (or work posted by another thread, which runs here)."""
        if self.running:
            done, _ = cf.wait(list(self.running) + [self.wake], timeout=0.1 if self.deferred else None,
                              return_when=cf.FIRST_COMPLETED)
            if self.wake.done():
                self.wake = cf.Future()  # replaced before draining: a later post sets the new one
            while not self.inbox.empty():
                self.inbox.get()()
            done = {f for f in done if f in self.running}
        else:  # only builds whose lock another driver holds: look again soon
            done = set()
            time.sleep(0.1)
        for i in self.deferred:
            heapq.heappush(self.ready, i)
        self.deferred.clear()
        return done

    def collect(self, fut: cf.Future) -> None:
        """Take in the result of a build that ended on its worker."""
        job = self.running.pop(fut)
        try:
            out = result_of(fut)
            rrefs = self.run_.receive(job, out) if self.run_ is not None else []
        except BrokenProcessPool:  # a worker process died; the pool starts anew on the next submit
            if job.attempts >= RETRIES:
                job.release()
                self.fail(ExecutorError(f"{job.drv.dref}: the worker process died {job.attempts} times while "
                                        f"building it", dref=job.drv.dref))
                return
            job.attempts += 1
            self.submit(job)
            return
        except PauseNotServed as e:  # the worker cannot reach our pause hub: later pauses stay here too
            self.remote_ok[:] = [(False, str(e))]
            self.build_here(job, f"{e}; it builds in the driver instead, where it pauses")
            return
        except Exception as e:
            if job.fails_here is not None and not isinstance(e, (ExecutorError, StoreError, BuildCancelled)):
                self.build_here(job, f"{stage_name(job.drv)} failed on its worker and builds again in the "
                                     f"driver, where its failure pauses: {job.fails_here}")
                return
            job.release()
            self.fail(e)
            return
        job.release()
        if out.get("built"):
            events.notify("on_built", job.drv.dref, stage_name(job.drv), list(rrefs))
        self.finish(job.drv, rrefs)

    def run(self) -> List[RRef]:
        """Build until the target is realized, or until the first failure (all of them with
        ``keep_going``); on any exit, builds still running or paused are cancelled."""
        try:
            while True:
                self.start_ready()
                if not self.running and not self.deferred:
                    break
                for fut in self.wait():
                    self.collect(fut)
                if self.failure is not None and not self.keep_going and not self.running:
                    break
        except BaseException:
            self.cancel()
            raise
        finally:
            self.close()
        if self.failure is not None:
            raise self.failure
        return self.r.target()

    def cancel(self) -> None:
        """Ctrl-C, or the run failed: builds paused on workers are cancelled, not run."""
        if self.hub is not None:
            for p in self.hub.pauses():
                if p.dref in self.watched:
                    p.cancel()
        self.executor.cancel(list(self.running))
        for job in self.running.values():
            job.release()

    def close(self) -> None:
        if self.run_ is not None:
            self.run_.close()
        for dref in self.watched:
            self.hub.watch(dref, None)
        while not self.inbox.empty():  # a pause that ended as the run ended: frontends still hear of it
            self.inbox.get()()
