"""Scale-out benchmark: Sequential vs Processes(2) vs Dask on a LocalCluster of 2
worker processes, side by side in one run (issue 10, section 4).

    .venv/bin/python bench/bench_scale.py            # about 1 minute on 2 cores
    .venv/bin/python bench/bench_scale.py --json out.json
    .venv/bin/python bench/bench_scale.py --repeat 3   # medians of 3 interleaved rounds (a busy machine)

Workloads, each realized cold in a fresh store (PYLIGHTNIX_ROOT under a temp dir):

- cpu16: 16 independent stages burning 0.5 s of CPU each, and a root over them.
  Targets: Processes(2) >= 1.8x and Dask >= 1.7x faster than Sequential.
- trivialN: N independent trivial stages (one tiny file each) and a root.
  Overhead per stage = (executor wall time - sequential wall time) / N; targets:
  below 5 ms (Processes) and 15 ms (Dask).
- warm chain of 1000 stages, Sequential: must stay <= 50 ms.

Pools and clusters are started before the timed runs (their start-up is reported
apart). A cold trivial stage is mostly fsyncs, which one disk does not do in
parallel; ``PYLIGHTNIX_FSYNC=0 bench/bench_scale.py`` shows the executors' own
overhead without them. The machine's load average is printed: other work on the 2 cores shows
up directly in the ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from os.path import join
from typing import Any, Callable, Dict, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("PYLIGHTNIX_PROGRESS", "0")

from pylightnix import (Build, build_cattrs, build_outpath, build_wrapper, instantiate, match_only, mkconfig,  # noqa: E402
                        mkdrv, realize, store_initialize)
from pylightnix.executors import Dask, Executor, Processes, Sequential  # noqa: E402


def _burn(b: Build) -> None:
    """0.5 s of CPU (process time, so a loaded machine stretches wall time, not work)."""
    c = build_cattrs(b)
    t0 = time.process_time()
    x = 0
    while time.process_time() - t0 < c.cpu:
        x += 1
    with open(join(build_outpath(b), "out"), "w") as f:
        f.write(str(x > 0))


def _trivial(b: Build) -> None:
    with open(join(build_outpath(b), "out"), "w") as f:
        f.write("x")


def fan(n: int, cpu: float, tag: str) -> Callable[[Any], Any]:
    """n independent stages (CPU ``cpu`` s each, or trivial) and a root listing them."""
    def stage(m: Any) -> Any:
        body = build_wrapper(_burn if cpu else _trivial)
        leaves = [mkdrv(m, mkconfig({"name": f"s{i}", "cpu": cpu, "tag": tag}), match_only(), body)
                  for i in range(n)]
        return mkdrv(m, mkconfig({"name": "root", "deps": leaves}), match_only(), build_wrapper(_trivial))
    return stage


def chain(n: int) -> Callable[[Any], Any]:
    def stage(m: Any) -> Any:
        prev = None
        for i in range(n):
            prev = mkdrv(m, mkconfig({"name": f"c{i}", "prev": prev}), match_only(), build_wrapper(_trivial))
        return prev
    return stage


def _spin(seconds: float) -> float:
    """Burn CPU for ``seconds`` of wall time; return the CPU time this process got."""
    t0, c0 = time.perf_counter(), time.process_time()
    while time.perf_counter() - t0 < seconds:
        pass
    return time.process_time() - c0


def free_cores(seconds: float = 1.5) -> float:
    """How many of the machine's cores two busy processes actually get right now."""
    import concurrent.futures as cf
    import multiprocessing
    with cf.ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as p:
        return sum(p.map(_spin, [seconds, seconds])) / seconds


def fresh_store() -> None:
    root = tempfile.mkdtemp(prefix="bench-scale-")
    os.environ["PYLIGHTNIX_ROOT"] = root
    store_initialize()


