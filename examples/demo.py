"""The main job: train the demo model once, then serve it from the store.

Run it twice: the first run trains, the second prints the same rref at once.
To pause before training, run it under a build breakpoint:

    python -m pylightnix debug --break convnn_mnist examples/demo.py
"""
import sys
import time
from os.path import dirname, join

sys.path.insert(0, dirname(__file__))

from mnist import *  # noqa: E402,F401
from mnist import Model, fetchmnist, mnist_config, mnist_eval_correct, mnist_train  # noqa: E402
from pylightnix import build_wrapper_, instantiate, match_best, mkdrv, realize, rref2path, store_initialize  # noqa: E402


def mnist_realize_fixed(b: Model) -> None:
    mnist_train(b)
    mnist_eval_correct(b)


def convnn_mnist_fixed(m):  # type: ignore[no-untyped-def]
    """The same derivation as ``convnn_mnist`` (same config), built with the fixed evaluation."""
    mnist = fetchmnist(m)
    return mkdrv(m, mnist_config(mnist), match_best('accuracy.txt'), build_wrapper_(mnist_realize_fixed, Model))


if __name__ == "__main__":
    store_initialize()
    t0 = time.perf_counter()
    rref = realize(instantiate(convnn_mnist_fixed))
    took = time.perf_counter() - t0
    with open(join(rref2path(rref), "accuracy.txt")) as f:
        accuracy = f.read()
    print(rref)
    print(f"accuracy {accuracy} ({took:.2f} s)")
