"""A stage that spins until $SPIN_STOP_FILE exists (to set breakpoints while it runs untraced)."""
import os
import sys
import time
from os.path import exists, join

from pylightnix import build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv, realize, \
    store_initialize

STOP = os.environ["SPIN_STOP_FILE"]


def traced():
    """Whether the debugger sees this thread's calls: a trace function, or on 3.12+
    (where pydevd uses sys.monitoring) the debugger's call events switched on."""
    if sys.gettrace() is not None:
        return True
    mon = getattr(sys, "monitoring", None)
    return bool(mon and mon.get_events(mon.DEBUGGER_ID) & mon.events.PY_START)


def spin_realize(b):
    print("spinning", "traced" if traced() else "untraced", flush=True)
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
