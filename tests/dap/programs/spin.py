"""A stage that spins until $SPIN_STOP_FILE exists (to set breakpoints while it runs untraced)."""
import os
import sys
import time
from os.path import exists, join

from pylightnix import build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv, realize, \
    store_initialize

STOP = os.environ["SPIN_STOP_FILE"]


def spin_realize(b):
    print("spinning", "traced" if sys.gettrace() else "untraced", flush=True)
    n = 0
    while not exists(STOP):
        n += 1
        time.sleep(0.001)  # spin-line
    with open(join(build_outpath(b), "n.txt"), "w") as f:
        f.write(str(n))


def spin(m):
    return mkdrv(m, mkconfig({"name": "spin"}), match_only(), build_wrapper(spin_realize))


if __name__ == "__main__":
    store_initialize()
    realize(instantiate(spin))
    print("SPIN-DONE", flush=True)
