"""The store is an object (root, temporary area, caches, deferred syncs); the seed's
functions use the current one, and no module writes another module's globals."""
import ast
import os
import subprocess
import sys
from os.path import join
from pathlib import Path

import pytest

from pylightnix import build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv, realize, \
    rref2path, store_initialize
from pylightnix.core import store as store_mod
from pylightnix.core.store import store_root
from pylightnix.scale.executors import Processes

PKG = Path(__file__).resolve().parents[2] / "pylightnix"


def _stage(m):
    def write(b):
        with open(join(build_outpath(b), "pid"), "w") as f:
            f.write(str(os.getpid()))
    return mkdrv(m, mkconfig({"name": "where"}), match_only(), build_wrapper(write))


def test_the_seed_functions_use_the_current_store(store, tmp_path):
    first = store_mod.current_store()
    assert first.root == store_root() == join(store, "store-v0")
    other = store_mod.Store(str(tmp_path / "other" / "store-v0"), str(tmp_path / "other" / "tmp")).create()
    previous = store_mod.use_store(other)
    try:
        assert previous is first and store_root() == other.root
        rref = realize(instantiate(_stage))
        assert rref2path(rref).startswith(other.root + os.sep)
        assert rref in other.context_cache and not first.context_cache  # each store caches its own facts
    finally:
        store_mod.use_store(previous)
    assert store_root() == first.root
    store_initialize()  # the same store again: the same object, caches kept
    assert store_mod.current_store() is first


def test_a_pool_worker_builds_in_the_store_it_is_handed(store, tmp_path, monkeypatch):
    """The driver's store is not the one the environment names: a worker builds in the driver's."""
    custom = tmp_path / "custom"
    store_initialize(custom_store=str(custom / "store-v0"), custom_tmp=str(custom / "tmp"))
    monkeypatch.setenv("PYLIGHTNIX_ROOT", str(tmp_path / "elsewhere"))
    with Processes(1) as ex:
        rref = realize(instantiate(_stage), executor=ex)
    path = rref2path(rref)
    assert path.startswith(str(custom / "store-v0") + os.sep)
    assert open(join(path, "pid")).read() != str(os.getpid())  # built by the worker
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("folder_locks", [True, False], ids=["folder", "lock-file"])
def test_gc_spares_a_derivation_whose_build_lock_another_process_holds(store, tmp_path, folder_locks):
    """The derivation's folder is its lock; where a filesystem cannot lock folders (NFS) a lock
    file in .locks serves instead. Either way gc does not remove what another process builds."""
    s = store_mod.Store(str(tmp_path / "s" / "store-v0"), str(tmp_path / "s" / "tmp"), folder_locks).create()
    previous = store_mod.use_store(s)
    try:
        assert store_mod.Store(s.root, s.tmp).folder_locks()  # this test's filesystem can lock folders
        clo = instantiate(_stage)
        realize(clo)
        ddir = join(s.root, clo.dref[5:])
        lock = ddir if folder_locks else join(s.root, ".locks", clo.dref[5:] + ".lock")
        assert os.path.isfile(join(s.root, ".locks", clo.dref[5:] + ".lock")) == (not folder_locks)
        holder = subprocess.Popen(
            [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
             "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)", lock],
            stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "locked"
            assert store_mod.store_collect([clo.dref], []) == [(clo.dref, "being built by a running process")]
            assert os.path.isdir(ddir)
        finally:
            holder.kill()
            holder.wait()
        assert store_mod.store_collect([clo.dref], []) == []
        assert not os.path.exists(ddir)
    finally:
        store_mod.use_store(previous)


def _module_aliases(tree: ast.Module) -> set:
    """Names bound to pylightnix modules in a module: ``from pylightnix.core import store as s``,
    ``import pylightnix.core.store as s``."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "pylightnix":
            folder = PKG.joinpath(*node.module.split(".")[1:])
            names.update(a.asname or a.name for a in node.names if (folder / f"{a.name}.py").exists())
        elif isinstance(node, ast.Import):
            names.update(a.asname for a in node.names if a.name.startswith("pylightnix.") and a.asname)
    return names


_MUTATORS = {"clear", "update", "append", "extend", "pop", "add", "discard", "remove", "setdefault"}


def test_no_module_writes_another_modules_globals():
    """``store._deferred = …`` and the like: a module changes another only through its functions."""
    found = []
    for path in sorted(PKG.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        mods = _module_aliases(tree)
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else \
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else []
            for t in [e for t in targets for e in (t.elts if isinstance(t, ast.Tuple) else [t])]:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id in mods:
                    found.append(f"{path.name}:{node.lineno}: {t.value.id}.{t.attr} = …")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS \
                    and isinstance(node.func.value, ast.Attribute) and isinstance(node.func.value.value, ast.Name) \
                    and node.func.value.value.id in mods:
                found.append(f"{path.name}:{node.lineno}: {node.func.value.value.id}.{node.func.value.attr}"
                             f".{node.func.attr}(…)")
    assert found == []
