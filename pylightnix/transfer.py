"""Realizations as archives, for stores that do not share a filesystem (copy mode).

``pack`` turns a realization folder into tar bytes; ``unpack`` puts them into
the current store under the RRef they claim to be, after checking that the
content hashes to that RRef. The folder enters the store by one rename, like
every realization, so a store never holds a partial copy.
"""
from __future__ import annotations

import errno
import io
import os
import tarfile
from os.path import isdir, join

from pylightnix.errors import StoreError
from pylightnix import store as _store
from pylightnix.refs import rref2dref, unrref
from pylightnix.store import _fsync_dir, _rmtree, _token, dirhash, rref2path, store_dref2path
from pylightnix.types import RRef


def pack(rref: RRef) -> bytes:
    """The realization's folder as an uncompressed tar (entries relative to the folder)."""
    buf = io.BytesIO()
    root = rref2path(rref)
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for e in sorted(os.listdir(root)):
            tar.add(join(root, e), arcname=e)
    return buf.getvalue()


def _safe_extract(tar: tarfile.TarFile, dest: str, rref: RRef) -> None:
    if hasattr(tarfile, "data_filter"):
        try:
            tar.extractall(dest, filter="data")
        except tarfile.FilterError as e:
            raise StoreError(f"archive of {rref} is unsafe: {e}", dref=rref2dref(rref)) from None
        return
    for m in tar.getmembers():  # Python without extraction filters: refuse anything that could escape
        if m.name.startswith("/") or ".." in m.name.split("/") or m.issym() or m.islnk() or m.isdev():
            raise StoreError(f"archive of {rref}: member {m.name!r} is not allowed", dref=rref2dref(rref))
    tar.extractall(dest)


def unpack(rref: RRef, data: bytes) -> bool:
    """Add realization ``rref`` from ``pack`` bytes; False if it was there already.

    The derivation must be instantiated in this store first.
    """
    target = rref2path(rref)
    if isdir(target):
        return False
    ddir = store_dref2path(rref2dref(rref))
    if not os.path.exists(join(ddir, "config.json")):
        raise StoreError(f"cannot add {rref}: its derivation is not in the store {ddir}", dref=rref2dref(rref))
    staging = join(ddir, f".staging-{_token()}")
    os.mkdir(staging)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            _safe_extract(tar, staging, rref)
        if _store._deferred is not None:
            _store._deferred()  # a realize defers its syncs: journal this commit too
        got = dirhash(staging, seal=True)[:32]
        _fsync_dir(staging)
        if got != unrref(rref)[0]:
            raise StoreError(f"archive of {rref} does not match its hash (content hashes to {got}); "
                             f"it was not added", dref=rref2dref(rref))
        try:
            os.rename(staging, target)
        except OSError as e:
            if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            return False
        return True
    finally:
        if isdir(staging):
            _rmtree(staging)
