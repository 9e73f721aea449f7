"""A two-stage pipeline for the adapter tests.

``prep`` writes a number; ``trainer`` (class ``Model``) trains (counted in
$TRAIN_COUNT_FILE) and evaluates; with PIPELINE_PARTIAL=1 it first writes a partial
output and says TRAINING STARTED. With PIPELINE_BROKEN=1 the evaluation is
the buggy one (AttributeError), like the design document's mnist_eval.
Prints ``RESULT <rref> <accuracy>`` at the end.
"""
import os
import sys
from os.path import join

from pylightnix import (Build, build_outpath, build_wrapper, build_wrapper_, instantiate,
                        match_best, match_only, mkconfig, mkdrv, realize, rref2path, store_initialize)

BROKEN = os.environ.get("PIPELINE_BROKEN", "") == "1"
COUNT_FILE = os.environ.get("TRAIN_COUNT_FILE", "")
WORK = int(os.environ.get("PIPELINE_WORK", "1000"))
PARTIAL = os.environ.get("PIPELINE_PARTIAL", "") == "1"


class Model(Build):
    weights: list


def prep_realize(b):
    with open(join(build_outpath(b), "number.txt"), "w") as f:
        f.write("3")


def prep(m):
    return mkdrv(m, mkconfig({"name": "prep", "version": 1}), match_only(), build_wrapper(prep_realize))


def train(b: Model) -> None:
    if COUNT_FILE:
        with open(COUNT_FILE, "a") as f:
            f.write("trained\n")
    s = 0
    for i in range(WORK):
        s += i % 7
    b.weights = [1, 2, s % 5]


def evaluate(b: Model) -> None:
    with open(join(build_outpath(b), "accuracy.txt"), "w") as f:
        f.write(str(sum(b.weights)))


def evaluate_broken(b: Model) -> None:
    b.model.load("weights.h5")  # the bug: there is no b.model
    evaluate(b)


def trainer_realize(b: Model) -> None:
    if PARTIAL:  # leave a half-written output, then train (for PIPELINE_WORK iterations)
        with open(join(build_outpath(b), "partial.txt"), "w") as f:
            f.write("half")
        print("TRAINING STARTED", flush=True)
    train(b)
    if BROKEN:
        evaluate_broken(b)
    else:
        evaluate(b)


def trainer(m):
    p = prep(m)
    return mkdrv(m, mkconfig({"name": "trainer", "prep": p, "version": 2}), match_best("accuracy.txt"),
                 build_wrapper_(trainer_realize, Model))


if __name__ == "__main__":
    store_initialize()
    rref = realize(instantiate(trainer))
    with open(join(rref2path(rref), "accuracy.txt")) as f:
        print("RESULT", rref, f.read())
    print("ARGV", sys.argv[1:], "MAIN", __name__)
