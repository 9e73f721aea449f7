"""A driver program for the scale tests, run as a real subprocess. Its stages
and its exception class live in ``__main__``, so they are shipped by value.
The executor comes from PYLIGHTNIX_EXECUTOR.

    driver_script.py sleepers LOG      two stages that run for a minute (to be interrupted)
    driver_script.py shared LOG        four 0.3 s leaves and their sum; prints RREF <rref>
    driver_script.py fail LOG          a stage raising MainError; prints CAUGHT if `except MainError` works
"""
import os
import sys
import time
from os.path import join

from pylightnix import build_cattrs, build_outpath, build_path, build_wrapper, instantiate, match_only, mkconfig, \
    mkdrv, realize


class MainError(Exception):
    pass


def log(path, what):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"{what} {os.getpid()}\n".encode())
    os.close(fd)


def node(m, name, logpath, seconds, deps=(), fail=False):
    def _realize(b):
        c = build_cattrs(b)
        log(c.log, c.name)
        deadline = time.time() + c.seconds
        while time.time() < deadline:  # Python-level work, like a training loop
            time.sleep(0.05)
        if c.fail:
            raise MainError(f"failed in {c.name}")
        total = sum(int(open(build_path(b, [d, "out"])).read()) for d in c.deps)
        with open(join(build_outpath(b), "out"), "w") as f:
            f.write(str(total + 1))
        log(c.log, c.name + "-end")
    return mkdrv(m, mkconfig({"name": name, "log": logpath, "seconds": seconds, "deps": list(deps), "fail": fail}),
                 match_only(), build_wrapper(_realize))


def sleepers(m, logpath):
    return node(m, "top", logpath, 0, [node(m, f"sleeper{i}", logpath, 60) for i in range(2)])


def shared(m, logpath):
    return node(m, "sum", logpath, 0, [node(m, f"leaf{i}", logpath, 0.3) for i in range(4)])


def failing(m, logpath):
    return node(m, "bad", logpath, 0, fail=True)


if __name__ == "__main__":
    mode, logpath = sys.argv[1], sys.argv[2]
    stage = {"sleepers": sleepers, "shared": shared, "fail": failing}[mode]
    try:
        rref = realize(instantiate(stage, logpath))
    except MainError as e:
        print("CAUGHT", type(e).__name__, e, flush=True)
        sys.exit(3)
    print("RREF", rref, flush=True)
