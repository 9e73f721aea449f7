"""Benchmark of the DAP adapter against plain python and plain debugpy, in one run.

    .venv/bin/python bench/bench_dap.py [--repeat 3] [--stops 10] [--evals 30] [--work N]

Measures, on the interpreter running this script:

1. **Tracing overhead**: a CPU-bound pure-Python stage (timed inside its
   realizer) run under plain ``python``, under plain debugpy (no breakpoints,
   "uncaught" filter on as VS Code does), and under this adapter with only build
   breakpoints set (``step_*``, on later stages). Ratios against plain python.
2. **Stop latency**: from the program reaching the pause point to the client
   receiving ``stopped``. Adapter: the engine dispatching a build pause (build
   breakpoint ``step_*``). debugpy: a function breakpoint on ``marker()`` called
   at the same point. CLOCK_MONOTONIC is system-wide, so the program's stamp and
   the client's receipt time are comparable.
3. **Console evaluate round trip**: ``evaluate`` (context ``repl``) at a stop,
   sent and answered. Adapter: an IPython cell; debugpy: its plain evaluate.

Targets (issue 3): overhead <= 1.05x, stop latency <= 100 ms median,
evaluate <= 50 ms median. The DAP client is ``dap_adapter.testing`` (shared with
the tests).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from dap_adapter.testing import Client, adapter_env  # noqa: E402
from dap_adapter.common.messaging import Endpoint  # noqa: E402

PROGRAM = textwrap.dedent('''
    """Bench program: a CPU-bound stage, then STOPS small stages step_0.. step_N-1."""
    import os, time
    from os.path import join
    from pylightnix import (build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv,
                            realize, store_initialize)
    from pylightnix.engine import events
    WORK = int(os.environ["BENCH_WORK"])
    STOPS = int(os.environ["BENCH_STOPS"])
    TIMES = os.environ["BENCH_TIMES"]
    STAMPS = os.environ["BENCH_STAMPS"]

    def stamp():
        with open(STAMPS, "a") as f:
            f.write(f"{time.monotonic()}\\n")

    def marker():
        """plain debugpy stops here (function breakpoint)"""

    _dispatch = events.dispatch_pause
    def _stamped_dispatch(pause):  # the adapter stops right after this
        stamp()
        _dispatch(pause)
    events.dispatch_pause = _stamped_dispatch

    def cpu_realize(b):
        t0, c0 = time.perf_counter(), time.thread_time()
        s = 0
        for i in range(WORK):
            s = (s + i * i) % 1000003
        took, cpu = time.perf_counter() - t0, time.thread_time() - c0
        with open(TIMES, "a") as f:
            f.write(f"{took} {cpu}\\n")
        with open(join(build_outpath(b), "out.txt"), "w") as f:
            f.write(str(s))

    def step_realize(b):
        if os.environ.get("BENCH_MARKER"):
            stamp()
            marker()
        with open(join(build_outpath(b), "out.txt"), "w") as f:
            f.write("ok")

    def cpu(m):
        return mkdrv(m, mkconfig({"name": "cpu", "work": WORK}), match_only(), build_wrapper(cpu_realize))

    def pipeline(m):
        prev = cpu(m)
        for i in range(STOPS):
            prev = mkdrv(m, mkconfig({"name": f"step_{i}", "prev": prev}), match_only(),
                         build_wrapper(step_realize))
        return prev

    if __name__ == "__main__":
        store_initialize()
        realize(instantiate(pipeline))
        print("BENCH-DONE")
''')

INIT = {"adapterID": "bench", "clientID": "bench", "linesStartAt1": True, "columnsStartAt1": True,
        "pathFormat": "path"}


def _env(tmp: str, work: int, stops: int, run: str, marker: bool) -> Dict[str, str]:
    root = os.path.join(tmp, f"root-{run}")
    env = {"PYLIGHTNIX_ROOT": root, "PYLIGHTNIX_PROGRESS": "0", "BENCH_WORK": str(work),
           "BENCH_STOPS": str(stops), "BENCH_TIMES": os.path.join(tmp, f"times-{run}"),
           "BENCH_STAMPS": os.path.join(tmp, f"stamps-{run}"), "PYTHONPATH": REPO}
    if marker:
        env["BENCH_MARKER"] = "1"
    return env


def _read_floats(path: str) -> List[float]:
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [float(x) for x in f.read().split()]


def _stage_times(path: str) -> Tuple[float, float]:
    """(wall, thread CPU) seconds of the CPU stage: load on a shared machine stretches the
    first, not the second"""
    wall, cpu = _read_floats(path)[:2]
    return wall, cpu


def run_plain(program: str, tmp: str, work: int, stops: int, run: str) -> Tuple[float, float]:
    env = dict(os.environ)
    env.pop("PYLIGHTNIX_BREAK", None)
    env.update(_env(tmp, work, stops, run, marker=False))
    subprocess.run([sys.executable, program], env=env, check=True, stdout=subprocess.DEVNULL)
    return _stage_times(env["BENCH_TIMES"])


def _debug_session(c: Client, program: str, env: Dict[str, str], function_breakpoints: List[str],
                   stops: int, evals: int, eval_expr: str) -> Tuple[List[float], List[float]]:
    """Launch, stop ``stops`` times (continuing at once), time evaluates at the first stop.
    Returns (stop latencies, evaluate round trips) in seconds."""
    c.request("initialize", INIT)
    seq = c.send_request("launch", {"program": program, "console": "internalConsole", "justMyCode": True,
                                    "cwd": os.path.dirname(program), "env": env})
    c.event("initialized", timeout=60)
    c.request("setFunctionBreakpoints", {"breakpoints": [{"name": n} for n in function_breakpoints]})
    c.request("setExceptionBreakpoints", {"filters": ["uncaught"]})
    c.request("configurationDone")
    c.response(seq, timeout=60)
    received: List[float] = []
    evals_t: List[float] = []
    mark = 0
    for i in range(stops):
        st = c.event("stopped", timeout=120, after=mark)
        received.append(time.monotonic())
        mark = c.received.index(st) + 1
        tid = st["body"]["threadId"]
        if i == 0 and evals:
            fid = c.request("stackTrace", {"threadId": tid})["body"]["stackFrames"][0]["id"]
            for _ in range(evals):
                t0 = time.perf_counter()
                c.request("evaluate", {"expression": eval_expr, "frameId": fid, "context": "repl"})
                evals_t.append(time.perf_counter() - t0)
        c.request("continue", {"threadId": tid})
    c.event("terminated", timeout=120)
    c.request("disconnect", {}, ok=False)
    c.close()
    stamps = _read_floats(env["BENCH_STAMPS"])
    return [r - s for r, s in zip(received, stamps)], evals_t


def run_debugpy(program: str, tmp: str, work: int, stops: int, evals: int, run: str,
                stop: bool) -> Tuple[Tuple[float, float], List[float], List[float]]:
    proc = subprocess.Popen([sys.executable, "-m", "debugpy.adapter"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=0)
    c = Client(Endpoint.from_streams(proc.stdout, proc.stdin), proc=proc)
    env = _env(tmp, work, stops if stop else 0, run, marker=True)
    lat, ev = _debug_session(c, program, env, ["marker"] if stop else [], stops if stop else 0, evals,
                             "x = 1 + 1")
    return _stage_times(env["BENCH_TIMES"]), lat, ev


def run_adapter(program: str, tmp: str, work: int, stops: int, evals: int, run: str
                ) -> Tuple[Tuple[float, float], List[float], List[float]]:
    c = Client.spawn(env=adapter_env())
    env = _env(tmp, work, stops, run, marker=False)
    lat, ev = _debug_session(c, program, env, ["step_*"], stops, evals, "x = 1 + 1")
    return _stage_times(env["BENCH_TIMES"]), lat, ev


def _ms(xs: List[float]) -> str:
    return f"{statistics.median(xs) * 1000:7.1f} ms" if xs else "      -"


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=3, help="runs per configuration (median taken)")
    p.add_argument("--stops", type=int, default=10, help="build pauses per debug run")
    p.add_argument("--evals", type=int, default=30, help="evaluate requests at the first pause")
    p.add_argument("--work", type=int, default=6_000_000, help="loop iterations of the CPU stage")
    ns = p.parse_args(argv)
    tmp = tempfile.mkdtemp(prefix="bench-dap-")
    program = os.path.join(tmp, "bench_program.py")
    with open(program, "w") as f:
        f.write(PROGRAM)

    cpu: Dict[str, List[float]] = {"python": [], "debugpy": [], "adapter": []}
    thread: Dict[str, List[float]] = {"python": [], "debugpy": [], "adapter": []}
    lat: Dict[str, List[float]] = {"debugpy": [], "adapter": []}
    ev: Dict[str, List[float]] = {"debugpy": [], "adapter": []}
    for r in range(ns.repeat):  # interleaved, so drift hits every configuration alike
        t = run_plain(program, tmp, ns.work, ns.stops, f"py{r}")
        cpu["python"].append(t[0])
        thread["python"].append(t[1])
        t, _, _ = run_debugpy(program, tmp, ns.work, ns.stops, 0, f"dbgcpu{r}", stop=False)
        cpu["debugpy"].append(t[0])
        thread["debugpy"].append(t[1])
        _, l1, e1 = run_debugpy(program, tmp, 1000, ns.stops, ns.evals, f"dbglat{r}", stop=True)
        lat["debugpy"] += l1
        ev["debugpy"] += e1
        t, l2, e2 = run_adapter(program, tmp, ns.work, ns.stops, ns.evals, f"ad{r}")
        cpu["adapter"].append(t[0])
        thread["adapter"].append(t[1])
        lat["adapter"] += l2
        ev["adapter"] += e2

    base = statistics.median(cpu["python"])
    best = min(cpu["python"])
    print(f"Python {sys.version.split()[0]}; CPU stage {ns.work} iterations; {ns.repeat} runs each, "
          f"interleaved; {ns.stops} stops/run; {ns.evals} evaluates/run")
    print()
    print("CPU-bound stage (timed inside the realizer)   median     ratio   best      ratio")
    for k, label in (("python", "plain python"), ("debugpy", "plain debugpy, no breakpoints"),
                     ("adapter", "dap_adapter, build breakpoints only")):
        m, b = statistics.median(cpu[k]), min(cpu[k])
        print(f"  {label:42s} {m:7.3f} s  {m / base:5.2f}x  {b:7.3f} s  {b / best:5.2f}x")
    print()
    tbase = statistics.median(thread["python"])
    print("Same stage, the thread's own CPU time (load cannot stretch it)   median     ratio")
    for k, label in (("python", "plain python"), ("debugpy", "plain debugpy, no breakpoints"),
                     ("adapter", "dap_adapter, build breakpoints only")):
        m = statistics.median(thread[k])
        print(f"  {label:42s} {m:7.3f} s  {m / tbase:5.2f}x")
    print()
    print("Latency (median)                         stop      evaluate(repl)")
    print(f"  plain debugpy (function breakpoint)  {_ms(lat['debugpy'])}  {_ms(ev['debugpy'])}")
    print(f"  dap_adapter (build breakpoint)       {_ms(lat['adapter'])}  {_ms(ev['adapter'])}")
    print()
    ratio = statistics.median(cpu["adapter"]) / base
    best_ratio = min(cpu["adapter"]) / best
    stop_ms = statistics.median(lat["adapter"]) * 1000
    eval_ms = statistics.median(ev["adapter"]) * 1000
    ok = ratio <= 1.05 and stop_ms <= 100 and eval_ms <= 50
    print(f"targets: overhead {ratio:.2f}x median, {best_ratio:.2f}x best (<= 1.05x), "
          f"stop {stop_ms:.1f} ms (<= 100), evaluate {eval_ms:.1f} ms (<= 50): {'MET' if ok else 'NOT MET'}")
    print("(the CPU ratios are noisy on a shared machine: run it on an idle one, with more --repeat)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
