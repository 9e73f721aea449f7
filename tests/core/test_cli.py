"""The pylightnix CLI, run as a real subprocess."""
import json
import os
import subprocess
import sys
from os.path import join

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def cli(root, *args, check=True):
    env = dict(os.environ, PYLIGHTNIX_ROOT=root, PYLIGHTNIX_PROGRESS="0")
    return subprocess.run([sys.executable, "-m", "pylightnix", *args], env=env, capture_output=True, text=True,
                          check=check)


@pytest.fixture
def demo_store(tmp_path):
    root = str(tmp_path / "root")
    env = dict(os.environ, PYLIGHTNIX_ROOT=root, PYLIGHTNIX_PROGRESS="0")
    out = subprocess.run([sys.executable, join(REPO, "examples", "demo.py")], env=env, capture_output=True,
                         text=True, check=True).stdout
    rref = [l for l in out.splitlines() if l.startswith("rref:")][0]
    return root, rref


def test_ls_show_verify(demo_store):
    root, rref = demo_store
    rows = json.loads(cli(root, "ls", "--json").stdout)
    names = {r["name"]: r for r in rows}
    assert names["convnn_mnist"]["realizations"] == 1 and names["convnn_mnist"]["rrefs"] == [rref]
    assert "convnn_mnist" in cli(root, "ls").stdout
    shown = cli(root, "show", rref).stdout
    assert '"name": "convnn_mnist"' in shown and "accuracy.txt" in shown and "context:" in shown
    v = cli(root, "verify")
    assert v.returncode == 0 and "OK" in v.stdout


@pytest.mark.parametrize("cmd", [["show", "convnn_mnist"], ["ls"], ["ls", "--json"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(demo_store, cmd):
    """``pylightnix show convnn_mnist | head -1``: the reader closes the pipe before the command
    writes. It used to print ``pylightnix: error: [Errno 32] Broken pipe`` and exit 2; now it
    stops quietly, with the status of a tool ended by SIGPIPE."""
    root, _ = demo_store
    r, w = os.pipe()
    os.close(r)  # the reader is gone before the command writes a byte
    env = dict(os.environ, PYLIGHTNIX_ROOT=root, PYLIGHTNIX_PROGRESS="0")
    p = subprocess.run([sys.executable, "-m", "pylightnix", *cmd], env=env, stdout=w, stderr=subprocess.PIPE,
                       text=True, timeout=60)
    os.close(w)
    assert (p.returncode, p.stderr) == (141, "")


def test_verify_detects_tampering(demo_store):
    root, rref = demo_store
    p = join(cli(root, "show", rref).stdout.split("path")[1].split()[0], "accuracy.txt")
    os.chmod(p, 0o644)
    with open(p, "a") as f:
        f.write("9")
    v = cli(root, "verify", check=False)
    assert v.returncode == 1 and rref in v.stdout and "does not match" in v.stdout


def test_gc_keeps_what_is_needed(demo_store, tmp_path):
    root, rref = demo_store
    # an unrelated derivation to collect
    env = dict(os.environ, PYLIGHTNIX_ROOT=root, PYLIGHTNIX_PROGRESS="0")
    subprocess.run([sys.executable, "-c", "from pylightnix import *; realize(instantiate(mkfile, 'junk', b'x'))"],
                   env=env, check=True, capture_output=True)
    os.makedirs(join(root, "tmp", "leftover-build"))
    dry = cli(root, "gc", "--keep", rref, "--dry-run").stdout
    assert "would remove" in dry and "junk" in dry and "leftover-build" in dry and "mnist " not in dry
    rows = json.loads(cli(root, "ls", "--json").stdout)
    assert [r["name"] for r in rows] == ["convnn_mnist", "junk", "mnist"]  # by name, not by hash
    assert [ln.split()[0] for ln in cli(root, "ls").stdout.splitlines()] == ["convnn_mnist", "junk", "mnist"]
    cli(root, "gc", "--keep", rref)
    names = sorted(r["name"] for r in json.loads(cli(root, "ls", "--json").stdout))
    assert names == ["convnn_mnist", "mnist"]
    assert os.listdir(join(root, "tmp")) == []


def test_bad_ref_is_a_clear_error(tmp_path):
    r = cli(str(tmp_path), "show", "nonsense", check=False)
    assert r.returncode == 2 and "nothing in" in r.stderr and "is named 'nonsense' or has a hash" in r.stderr


def test_gc_keep_takes_what_show_takes_and_a_derivation_keeps_its_closure(demo_store):
    """`gc --keep convnn_mnist` (a name) keeps the derivation's realization and the mnist
    realization it was built from: a root keeps its closure. Hash prefixes work as for show;
    an ambiguous or unknown one removes nothing."""
    root, rref = demo_store
    env = dict(os.environ, PYLIGHTNIX_ROOT=root, PYLIGHTNIX_PROGRESS="0")
    subprocess.run([sys.executable, "-c", "from pylightnix import *; realize(instantiate(mkfile, 'junk', b'x'))"],
                   env=env, check=True, capture_output=True)
    before = {r["name"]: r["rrefs"] for r in json.loads(cli(root, "ls", "--json").stdout)}
    p = cli(root, "gc", "--keep", "convnn_mnist", "--keep", "nosuch", check=False)
    assert p.returncode == 2 and "gc --keep: nothing in" in p.stderr and "removing" not in p.stdout, p.stdout + p.stderr
    cli(root, "gc", "--keep", "convnn_mnist")
    after = {r["name"]: r["rrefs"] for r in json.loads(cli(root, "ls", "--json").stdout)}
    assert after == {"convnn_mnist": [rref], "mnist": before["mnist"]}, after
    assert cli(root, "verify").returncode == 0
    # a prefix of the derivation's hash, as `show` takes it, keeps the same
    dhash = rref.split("-")[1]
    cli(root, "gc", "--keep", dhash[:8])
    assert {r["name"]: r["rrefs"] for r in json.loads(cli(root, "ls", "--json").stdout)} == after
    # and a prefix of the realization's hash
    cli(root, "gc", "--keep", "rref:" + rref.split(":")[1][:10])
    assert {r["name"]: r["rrefs"] for r in json.loads(cli(root, "ls", "--json").stdout)} == after
