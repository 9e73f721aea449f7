"""A driver whose ``__main__`` holds large globals, run as a real subprocess.

    globals_driver.py EXECUTOR LOG BIG     BIG: 1 defines the large globals, 0 does not

Twelve stages (eleven leaves and their total) are realized with break-on-failure on,
so every build goes to its worker with the driver's ``__main__`` globals for a console.
With BIG=1, ``__main__`` also holds a 300 MB dict, a 64 MB callable and a value whose
``__sizeof__`` raises. Prints ``SECONDS <realize's wall time>``, ``GROWTH_MB <peak RSS
growth during realize>``, then ``RESULT <rref>``.
"""
import os
import resource
import sys
import time

from pylightnix import instantiate, realize
from pylightnix.scale.executors import parse_executor
from scale_stages import leaf, total

THRESHOLD = 0.5  # a small global: it travels


class Predictor:
    """A callable holding 64 MB (weights, say)."""

    def __init__(self) -> None:
        self.weights = b"w" * (64 << 20)

    def __call__(self, x: float) -> float:
        return x * len(self.weights)


class Unsizable:
    """A value whose ``__sizeof__`` raises, as some C-extension wrappers do."""

    def __sizeof__(self) -> int:
        raise RuntimeError("no size for you")


def sweep(m, log):
    return total(m, log, "sum", [leaf(m, log, f"leaf{i}", i) for i in range(11)])


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":  # (workers import this module again: the large values are made in the driver only)
    if sys.argv[3] == "1":
        TABLE = {i: b"t" * (1 << 20) for i in range(300)}  # 300 MB behind a small dict: getsizeof says ~10 KB
        PREDICT = Predictor()
        ODD = Unsizable()
    executor = parse_executor(sys.argv[1])
    closure = instantiate(sweep, sys.argv[2])
    before, t0 = peak_mb(), time.perf_counter()
    rref = realize(closure, executor=executor)
    print(f"SECONDS {time.perf_counter() - t0:.3f}", flush=True)
    print(f"GROWTH_MB {peak_mb() - before:.1f}", flush=True)
    executor.close()
    print(f"RESULT {rref}", flush=True)
