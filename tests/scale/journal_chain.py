"""A chain of stages for the journal tests. Run as a script: stage ``JOURNAL_KILL_AT`` SIGKILLs
its own process; stage ``JOURNAL_WAIT_AT`` writes ``$JOURNAL_GATE.ready`` and waits until
``$JOURNAL_GATE`` exists; every build appends its name to ``$JOURNAL_LOG``; stage names
start with ``$JOURNAL_PREFIX`` (default ``j``); ``$JOURNAL_N`` stages (default 5); the realize
starts once ``$JOURNAL_START_GATE`` exists."""
import os
import signal
import sys
import time
from os.path import join

from pylightnix import build_cattrs, build_outpath, build_path, build_wrapper, instantiate, match_only, mkconfig, \
    mkdrv, realize

KILL_AT = int(os.environ.get("JOURNAL_KILL_AT", "-1"))
WAIT_AT = int(os.environ.get("JOURNAL_WAIT_AT", "-1"))
GATE = os.environ.get("JOURNAL_GATE", "")
LOG = os.environ.get("JOURNAL_LOG", "")
PREFIX = os.environ.get("JOURNAL_PREFIX", "j")
N = int(os.environ.get("JOURNAL_N", "5"))
START_GATE = os.environ.get("JOURNAL_START_GATE", "")


def chain(m, n=N):
    prev = None
    for i in range(n):
        def _realize(b):
            c = build_cattrs(b)
            if LOG:
                with open(LOG, "a") as f:
                    f.write(f"{c.name}\n")
            if c.i == KILL_AT:
                os.kill(os.getpid(), signal.SIGKILL)  # a power cut, as far as this process can tell
            if c.i == WAIT_AT:
                open(GATE + ".ready", "w").close()
                while not os.path.exists(GATE):
                    time.sleep(0.05)
            v = int(open(build_path(b, [c.prev, "out"])).read()) + 1 if c.prev else 0
            with open(join(build_outpath(b), "out"), "w") as f:
                f.write(str(v))
        prev = mkdrv(m, mkconfig({"name": f"{PREFIX}{i}", "i": i, "prev": prev}), match_only(),
                     build_wrapper(_realize))
    return prev


if __name__ == "__main__":
    while START_GATE and not os.path.exists(START_GATE):
        time.sleep(0.005)
    print("RREF", realize(instantiate(chain)))
    sys.exit(0)
