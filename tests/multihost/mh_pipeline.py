"""A driver for the two-host tests, run as a real subprocess; the executor comes from
``PYLIGHTNIX_EXECUTOR`` (the harness's ``dask:tcp://10.213.X.1:PORT``, or ``sequential``).

    python mh_pipeline.py SALT          (or: pylightnix debug --break train mh_pipeline.py SALT)

``dataset`` feeds ``train`` and ``finetune``, which each need ``{"GPU": 1}``; ``evaluate``
reads both. SALT is part of every config, so each test gets derivations of its own
(the worker's store lives as long as the harness).

Every training (``fit``: called by the realizer, or by hand in a console) records where it
ran in ``_where.json``, a metadata file (left out of the realization's hash, so RRefs equal
a sequential run's), and prints ``MH-FIT SALT NAME PID NETNS`` (on a worker, into the
worker's log). The driver prints ``DRIVER PID NETNS`` first, then ``RESULT {json}``
(per stage: its RRefs and where each was trained, read back from the driver's store) or
``ERROR type: message``. ``MH_FAIL=train`` makes train raise after training.
"""
import json
import os
import socket
import sys
from os.path import join

from pylightnix import (Build, build_cattrs, build_outpath, build_path, build_wrapper, instantiate, match_only,
                        mkconfig, mkdrv, realize, rref2path, store_rrefs_)

GPU = {"GPU": 1}


class Model(Build):
    """What a console builds by hand at a pause: ``b = Model(repl_buildargs()); fit(b)``."""


def where() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "netns": os.stat("/proc/self/ns/net").st_ino,
            "mntns": os.stat("/proc/self/ns/mnt").st_ino, "store": os.environ.get("PYLIGHTNIX_ROOT", "")}


def fit(b):
    """The training: deterministic weights, plus where it ran (metadata)."""
    c = build_cattrs(b)
    with open(build_path(b, [c.dataset, "data.txt"])) as f:
        total = sum(int(x) for x in f.read().split())
    with open(join(build_outpath(b), "weights.txt"), "w") as f:
        f.write(f"{c.name} weights {total * c.scale}\n")
    here = where()
    with open(join(build_outpath(b), "_where.json"), "w") as f:
        json.dump(here, f)
    print(f"MH-FIT {c.salt} {c.name} {here['pid']} {here['netns']}", flush=True)
    if c.fail:
        raise ValueError(f"{c.name} diverged")  # after training: what --break-on-failure is for


def make_dataset(b):
    with open(join(build_outpath(b), "data.txt"), "w") as f:
        f.write(" ".join(map(str, range(100))) + "\n")
    with open(join(build_outpath(b), "_where.json"), "w") as f:
        json.dump(where(), f)


def evaluate(b):
    c = build_cattrs(b)
    scores = [open(build_path(b, [d, "weights.txt"])).read().split()[-1] for d in (c.train, c.finetune)]
    with open(join(build_outpath(b), "score.txt"), "w") as f:
        f.write(" ".join(scores) + "\n")
    with open(join(build_outpath(b), "_where.json"), "w") as f:
        json.dump(where(), f)


def pipeline(m, salt):
    fail = os.environ.get("MH_FAIL", "").split(",")
    data = mkdrv(m, mkconfig({"name": "dataset", "salt": salt}), match_only(), build_wrapper(make_dataset))
    train = mkdrv(m, mkconfig({"name": "train", "salt": salt, "dataset": data, "scale": 1,
                                     "fail": "train" in fail}), match_only(),
                  build_wrapper(fit, Model), resources=GPU)
    finetune = mkdrv(m, mkconfig({"name": "finetune", "salt": salt, "dataset": data, "scale": 2,
                                        "fail": "finetune" in fail}), match_only(),
                     build_wrapper(fit, Model), resources=GPU)
    return mkdrv(m, mkconfig({"name": "evaluate", "salt": salt, "train": train, "finetune": finetune}),
                 match_only(), build_wrapper(evaluate))


def report(closure) -> dict:
    """Per stage: its RRefs in the driver's store and where each realization was built."""
    out = {}
    for d in closure.derivations:
        rrefs = store_rrefs_(d.dref)
        wheres = []
        for r in rrefs:
            p = join(rref2path(r), "_where.json")
            wheres.append(json.load(open(p)) if os.path.exists(p) else None)
        out[d.dref.rsplit("-", 1)[1]] = {"rrefs": rrefs, "where": wheres}
    return out


if __name__ == "__main__":
    print(f"DRIVER {os.getpid()} {os.stat('/proc/self/ns/net').st_ino}", flush=True)
    closure = instantiate(pipeline, sys.argv[1])
    try:
        realize(closure)
    except Exception as e:
        print(f"ERROR {type(e).__name__}: {e}", flush=True)
        sys.exit(1)
    print(f"RESULT {json.dumps(report(closure))}", flush=True)
