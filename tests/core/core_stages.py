"""Small stages shared by the core tests."""
import os
from os.path import join

from pylightnix import (Build, build_cattrs, build_outpath, build_path, build_wrapper, build_wrapper_, match_only,
                        mkconfig, mkdrv)

CALLS = []


def counting_stage(m, name="leaf", value=1, fail=False, matcher=None):
    """One file ``out.txt`` holding ``value``; records each build in CALLS."""
    def _realize(b: Build) -> None:
        CALLS.append(name)
        if fail:
            raise KeyError("boom in " + name)
        with open(join(build_outpath(b), "out.txt"), "w") as f:
            f.write(str(build_cattrs(b).value))
    return mkdrv(m, mkconfig({"name": name, "value": value}), matcher or match_only(), build_wrapper(_realize))


def chain(m, n, prefix="s"):
    """n stages, each reading its predecessor's out.txt and adding 1."""
    prev = None
    for i in range(n):
        def _realize(b: Build) -> None:
            c = build_cattrs(b)
            v = int(open(build_path(b, c.src)).read()) + 1 if c.src else 0
            with open(join(build_outpath(b), "out.txt"), "w") as f:
                f.write(str(v))
        prev = mkdrv(m, mkconfig({"name": f"{prefix}{i}", "src": [prev, "out.txt"] if prev else None}),
                     match_only(), build_wrapper(_realize))
    return prev


class Trained(Build):
    """A Build with in-memory state, like the demo's Model."""
    weights = None


def trained_stage(m, log_path, broken=True):
    """Trains (counted in log_path), then evaluates: broken evaluation raises AttributeError."""
    def train(b: Trained) -> None:
        with open(log_path, "a") as f:
            f.write("train\n")
        b.weights = [1, 2, 3]

    def evaluate(b: Trained) -> None:
        if broken:
            b.weights.load()  # AttributeError: 'list' object has no attribute 'load'
        with open(join(build_outpath(b), "score.txt"), "w") as f:
            f.write(str(sum(b.weights)))

    def _realize(b: Trained) -> None:
        train(b)
        evaluate(b)
    return mkdrv(m, mkconfig({"name": "trained", "v": 1}), match_only(), build_wrapper_(_realize, Trained))
