"""Stages for the scale-out tests. Each build appends ``<name> <pid>`` to the
log file named by the stage's config (outside the store), so tests can count
builds across processes and see where they ran."""
from __future__ import annotations

import os
import time
from os.path import join
from typing import Dict, List, Optional

from pylightnix import (Build, DRef, build_cattrs, build_outpath, build_outpaths, build_path, build_paths,
                        build_wrapper,
                        match_n, match_only, mkconfig, mkdrv)


class StageFailed(Exception):
    """A user's own exception, raised by a failing stage."""


def _log(log: str, name: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name} {os.getpid()} {time.time():.4f}\n".encode())
    finally:
        os.close(fd)


def _wait_for(log: str, name: str, timeout: float = 60.0) -> None:
    """Waits until ``name`` has started (its line is in the log): a rendezvous that only two
    builds running at the same time can pass, however slow the machine."""
    deadline = time.monotonic() + timeout
    while not any(line.split()[0] == name for line in open(log).read().splitlines()):
        if time.monotonic() > deadline:
            raise StageFailed(f"{name} did not start within {timeout:.0f} s of this build")
        time.sleep(0.02)


def leaf(m, log: str, name: str, value: int, sleep: float = 0.0, fail: bool = False, buildtime: bool = False,
         resources: Optional[Dict[str, float]] = None, meet: Optional[str] = None) -> DRef:
    """``meet``: the name of a build this one waits for (see ``_wait_for``)."""
    def _realize(b: Build) -> None:
        c = build_cattrs(b)
        _log(c.log, c.name)
        if getattr(c, "meet", None):
            _wait_for(c.log, c.meet)
        time.sleep(c.sleep)
        if c.fail:
            raise StageFailed(f"boom in {c.name}")
        with open(join(build_outpath(b), "out.txt"), "w") as f:
            f.write(str(c.value))
        _log(c.log, c.name + "-end")
    config = {"name": name, "log": log, "value": value, "sleep": sleep, "fail": fail}
    if meet:
        config["meet"] = meet
    return mkdrv(m, mkconfig(config), match_only(), build_wrapper(_realize, buildtime=buildtime),
                 resources=resources)


def total(m, log: str, name: str, deps: List[DRef], buildtime: bool = False) -> DRef:
    """Sums its dependencies' out.txt."""
    def _realize(b: Build) -> None:
        c = build_cattrs(b)
        _log(c.log, c.name)
        s = sum(int(open(build_path(b, [d, "out.txt"])).read()) for d in c.deps)
        with open(join(build_outpath(b), "out.txt"), "w") as f:
            f.write(str(s))
    return mkdrv(m, mkconfig({"name": name, "log": log, "deps": deps}), match_only(),
                 build_wrapper(_realize, buildtime=buildtime))


def two_outputs(m, log: str, dep: DRef, buildtime: bool = False) -> DRef:
    """A stage with two realizations, each holding a copy of ``dep``'s value plus its index."""
    def _realize(b: Build) -> None:
        c = build_cattrs(b)
        _log(c.log, "pair")
        v = int(open(build_path(b, [c.dep, "out.txt"])).read())
        for i, o in enumerate(build_outpaths(b, nouts=2)):
            os.makedirs(join(o, "sub"))
            with open(join(o, "sub", "out.txt"), "w") as f:
                f.write(str(v + i))
    return mkdrv(m, mkconfig({"name": "pair", "log": log, "dep": dep}), match_n(2), build_wrapper(_realize, buildtime=buildtime))


def dag(m, log: str, buildtime: bool = False, sleep: float = 0.0) -> DRef:
    """Four leaves, two sums over overlapping leaves (a diamond), a two-output stage, a root."""
    leaves = [leaf(m, log, f"leaf{i}", i + 1, sleep=sleep, buildtime=buildtime) for i in range(4)]
    a = total(m, log, "sumA", leaves[:3], buildtime)
    b = total(m, log, "sumB", leaves[1:], buildtime)
    p = two_outputs(m, log, a, buildtime)
    return _root(m, log, a, b, p, buildtime)


def _root(m, log: str, a: DRef, b: DRef, p: DRef, buildtime: bool) -> DRef:
    def _realize(b_: Build) -> None:
        c = build_cattrs(b_)
        _log(c.log, "root")
        vals = [int(open(x).read()) for x in build_paths(b_, [c.p, "sub", "out.txt"])]
        s = int(open(build_path(b_, [c.a, "out.txt"])).read()) + int(open(build_path(b_, [c.b, "out.txt"])).read())
        with open(join(build_outpath(b_), "out.txt"), "w") as f:
            f.write(f"{s} {sorted(vals)}")
    return mkdrv(m, mkconfig({"name": "root", "log": log, "a": a, "b": b, "p": p}), match_only(),
                 build_wrapper(_realize, buildtime=buildtime))


def builds(log: str) -> Dict[str, List[int]]:
    """Stage name -> pids of the processes that started a build of it."""
    out: Dict[str, List[int]] = {}
    if not os.path.exists(log):
        return out
    for line in open(log).read().splitlines():
        name, pid, _ = line.split()
        out.setdefault(name, []).append(int(pid))
    return out
