"""A chain of stages for the journal tests; run as a script, stage ``kill_at`` SIGKILLs its own process."""
import os
import signal
import sys
from os.path import join

from pylightnix import build_cattrs, build_outpath, build_path, build_wrapper, instantiate, match_only, mkconfig, \
    mkdrv, realize

KILL_AT = int(os.environ.get("JOURNAL_KILL_AT", "-1"))


def chain(m, n=5):
    prev = None
    for i in range(n):
        def _realize(b):
            c = build_cattrs(b)
            if c.i == KILL_AT:
                os.kill(os.getpid(), signal.SIGKILL)  # a power cut, as far as this process can tell
            v = int(open(build_path(b, [c.prev, "out"])).read()) + 1 if c.prev else 0
            with open(join(build_outpath(b), "out"), "w") as f:
                f.write(str(v))
        prev = mkdrv(m, mkconfig({"name": f"j{i}", "i": i, "prev": prev}), match_only(), build_wrapper(_realize))
    return prev


if __name__ == "__main__":
    print("RREF", realize(instantiate(chain)))
    sys.exit(0)
