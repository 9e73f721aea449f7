"""`pylightnix show` by name or hash prefix, `gc --dry-run` when there is nothing, and
`debug --help` under the name it was called by; all through real subprocesses."""
import os
import subprocess
import sys
from os.path import join

import pytest

PY = os.path.dirname(sys.executable)
TWO_SAME_NAME = """
from pylightnix import *
for v in (1, 2):
    print(realize(instantiate(mkfile, 'twin', str(v).encode())))
print(realize(instantiate(mkfile, 'single', b'x')))
"""


def run(root, *cmd, check=True):
    env = dict(os.environ, PYLIGHTNIX_ROOT=root, PYLIGHTNIX_PROGRESS="0")
    return subprocess.run(list(cmd), env=env, capture_output=True, text=True, check=check)


@pytest.fixture
def root(tmp_path):
    r = str(tmp_path / "root")
    out = run(r, sys.executable, "-c", TWO_SAME_NAME).stdout.split()
    return r, out


def test_show_by_name_and_by_hash_prefix(root):
    r, (twin1, twin2, single) = root
    by_name = run(r, sys.executable, "-m", "pylightnix", "show", "single").stdout
    dref_single = "dref:" + single.split("-")[1] + "-single"
    assert by_name.startswith(f"derivation {dref_single}\n") and single in by_name
    # a prefix of the realization's hash shows the realization, with or without "rref:"
    rhash = single.split(":")[1].split("-")[0]
    for q in (rhash[:10], "rref:" + rhash[:10]):
        out = run(r, sys.executable, "-m", "pylightnix", "show", q).stdout
        assert out.startswith(f"realization {single}\n") and "files:" in out
    # a prefix of the derivation's hash shows the derivation
    out = run(r, sys.executable, "-m", "pylightnix", "show", dref_single.split(":")[1][:8]).stdout
    assert out.startswith(f"derivation {dref_single}")


def test_show_ambiguous_name_lists_the_candidates(root):
    r, (twin1, twin2, single) = root
    p = run(r, sys.executable, "-m", "pylightnix", "show", "twin", check=False)
    assert p.returncode == 2 and p.stdout == ""
    assert "'twin' is ambiguous; it matches 2 references" in p.stderr
    for t in (twin1, twin2):
        assert "  dref:" + t.split("-")[1] + "-twin" in p.stderr
    p = run(r, sys.executable, "-m", "pylightnix", "show", "nosuch", check=False)
    assert p.returncode == 2 and "nothing in" in p.stderr and "'nosuch'" in p.stderr


def test_gc_dry_run_says_what_it_would_remove_or_that_there_is_nothing(root):
    r, (twin1, twin2, single) = root
    out = run(r, sys.executable, "-m", "pylightnix", "gc", "--dry-run").stdout
    assert out.splitlines()[0] == "nothing to remove"
    out = run(r, sys.executable, "-m", "pylightnix", "gc", "--keep", single, "--dry-run").stdout
    assert "would remove dref:" in out and "-twin and its realizations" in out and "nothing" not in out
    os.makedirs(join(r, "tmp", "leftover-build"))
    out = run(r, sys.executable, "-m", "pylightnix", "gc", "--dry-run").stdout
    assert "would remove leftover" in out and "leftover-build" in out and "nothing to remove" not in out
    assert os.path.isdir(join(r, "tmp", "leftover-build"))  # a dry run removes nothing


def test_debug_help_names_the_command_as_called(tmp_path):
    script = run(str(tmp_path), join(PY, "pylightnix"), "debug", "--help").stdout
    assert script.startswith("usage: pylightnix debug [-h] [--break NAME]")
    module = run(str(tmp_path), sys.executable, "-m", "pylightnix", "debug", "--help").stdout
    assert module.startswith("usage: python -m pylightnix debug [-h]")
    top = run(str(tmp_path), join(PY, "pylightnix"), "--help").stdout
    assert top.startswith("usage: pylightnix [-h]")
