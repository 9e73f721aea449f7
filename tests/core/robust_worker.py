"""A pipeline run as a separate process by the crash and concurrency tests.

usage: robust_worker.py LOG N_STAGES SLEEP_S [HANG_AT]
Each built stage appends its name to LOG (O_APPEND, so concurrent writers do not
interleave) and writes a few files. With HANG_AT, that stage sleeps for a minute
instead (to be killed while holding its lock).
"""
import os
import sys
import time
from os.path import join

from pylightnix import (Build, build_cattrs, build_outpath, build_path, build_wrapper, instantiate, match_only,
                        mkconfig, mkdrv, realize)

log, n, sleep_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
hang_at = sys.argv[4] if len(sys.argv) > 4 else None


def stage(i, prev):
    def _realize(b: Build) -> None:
        c = build_cattrs(b)
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, (c.name + "\n").encode())
        os.close(fd)
        if c.name == hang_at:
            print("HANGING", flush=True)
            time.sleep(60)
        o = build_outpath(b)
        base = int(open(build_path(b, c.src)).read()) if c.src else 0
        for k in range(3):
            with open(join(o, f"part{k}.bin"), "wb") as f:
                f.write(os.urandom(2048))
        time.sleep(sleep_s)
        with open(join(o, "value"), "w") as f:
            f.write(str(base + 1))
    return _realize


def pipeline(m):
    prev = None
    for i in range(n):
        prev = mkdrv(m, mkconfig({"name": f"st{i}", "src": [prev, "value"] if prev else None}), match_only(),
                     build_wrapper(stage(i, prev)))
    return prev


print(realize(instantiate(pipeline)), flush=True)
