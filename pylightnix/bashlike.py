"""Shell-like helpers for looking at the store from an IPython console
(``lsref``, ``catref``, ``du``, ``shell``...), as in the original library.

They only read the store, except ``rmref`` (removes a realization or a
derivation) and ``mksymlink`` (writes a symlink where the user asks).
"""
from __future__ import annotations

import os
import shlex
import subprocess
import sys
from os.path import isdir, join, relpath
from typing import Dict, List, Tuple, Union

from pylightnix.engine.build import Build
from pylightnix.core.errors import RefError, StoreError
from pylightnix.core.files import forcelink
from pylightnix.core.refs import is_dref, is_rref, unrref
from pylightnix.core.store import (rref2path, store_buildtime, store_cfgpath, store_dref2path, store_drefs,
                                   store_remove, store_root, store_rrefs_)
from pylightnix.types import DRef, Path, RRef


def _existing(path: str, r: str) -> str:
    if not isdir(path):
        raise StoreError(f"{r} is not in the store {store_root()}")
    return path


def lsref(r: Union[RRef, DRef]) -> List[str]:
    """The artifact names of a realization; for a derivation, its folder as the original
    lists it: ``config.json`` and one entry (the hash) per realization. Builds in progress
    (the folder's hidden temporary entries) are not shown."""
    if is_rref(r):
        return sorted(os.listdir(_existing(rref2path(RRef(r)), r)))
    if is_dref(r):
        _existing(store_dref2path(DRef(r)), r)
        return sorted(["config.json"] + [unrref(x)[0] for x in store_rrefs_(DRef(r))])
    raise RefError(f"lsref: expected a dref:... or rref:... reference, got {r!r}")


def catref(r: RRef, fn: Union[str, List[str]]) -> List[str]:
    """The lines of artifact ``fn`` (a name or a path as a list of names) of realization ``r``."""
    if not is_rref(r):
        raise RefError(f"catref: expected an rref:... reference, got {r!r}")
    parts = [fn] if isinstance(fn, str) else list(fn)
    with open(join(_existing(rref2path(RRef(r)), r), *parts), encoding="utf-8") as f:
        return f.readlines()


def rmref(r: Union[RRef, DRef]) -> None:
    """Remove a realization, or a derivation with all its realizations, from the store."""
    if is_rref(r):
        store_remove([], [RRef(r)])
    elif is_dref(r):
        store_remove([DRef(r)], [])
    else:
        raise RefError(f"rmref: expected a dref:... or rref:... reference, got {r!r}")


def _folder_of(r: Union[Build, RRef, DRef, str, None]) -> str:
    if r is None:
        return store_root()
    if isinstance(r, Build):
        if not r.outpaths:
            raise RefError(f"shell: the build of {r.dref} has no output folder yet; call build_outpath(b) first")
        return r.outpaths[0]
    if is_rref(r):
        return _existing(rref2path(RRef(r)), r)
    if is_dref(r):
        return _existing(store_dref2path(DRef(r)), r)
    if isinstance(r, str) and isdir(r):
        return r
    raise RefError(f"shell: expected an RRef, a DRef, a Build, a folder or None, got {r!r}")


def shell(r: Union[Build, RRef, DRef, Path, str, None] = None) -> None:
    """Open ``$SHELL`` (default ``/bin/sh``) in the folder of ``r`` (the store
    root if None). Without a terminal (a Debug Console, a notebook), print the
    command to run instead."""
    cwd = _folder_of(r)
    sh = os.environ.get("SHELL") or "/bin/sh"
    if sys.stdin.isatty() and sys.stdout.isatty():
        subprocess.run([sh], cwd=cwd, check=False)
    else:
        print(f"cd {shlex.quote(cwd)} && {shlex.quote(sh)}")


def shellref(r: Union[RRef, DRef, None] = None) -> None:
    """Alias of :func:`shell`."""
    shell(r)


def _size(path: str) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for f in files:
            p = join(root, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def du() -> Dict[DRef, Tuple[int, Dict[RRef, int]]]:
    """Disk usage in bytes: for each derivation, its total and the size of each realization."""
    out: Dict[DRef, Tuple[int, Dict[RRef, int]]] = {}
    for d in store_drefs():
        per = {r: _size(rref2path(r)) for r in store_rrefs_(d)}
        out[d] = (sum(per.values()) + os.path.getsize(store_cfgpath(d)), per)
    return out


def mksymlink(rref: RRef, tgtpath: str, name: str, withtime: bool = True) -> Path:
    """Make (or replace) the symlink ``<tgtpath>/[<buildtime>_]<name>`` pointing at
    realization ``rref``, relative so the pair can move together."""
    if not is_rref(rref):
        raise RefError(f"mksymlink: expected an rref:... reference, got {rref!r}")
    if not isdir(tgtpath):
        raise StoreError(f"mksymlink: target folder {tgtpath!r} does not exist")
    ts = store_buildtime(rref) if withtime else None
    link = join(tgtpath, f"{ts}_{name}" if ts else name)
    forcelink(relpath(_existing(rref2path(rref), rref), tgtpath), link)
    return Path(link)


__all__ = ["lsref", "catref", "rmref", "shell", "shellref", "du", "mksymlink"]
