"""A tiny numpy pipeline for the terminal-debugging tests: ``dataset -> linreg``.

``linreg`` is built with ``build_wrapper_(fit_and_score, Model)``, like the
design document's ``convnn_mnist``: ``train(b)`` fits least squares (and
appends one line to ``$PIPELINE_TRAIN_COUNT`` per call, so tests can count
trainings), ``evaluate(b)`` writes ``score.txt``. With ``PIPELINE_BUGGY=1``
``evaluate`` calls ``b.w.load(...)`` (an AttributeError, as in the demo);
``evaluate_correct`` is the fix.
"""
import os
import sys
from os.path import join
from typing import Any

import numpy as np

from pylightnix import (Build, Config, DRef, Manager, build_cattrs, build_outpath,
                        build_path, build_wrapper, build_wrapper_, instantiate,
                        match_best, match_only, mkconfig, mkdrv, realize, rref2path,
                        store_initialize)

STATUS = "original"


def make_data(b: Build) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 0.01 * rng.normal(size=200)
    np.savez(join(build_outpath(b), "data.npz"), x=x, y=y)


def dataset(m: Manager) -> DRef:
    return mkdrv(m, mkconfig({"name": "dataset", "n": 200}), match_only(),
                 build_wrapper(make_data))


class Model(Build):
    w: Any
    x: Any
    y: Any


def model_config(ds: DRef) -> Config:
    name = "linreg"
    data = [ds, "data.npz"]
    version = 1
    return mkconfig(locals())


def train(b: Model) -> None:
    count = os.environ.get("PIPELINE_TRAIN_COUNT")
    if count:
        with open(count, "a") as f:
            f.write("train\n")
    c = build_cattrs(b)
    with np.load(build_path(b, c.data)) as f:
        b.x, b.y = f["x"], f["y"]
    b.w = np.linalg.lstsq(b.x, b.y, rcond=None)[0]
    np.save(join(build_outpath(b), "w.npy"), b.w)


def evaluate(b: Model) -> None:
    if os.environ.get("PIPELINE_BUGGY") == "1":
        b.w.load(join(build_outpath(b), "w.npy"))  # bug: numpy arrays have no .load
    evaluate_correct(b)


def evaluate_correct(b: Model) -> None:
    w = np.load(join(build_outpath(b), "w.npy"))
    r2 = 1.0 - np.mean((b.x @ w - b.y) ** 2) / np.var(b.y)
    with open(join(build_outpath(b), "score.txt"), "w") as f:
        f.write(str(r2))


def fit_and_score(b: Model) -> None:
    train(b)
    evaluate(b)


def linreg(m: Manager) -> DRef:
    return mkdrv(m, model_config(dataset(m)), match_best("score.txt"),
                 build_wrapper_(fit_and_score, Model))


if __name__ == "__main__":
    print("ARGV", sys.argv[1:])
    store_initialize()
    rref = realize(instantiate(linreg))
    print("RREF", rref)
    print("PATH", rref2path(rref))
    print("STATUS", STATUS)
