"""A driver for the tests of pauses on workers, run as a real subprocess.

    remote_pipeline.py EXECUTOR LOG     EXECUTOR: processes:2, dask:ADDRESS, or dask-inthread
                                        (a LocalCluster of worker threads in this process)

Stages ``alpha`` and ``beta`` (independent) feed ``top``. Every realizer run appends
"<name> <pid>" to LOG, so a test can tell where and how often a stage trained.
``beta`` raises ValueError while FAIL_BETA=1 (break-on-failure tests); ``alpha`` takes
SLOW_ALPHA seconds (a build running on the other worker meanwhile). With GATE=PATH,
the leaves' realizers wait until PATH exists. The driver prints ``DRIVER <pid>``, then
``RESULT <rref>`` or ``ERROR <type>: <message>`` (``ERROR <type> (a PylightnixError): ...``
for one of ours).
"""
import os
import sys
import time
from os.path import join

from pylightnix import (Build, PylightnixError, build_cattrs, build_outpath, build_wrapper, instantiate, match_only, mkconfig,
                        mkdrv, realize)
from pylightnix.scale.executors import parse_executor


THRESHOLD = 0.5                   # a small global: it travels to a console on a worker
BIG_TABLE = list(range(200_000))  # a large one (1.6 MB): it stays behind


class Model(Build):
    """What a test builds by hand in the console: ``b = Model(repl_buildargs())``."""


def log(b, what):
    with open(build_cattrs(b).log, "a") as f:
        f.write(f"{what} {os.getpid()}\n")


def train(b):
    """The stage's work; the console calls it on a hand-made or failed build."""
    with open(join(build_outpath(b), "weights.txt"), "w") as f:
        f.write(f"{build_cattrs(b).name} trained in {os.getpid()}\n")


def leaf(m, name, logpath, fail=False):
    def realize_leaf(b):
        if build_cattrs(b).name == "alpha":
            time.sleep(float(os.environ.get("SLOW_ALPHA", "0")))
        while os.environ.get("GATE") and not os.path.exists(os.environ["GATE"]):
            time.sleep(0.05)
        log(b, build_cattrs(b).name)
        if build_cattrs(b).fail:
            raise ValueError(f"{build_cattrs(b).name} diverged")
        train(b)
    return mkdrv(m, mkconfig({"name": name, "log": logpath, "fail": fail}), match_only(),
                 build_wrapper(realize_leaf, Model))


def pipeline(m, logpath):
    a = leaf(m, "alpha", logpath)
    b = leaf(m, "beta", logpath, fail=os.environ.get("FAIL_BETA") == "1")

    def realize_top(bb):
        log(bb, "top")
        with open(join(build_outpath(bb), "sum.txt"), "w") as f:
            f.write("ok\n")
    return mkdrv(m, mkconfig({"name": "top", "deps": [a, b], "log": logpath}), match_only(),
                 build_wrapper(realize_top))


def run(executor):
    try:
        rref = realize(instantiate(pipeline, sys.argv[2]), executor=executor)
    except Exception as e:
        kind = " (a PylightnixError)" if isinstance(e, PylightnixError) else ""
        print(f"ERROR {type(e).__name__}{kind}: {e}", flush=True)
        sys.exit(1)
    print(f"RESULT {rref}", flush=True)


if __name__ == "__main__":
    print(f"DRIVER {os.getpid()}", flush=True)
    if sys.argv[1] == "dask-inthread":
        from distributed import Client, LocalCluster
        from pylightnix.scale.executors import Dask
        with LocalCluster(n_workers=1, processes=False, threads_per_worker=2, dashboard_address=":0",
                          silence_logs=40) as cluster, Client(cluster) as client:
            run(Dask(client=client))
    else:
        # a module global, as in a plain script: a pool garbage-collected while the interpreter
        # exits races with its own atexit hook on Python 3.11 ("Bad file descriptor")
        executor = parse_executor(sys.argv[1])
        run(executor)
