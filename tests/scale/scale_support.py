"""Helpers for the scale-out tests (a module name of its own: every test folder has a conftest)."""
from __future__ import annotations

import os
from typing import Dict, List, Tuple

import pytest


def use_store(monkeypatch: pytest.MonkeyPatch, root: str) -> None:
    """Make ``root`` the current store (as PYLIGHTNIX_ROOT)."""
    import pylightnix
    monkeypatch.setenv("PYLIGHTNIX_ROOT", root)
    pylightnix.store_initialize()


def snapshot(closure, with_rrefs: bool) -> Dict[str, List[Tuple[str, Dict[str, bytes]]]]:  # type: ignore[no-untyped-def]
    """Every realization of the closure's derivations: its RRef (or '' when RRefs are not
    compared) and its files' contents, context.json and __buildtime__.txt left out."""
    from pylightnix import rref2path, store_rrefs_
    out = {}
    for d in closure.derivations:
        reals = []
        for r in store_rrefs_(d.dref):
            root = rref2path(r)
            files = {}
            for dirpath, _, names in os.walk(root):
                for n in names:
                    rel = os.path.relpath(os.path.join(dirpath, n), root)
                    if rel not in ("context.json", "__buildtime__.txt"):
                        files[rel] = open(os.path.join(dirpath, n), "rb").read()
            reals.append((r if with_rrefs else "", files))
        out[d.dref] = sorted(reals, key=lambda t: (t[0], sorted(t[1].items())))
    return out
