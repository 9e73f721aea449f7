"""A layered DAG pipeline run as a separate process by the core robustness tests.

usage: crashy_pipeline.py LOG [--width W] [--depth D] [--files F] [--sleep S]
                              [--hang NAME] [--go FILE] [--tag T] [--buildtime]

Layer 0 has W sources; node ``L<k>_<j>`` depends on ``L<k-1>_<j>`` and
``L<k-1>_<j+1 mod W>``; ``pair`` has two outputs (``match_n(2)``) built from the
last layer, and ``top`` depends on ``pair`` and the whole last layer. Every
stage is deterministic (with ``--buildtime`` it also records its build time and
a ``_notes.txt`` of metadata, neither of which is hashed), writes F files in nested folders,
and appends its name to LOG with O_APPEND (one write per line, so concurrent
builders never interleave). ``--hang NAME`` makes that stage print HANGING and
sleep (to be killed holding its lock); ``--go FILE`` waits for FILE to exist
before starting (a start barrier for concurrent runs). Prints ``RREF <rref>``.
"""
import argparse
import hashlib
import os
import sys
import time
from os.path import exists, join

from pylightnix import (Build, build_cattrs, build_deref_, build_outpath, build_outpaths, build_wrapper,
                        instantiate, match_n, match_only, mkconfig, mkdrv, realize, rref2path, store_initialize,
                        texthash)

p = argparse.ArgumentParser()
p.add_argument("log")
p.add_argument("--width", type=int, default=3)
p.add_argument("--depth", type=int, default=3)
p.add_argument("--files", type=int, default=3)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--hang", default=None)
p.add_argument("--go", default=None)
p.add_argument("--tag", default="t")
p.add_argument("--buildtime", action="store_true")
args = p.parse_args()


def log_build(name: str) -> None:
    fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{name} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


def inputs_digest(b: Build) -> str:
    h = hashlib.sha256(build_cattrs(b).name.encode())
    for dep in sorted(b.context):
        for r in build_deref_(b, dep):
            with open(join(rref2path(r), "value.txt")) as f:
                h.update(f.read().encode())
    return h.hexdigest()


def write_outputs(o: str, value: str, nfiles: int) -> None:
    for i in range(nfiles):
        d = join(o, f"d{i % 3}", f"e{i % 2}")
        os.makedirs(d, exist_ok=True)
        with open(join(d, f"f{i}.txt"), "w") as f:
            f.write(f"{value}:{i}\n" * (1 + i * 50))
    with open(join(o, "value.txt"), "w") as f:
        f.write(value)
    if args.buildtime:
        with open(join(o, "_notes.txt"), "w") as f:
            f.write(f"built by {os.getpid()} at {time.time()}\n")


def node(b: Build) -> None:
    c = build_cattrs(b)
    log_build(c.name)
    if c.name == args.hang:
        print("HANGING", flush=True)
        time.sleep(120)
    if args.sleep:
        time.sleep(args.sleep)
    write_outputs(build_outpath(b), inputs_digest(b), args.files)


def pair(b: Build) -> None:
    c = build_cattrs(b)
    log_build(c.name)
    v = inputs_digest(b)
    for k, o in enumerate(build_outpaths(b, nouts=2)):
        write_outputs(o, f"{v}/{k}", args.files)


def pipeline(m):
    prev = []
    for k in range(args.depth):
        cur = []
        for j in range(args.width):
            deps = [] if k == 0 else [prev[j], prev[(j + 1) % args.width]]
            cfg = mkconfig({"name": f"L{k}_{j}", "deps": deps, "tag": args.tag, "files": args.files})
            cur.append(mkdrv(m, cfg, match_only(), build_wrapper(node, buildtime=args.buildtime)))
        prev = cur
    pr = mkdrv(m, mkconfig({"name": "pair", "deps": prev, "tag": args.tag}), match_n(2, [texthash()]),
               build_wrapper(pair, buildtime=args.buildtime))
    return mkdrv(m, mkconfig({"name": "top", "deps": prev + [pr], "tag": args.tag, "files": args.files}),
                 match_only(), build_wrapper(node, buildtime=args.buildtime))


if __name__ == "__main__":
    store_initialize()
    if args.go:
        deadline = time.monotonic() + 60
        while not exists(args.go):
            if time.monotonic() > deadline:
                sys.exit("start barrier never opened")
            time.sleep(0.002)
    print("RREF", realize(instantiate(pipeline)), flush=True)
