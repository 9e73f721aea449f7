"""A hyper-parameter sweep: one dataset, N models trained in parallel, one summary.

    python examples/sweep.py                       # local processes, one per CPU
    python examples/sweep.py --models 8 --executor processes:2
    python examples/sweep.py --executor dask:tcp://scheduler:8786   # a Dask cluster
    PYLIGHTNIX_EXECUTOR=dask:tcp://scheduler:8786 python examples/sweep.py

Run it twice: the second run builds nothing and prints the same summary. Add
models (``--models 12``) and only the new ones are trained. The stage functions
live in ``__main__``; pylightnix ships them to the workers with cloudpickle.
See docs/scale-out.md for running on a cluster.
"""
import argparse
import json
import os
import random
from os.path import join

from pylightnix import (Build, build_cattrs, build_outpath, build_path, build_wrapper, instantiate, match_only,
                        mkconfig, mkdrv, realize, rref2path)
from pylightnix.executors import Processes, parse_executor


def dataset(m, n=4000, seed=1):
    """Noisy samples of y = 3 sin(x) + x/2 on [-3, 3]."""
    def make(b: Build) -> None:
        c = build_cattrs(b)
        rng = random.Random(c.seed)
        xs = [rng.uniform(-3, 3) for _ in range(c.n)]
        import math
        ys = [3 * math.sin(x) + x / 2 + rng.gauss(0, 0.3) for x in xs]
        with open(join(build_outpath(b), "data.json"), "w") as f:
            json.dump({"x": xs, "y": ys}, f)
    return mkdrv(m, mkconfig({"name": "dataset", "n": n, "seed": seed}), match_only(), build_wrapper(make))


def model(m, data, degree, lr, epochs=60):
    """A polynomial of ``degree`` fitted by SGD: a few seconds of CPU, like a (very) small training.
    For GPU trainings on Dask, pass ``resources={"GPU": 1}`` to mkdrv."""
    def train(b: Build) -> None:
        c = build_cattrs(b)
        d = json.load(open(build_path(b, [c.data, "data.json"])))
        pairs = list(zip(d["x"], d["y"]))
        split = len(pairs) * 4 // 5
        trainset, valid = pairs[:split], pairs[split:]
        w = [0.0] * (c.degree + 1)

        def features(x):
            return [(x / 3) ** k for k in range(c.degree + 1)]
        for _ in range(c.epochs):
            for x, y in trainset:
                f = features(x)
                err = sum(wi * fi for wi, fi in zip(w, f)) - y
                w = [wi - c.lr * err * fi for wi, fi in zip(w, f)]
        loss = sum((sum(wi * fi for wi, fi in zip(w, features(x))) - y) ** 2 for x, y in valid) / len(valid)
        o = build_outpath(b)
        with open(join(o, "weights.json"), "w") as f:
            json.dump(w, f)
        with open(join(o, "loss.txt"), "w") as f:
            f.write(f"{loss:.6f}\n")
    name = f"poly{degree}_lr{str(lr).replace('.', '_')}"
    return mkdrv(m, mkconfig({"name": name, "data": data, "degree": degree, "lr": lr, "epochs": epochs}),
                 match_only(), build_wrapper(train))


def summary(m, models):
    def collect(b: Build) -> None:
        c = build_cattrs(b)
        rows = sorted((float(open(build_path(b, [d, "loss.txt"])).read()), d) for d in c.models)
        with open(join(build_outpath(b), "summary.txt"), "w") as f:
            for loss, d in rows:
                f.write(f"{loss:10.4f}  {d}\n")
    return mkdrv(m, mkconfig({"name": "summary", "models": models}), match_only(), build_wrapper(collect))


def sweep(m, n_models):
    data = dataset(m)
    grid = [(degree, lr) for lr in (0.01, 0.003) for degree in (1, 3, 5, 7, 9, 11)]
    return summary(m, [model(m, data, degree, lr) for degree, lr in grid[:n_models]])


if __name__ == "__main__":  # Dask's LocalCluster and process pools need this guard
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=6)
    ap.add_argument("--executor", help="sequential, processes:N or dask:ADDRESS (default: PYLIGHTNIX_EXECUTOR, "
                                       "else one process per CPU)")
    args = ap.parse_args()
    if args.executor:
        executor = parse_executor(args.executor)
    elif os.environ.get("PYLIGHTNIX_EXECUTOR"):
        executor = None  # realize uses the environment's
    else:
        executor = Processes()
    rref = realize(instantiate(sweep, args.models), executor=executor)
    print(open(join(rref2path(rref), "summary.txt")).read(), end="")
    print(rref)
