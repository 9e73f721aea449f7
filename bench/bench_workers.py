"""Benchmark of build breakpoints on workers (issue 11), in one run.

    .venv/bin/python bench/bench_workers.py [--repeat 3] [--pauses 5] [--evals 20] [--stages 8]

Measures, with a real Dask LocalCluster (2 worker processes) and Processes(2):

1. **Pause to stopped**: from the engine's pause on a worker to the child session's
   ``stopped`` event at the client, child session start included. The program's
   matcher stamps CLOCK_MONOTONIC on the worker when it says "build" (the engine
   pauses right after it); the client answers ``startDebugging`` as VS Code does
   (a new adapter process: initialize, attach, configurationDone) and stamps the
   ``stopped`` event. CLOCK_MONOTONIC is system-wide, so the two compare.
2. **Console evaluate** in a child session: ``evaluate`` (context ``repl``, an
   IPython cell in the worker's paused frame), sent and answered.
3. **Overhead of a run with build breakpoints set, none hit**, on the Dask
   executor: STAGES CPU-bound stages, the realize timed inside the program, under
   plain ``python`` and under the adapter with a build breakpoint that matches
   nothing. Ratio adapter / plain.

Targets: 1 ≤ 1 s median, 2 ≤ 50 ms median, 3 ≤ 1.05x.

    .venv/bin/python bench/bench_workers.py --two-hosts    (as root)

measures the same across two hosts (issue 16): the Dask cluster of the two-host test
harness (``tests/multihost``: a scheduler here, a ``GPU=1`` worker in its own network and
mount namespaces, which cannot reach the driver's loopback), every paused and every
CPU-bound stage needing ``GPU`` so that it runs on the other host, where its pause is
served through Dask (:mod:`pylightnix.scale.tunnel`). Processes(2) is left out there.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from dap_adapter.testing import Client, adapter_env  # noqa: E402

PROGRAM = textwrap.dedent('''
    """Bench program: PAUSES stages p_0..p_{N-1} in a chain (each may pause), then STAGES
    independent CPU-bound stages w_i; prints REALIZE <seconds> for the realize of the w_*."""
    import os, sys, time
    from os.path import join
    from pylightnix import build_outpath, build_wrapper, instantiate, mkconfig, mkdrv, realize, match_only
    from pylightnix.scale.executors import parse_executor

    DRIVER = os.getpid()
    STAMPS = os.environ["BENCH_STAMPS"]
    GPU = {"GPU": 1} if os.environ.get("BENCH_GPU") else None  # --two-hosts: on the other host

    def stamping(inner):
        def matcher(dref, ctx):
            got = inner(dref, ctx)
            if got is None and os.getpid() != DRIVER:  # on a worker, about to build (and pause)
                with open(STAMPS, "a") as f:
                    f.write(f"{time.monotonic()}\\n")
            return got
        return matcher

    def chain(m, n):
        prev = None
        for i in range(n):
            def make(b):
                with open(join(build_outpath(b), "out"), "w") as f:
                    f.write("x")
            prev = mkdrv(m, mkconfig({"name": f"p_{i}", "dep": prev, "salt": os.environ["BENCH_SALT"]}),
                         stamping(match_only()), build_wrapper(make), resources=GPU)
        return prev

    def work(m, n, loops):
        def burn(b):
            x = 0
            for k in range(loops):
                x += k * k
            with open(join(build_outpath(b), "out"), "w") as f:
                f.write(str(x))
        ws = [mkdrv(m, mkconfig({"name": f"w_{i}", "loops": loops, "salt": os.environ["BENCH_SALT"]}),
                    match_only(), build_wrapper(burn), resources=GPU) for i in range(n)]
        def top(b):
            open(join(build_outpath(b), "out"), "w").close()
        return mkdrv(m, mkconfig({"name": "top", "deps": ws, "salt": os.environ["BENCH_SALT"]}), match_only(),
                     build_wrapper(top))

    if __name__ == "__main__":
        ex = parse_executor(sys.argv[1])
        pauses, stages, loops = map(int, sys.argv[2:5])
        if pauses:
            realize(instantiate(chain, pauses), executor=ex)
        if stages:
            # the Dask client connects, and imports happen, in a first realize (under a debugger
            # imports are slower: a one-time cost, printed apart)
            t = time.perf_counter()
            realize(instantiate(work, 1, 1), executor=ex)
            print(f"WARMUP {time.perf_counter() - t:.4f}", flush=True)
            t = time.perf_counter()
            realize(instantiate(work, stages, loops), executor=ex)
            print(f"REALIZE {time.perf_counter() - t:.4f}", flush=True)
''')

INIT = {"adapterID": "pylightnix", "clientID": "bench", "linesStartAt1": True, "columnsStartAt1": True,
        "pathFormat": "path", "supportsStartDebuggingRequest": True}


#: seconds until a cell's 1 MB of output was in the client, per pause
BIG: List[float] = []
BIG_BYTES = 1_000_000
#: --two-hosts: where the driver's stores go (hidden from the other host), and its extra environment
STORES: List[str] = []
EXTRA: Dict[str, str] = {}


def _env(tmp: str, run: str) -> Dict[str, str]:
    env = adapter_env({"PYLIGHTNIX_ROOT": os.path.join(STORES[0] if STORES else tmp, f"store-{run}"), **EXTRA,
                       "PYLIGHTNIX_DEBUG_DIR": os.path.join(tmp, "debug"),
                       "BENCH_STAMPS": os.path.join(tmp, f"stamps-{run}"), "BENCH_SALT": run,
                       "PYLIGHTNIX_PROGRESS": "0", "PYTHONPATH": REPO})
    for k in ("PYLIGHTNIX_BREAK", "PYLIGHTNIX_BREAK_ON_FAILURE", "PYLIGHTNIX_EXECUTOR"):
        env.pop(k, None)
    return env


def _launch(program: str, env: Dict[str, str], args: List[str], breaks: List[str]) -> Client:
    c = Client.spawn(env=env)
    starts: List[dict] = []
    c.reverse_handler = lambda m: (starts.append(m["arguments"]) or {}) if m["command"] == "startDebugging" else None
    c.starts = starts  # type: ignore[attr-defined]
    c.request("initialize", INIT)
    seq = c.send_request("launch", {"program": program, "args": args, "console": "internalConsole",
                                    "cwd": os.path.dirname(program), "justMyCode": True, "env": env})
    c.event("initialized", timeout=30)
    c.request("setFunctionBreakpoints", {"breakpoints": [{"name": b} for b in breaks]})
    c.request("setExceptionBreakpoints", {"filters": ["uncaught"]})
    c.request("configurationDone")
    assert c.response(seq, timeout=30)["success"]
    return c


def pauses_run(program: str, tmp: str, executor: str, pauses: int, evals: int, run: str
               ) -> Tuple[List[float], List[float]]:
    env = _env(tmp, run)
    os.environ["PYLIGHTNIX_DEBUG_DIR"] = env["PYLIGHTNIX_DEBUG_DIR"]  # the child adapters find the hub there
    parent = _launch(program, env, [executor, str(pauses), "0", "0"], ["p_*"])
    received: List[float] = []
    evals_t: List[float] = []
    try:
        for i in range(pauses):
            deadline = time.monotonic() + 60
            while len(parent.starts) <= i:  # type: ignore[attr-defined]
                if time.monotonic() > deadline:
                    raise RuntimeError("no startDebugging")
                time.sleep(0.001)
            cfg = parent.starts[i]["configuration"]  # type: ignore[attr-defined]
            child = Client.spawn(env=env)
            child.request("initialize", INIT)
            seq = child.send_request("attach", cfg)
            child.event("initialized", timeout=30)
            child.request("configurationDone")
            st = child.event("stopped", timeout=60)["body"]
            received.append(time.monotonic())
            assert child.response(seq, timeout=30)["success"]
            frame = child.request("stackTrace", {"threadId": st["threadId"]})["body"]["stackFrames"][0]["id"]
            for k in range(evals):
                t = time.perf_counter()
                child.request("evaluate", {"expression": f"{k} + 1", "frameId": frame, "context": "repl"})
                evals_t.append(time.perf_counter() - t)
            # a cell that prints 1 MB: its answer, with the output the console shows (the first 64 KB)
            t = time.perf_counter()
            r = child.request("evaluate", {"expression": f"print('x' * {BIG_BYTES})", "frameId": frame, "context": "repl"})
            BIG.append(time.perf_counter() - t)
            assert r["body"].get("result", "").count("x") >= 65000, r["body"]
            child.request("continue", {"threadId": st["threadId"]})
            child.event("terminated", timeout=30)
            child.close()
        parent.event("exited", timeout=60)
    finally:
        parent.close()
    stamps = [float(x) for x in open(env["BENCH_STAMPS"]).read().split()]
    if len(stamps) != len(received):
        raise RuntimeError(f"{len(stamps)} pause stamps for {len(received)} stops")
    lat = [r - s for r, s in zip(received, stamps)]
    if os.environ.get("BENCH_VERBOSE"):
        print(executor, [round(x * 1000) for x in lat], file=sys.stderr)
    return lat, evals_t


def overhead_run(program: str, tmp: str, executor: str, stages: int, loops: int, run: str, debug: bool
                 ) -> Tuple[float, float]:
    env = _env(tmp, run)
    args = [executor, "0", str(stages), str(loops)]
    if not debug:
        out = subprocess.run([sys.executable, program, *args], env=env, capture_output=True, text=True, timeout=600)
        text = out.stdout
    else:
        c = _launch(program, env, args, ["never_matches_*"])
        try:
            c.event("exited", timeout=600)
            text = c.output_text()
        finally:
            c.close()
    m, w = re.search(r"REALIZE ([0-9.]+)", text), re.search(r"WARMUP ([0-9.]+)", text)
    if m and w:
        return float(m.group(1)), float(w.group(1))
    raise RuntimeError(f"no REALIZE line in {text[-2000:]}")


@contextlib.contextmanager
def cluster_for(two_hosts: bool, tmp: str) -> Iterator[str]:
    """The scheduler's address: of a LocalCluster of 2 worker processes, or of the two-host
    harness (its GPU worker on the other host; stores under its hidden folder)."""
    if not two_hosts:
        from distributed import LocalCluster
        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0",
                          silence_logs=40) as cluster:
            yield cluster.scheduler_address
        return
    sys.path.insert(0, os.path.join(REPO, "tests", "multihost"))
    from multihost_support import TwoHosts
    hosts = TwoHosts(Path(tmp) / "hosts")
    try:
        hosts.start()
        hosts.check_isolation()
        STORES.append(str(hosts.base / "driver"))
        os.makedirs(STORES[0], exist_ok=True)
        EXTRA["BENCH_GPU"] = "1"
        yield hosts.scheduler_address
    finally:
        hosts.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pauses", type=int, default=5)
    ap.add_argument("--evals", type=int, default=20)
    ap.add_argument("--stages", type=int, default=8)
    ap.add_argument("--loops", type=int, default=3_000_000, help="CPU work per stage")
    ap.add_argument("--two-hosts", action="store_true", help="across the two-host harness (root)")
    ns = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, cluster_for(ns.two_hosts, tmp) as scheduler:
        program = os.path.join(tmp, "bench_program.py")
        with open(program, "w") as f:
            f.write(PROGRAM)
        dask = f"dask:{scheduler}"
        lat: Dict[str, List[float]] = {dask: []} if ns.two_hosts else {"processes:2": [], dask: []}
        ev: List[float] = []
        plain: List[Tuple[float, float]] = []
        debug: List[Tuple[float, float]] = []
        for r in range(ns.repeat):
            for ex in lat:
                la, e = pauses_run(program, tmp, ex, ns.pauses, ns.evals, f"p{r}{len(lat[ex])}{ex[:4]}")
                lat[ex] += la
                ev += e
            plain.append(overhead_run(program, tmp, dask, ns.stages, ns.loops, f"plain{r}", False))
            debug.append(overhead_run(program, tmp, dask, ns.stages, ns.loops, f"debug{r}", True))
        print(f"python {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
        for ex, xs in lat.items():
            name = "Processes(2)" if ex.startswith("processes") else \
                "Dask, a worker on the other host" if ns.two_hosts else "Dask LocalCluster(2)"
            print(f"pause on worker -> child stopped, {name}: median {statistics.median(xs) * 1000:.0f} ms "
                  f"(min {min(xs) * 1000:.0f}, max {max(xs) * 1000:.0f}, n={len(xs)})  target <= 1000 ms")
        print(f"child console evaluate: median {statistics.median(ev) * 1000:.1f} ms (n={len(ev)})  target <= 50 ms")
        print(f"a cell printing 1 MB, answered (64 KB of it shown): median {statistics.median(BIG) * 1000:.0f} ms "
              f"(max {max(BIG) * 1000:.0f}, n={len(BIG)})  target <= 1000 ms")
        mp, md = statistics.median(x for x, _ in plain), statistics.median(x for x, _ in debug)
        wp, wd = statistics.median(w for _, w in plain), statistics.median(w for _, w in debug)
        print(f"Dask run, {ns.stages} CPU stages, breakpoints set but not hit: plain {mp:.2f} s, "
              f"under the adapter {md:.2f} s: {md / mp:.2f}x  target <= 1.05x "
              f"(rounds: plain {[round(x, 2) for x, _ in plain]}, adapter {[round(x, 2) for x, _ in debug]}); "
              f"first realize (client connect, imports): plain {wp:.2f} s, adapter {wd:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
