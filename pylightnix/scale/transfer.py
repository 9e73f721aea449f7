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
from typing import Any, List

from pylightnix.core.archives import extract_tar
from pylightnix.core.errors import StoreError, UnsafeArchiveError
from pylightnix.core import store as _store
from pylightnix.core.refs import is_rref, rref2dref, unrref
from pylightnix.core.store import dirhash, fsync_dir, rmtree, rref2path, store_dref2path, unique_token
from pylightnix.types import DRef, RRef


def pack(rref: RRef) -> bytes:
    """The realization's folder as an uncompressed tar (entries relative to the folder)."""
    buf = io.BytesIO()
    root = rref2path(rref)
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for e in sorted(os.listdir(root)):
            tar.add(join(root, e), arcname=e)
    return buf.getvalue()


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
    staging = join(ddir, f".staging-{unique_token()}")
    os.mkdir(staging)
    try:
        try:
            with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
                extract_tar(tar, staging, f"the archive of {rref}")
        except UnsafeArchiveError as e:
            raise StoreError(f"{e}; it was not added", dref=rref2dref(rref)) from None
        except (tarfile.TarError, OSError) as e:
            raise StoreError(f"the archive of {rref} cannot be unpacked: {e}; it was not added",
                             dref=rref2dref(rref)) from None
        _store.current_store().before_commit()  # a realize defers its syncs: journal this commit too
        got = dirhash(staging, seal=True)[:32]
        fsync_dir(staging)
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
            rmtree(staging)


def unpack_built(dref: DRef, archives: Any, where: str) -> List[RRef]:
    """Copy mode, in the driver: add the realizations a worker sends back for the build of
    ``dref``. Only realizations of ``dref`` itself are taken, each under the RRef its content
    hashes to (:func:`unpack`); an archive of any other derivation is refused before anything
    is stored (a worker was never asked for it)."""
    what = f"{dref}: the worker {where!r}"
    if not isinstance(archives, list) or not all(
            isinstance(a, tuple) and len(a) == 2 and isinstance(a[1], bytes) for a in archives):
        raise StoreError(f"{what} sent back {type(archives).__name__} instead of a list of (RRef, archive "
                         f"bytes); nothing was stored", dref=dref)
    for r, _ in archives:
        if not is_rref(r) or rref2dref(r) != dref:
            raise StoreError(f"{what} sent back {r!r}, which is not a realization of {dref}, the only derivation "
                             f"it was asked to build; nothing was stored", dref=dref)
    for r, data in archives:
        unpack(r, data)
    return [r for r, _ in archives]
