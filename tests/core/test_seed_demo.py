"""The design document's REPL demo, run cell by cell in a real IPython shell.

The document's code is read from shared/seed/REPL-demo.md and run unchanged,
except the TensorFlow cell: its imports are dropped and its stage definitions
come from examples/mnist.py (the same code on a tiny numpy model).
"""
import os
import re
import sys

import pytest
from IPython.core.interactiveshell import InteractiveShell

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED = os.path.join(os.path.dirname(REPO), "shared")

# The shared design document when it sits beside the checkout (as in CI), else the copy in examples/.
SEED = next(p for p in (os.path.join(SHARED, "seed", "REPL-demo.md"), os.path.join(REPO, "examples", "REPL-demo.md"))
            if os.path.exists(p))


def doc_cells():
    with open(SEED) as f:
        text = f.read()
    return re.findall(r"```python\n(.*?)```", text, re.S)


@pytest.fixture
def shell(store, monkeypatch):
    monkeypatch.syspath_prepend(os.path.join(REPO, "examples"))
    sys.modules.pop("mnist", None)
    sh = InteractiveShell.instance()
    yield sh
    InteractiveShell.clear_instance()


def run(sh, code):
    res = sh.run_cell(code, store_history=False)
    return res


def test_seed_document_runs_unchanged_in_ipython(shell, store):
    cells = doc_cells()
    assert len(cells) == 8, "the seed document changed shape"
    imports = "\n".join(l for l in cells[0].splitlines() if "tensorflow" not in l and not l.startswith("assert tf"))
    r = run(shell, imports)
    assert r.success, r.error_in_exec
    r = run(shell, "from mnist import *")
    assert r.success, r.error_in_exec

    # 1. a forced realize fails with the stage's own AttributeError
    r = run(shell, cells[2])
    assert isinstance(r.error_in_exec, AttributeError)
    assert "load" in str(r.error_in_exec)
    assert os.listdir(os.path.join(store, "tmp")) == [], "a failed build left temporary outputs"

    # the fixed evaluation function, as the document defines it
    r = run(shell, cells[3])
    assert r.success, r.error_in_exec

    # 2. repl_realize returns a ReplHelper
    r = run(shell, cells[4])
    assert r.success, r.error_in_exec
    assert type(r.result).__name__ == "ReplHelper"

    # 3. + 4. build the stage's Build subclass by hand and run its functions
    r = run(shell, cells[5])
    assert r.success, r.error_in_exec
    assert type(shell.user_ns["b"]).__name__ == "Model"
    r = run(shell, cells[6])
    assert r.success, r.error_in_exec

    # 5. repl_continueBuild returns the rref
    r = run(shell, cells[7])
    assert r.success, r.error_in_exec
    rref = shell.user_ns["rref"]
    assert re.match(r"^rref:[0-9a-f]{32}-[0-9a-f]{32}-convnn_mnist$", rref)
    acc = float(open(os.path.join(shell.user_ns["rref2path"](rref), "accuracy.txt")).read())
    assert 0.0 <= acc <= 1.0

    # 6. a later realize returns that cached realization without running anything
    calls = []
    shell.user_ns["mnist_train"].__globals__["print"] = lambda *a, **k: calls.append(a)
    r = run(shell, "rref2 = realize(instantiate(convnn_mnist))")
    assert r.success, r.error_in_exec
    assert shell.user_ns["rref2"] == rref
    assert calls == [], "the cached stage ran again"