def timed(stage: Callable[[Any], Any], executor: Executor) -> float:
    fresh_store()
    c = instantiate(stage)
    t0 = time.perf_counter()
    realize(c, executor=executor)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-stages", type=int, default=16)
    ap.add_argument("--cpu", type=float, default=0.5)
    ap.add_argument("--trivial", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=1, help="interleaved rounds; medians are reported")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args()
    import contextlib
    import io
    from distributed import Client, LocalCluster

    from pylightnix.settings import fsync
    cores = free_cores()
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; two busy processes get "
          f"{cores:.2f} cores (the ceiling of any speed-up below); store fsync "
          f"{'on' if fsync() else 'off (PYLIGHTNIX_FSYNC=0)'}", flush=True)
    with contextlib.redirect_stdout(io.StringIO()):  # store_initialize's "Initializing ..." lines
        t0 = time.perf_counter()
        pool = Processes(2)
        fresh_store()
        realize(instantiate(fan(2, 0, "warmup")), executor=pool)
        t_pool = time.perf_counter() - t0
        t0 = time.perf_counter()
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=40)
        client = Client(cluster)
        dask = Dask(client)
        realize(instantiate(fan(2, 0, "warmup")), executor=dask)
        t_dask = time.perf_counter() - t0
        executors: Dict[str, Executor] = {"Sequential": Sequential(), "Processes(2)": pool,
                                          "Dask LocalCluster(2)": dask}
        fig: Dict[str, Any] = {"startup_s": {"Processes(2)": t_pool, "Dask LocalCluster(2)": t_dask}}
        cpu: Dict[str, float] = {}
        triv: Dict[str, float] = {}
        runs: Dict[str, List[Tuple[float, float]]] = {name: [] for name in executors}
        for r in range(args.repeat):  # interleaved rounds, so a burst of load hits every executor alike
            for name, ex in executors.items():
                runs[name].append((timed(fan(args.cpu_stages, args.cpu, f"cpu-{name}-{r}"), ex),
                                   timed(fan(args.trivial, 0, f"triv-{name}-{r}"), ex)))
        for name, rs in runs.items():
            cpu[name] = sorted(t for t, _ in rs)[len(rs) // 2]
            triv[name] = sorted(t for _, t in rs)[len(rs) // 2]
        fresh_store()
        realize(instantiate(chain(1000)))
        warm: List[float] = []
        for _ in range(5):
            c = instantiate(chain(1000))
            t0 = time.perf_counter()
            realize(c)
            warm.append(time.perf_counter() - t0)
        client.close()
        cluster.close()
        pool.close()
    fig.update(cpu=cpu, trivial=triv, warm_chain_1000_s=sorted(warm)[len(warm) // 2], free_cores_before=cores,
               free_cores_after=free_cores())
    n = args.trivial + 1
    print(f"\n{args.cpu_stages} independent stages of {args.cpu} s CPU (+ a trivial root), cold:")
    targets = {"Processes(2)": 1.8, "Dask LocalCluster(2)": 1.7}
    for name, t in cpu.items():
        speed = cpu["Sequential"] / t
        target = f"  target >= {targets[name]}x: {'met' if speed >= targets[name] else 'MISSED'}" \
            if name in targets else ""
        print(f"  {name:22s} {t:7.2f} s   {speed:5.2f}x{target}")
    print(f"\n{args.trivial} independent trivial stages (+ a root), cold:")
    limits = {"Processes(2)": 5.0, "Dask LocalCluster(2)": 15.0}
    for name, t in triv.items():
        per = t / n * 1e3
        over = (t - triv["Sequential"]) / n * 1e3
        extra = f"   overhead {over:6.2f} ms/stage (limit {limits[name]} ms: " \
                f"{'met' if over < limits[name] else 'MISSED'})" if name in limits else ""
        print(f"  {name:22s} {t:7.2f} s   {per:6.2f} ms/stage{extra}")
    print(f"\nwarm realize of a 1000-stage chain, Sequential: {fig['warm_chain_1000_s'] * 1e3:.1f} ms "
          f"(limit 50 ms)")
    print(f"start-up: Processes(2) {t_pool:.2f} s, Dask LocalCluster(2) {t_dask:.2f} s (not in the figures above)")
    print(f"load average after: {os.getloadavg()[0]:.2f}; two busy processes get {fig['free_cores_after']:.2f} cores")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(fig, f, indent=2)


if __name__ == "__main__":
    main()
