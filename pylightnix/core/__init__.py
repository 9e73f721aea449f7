"""The store's role (config, refs, store, locks, journal, files, errors, archives,
gcpause), and the original's ``pylightnix.core`` import path.

``from pylightnix.core import realize`` (and ``*``) keeps working: the names the
original's core held, that this project has (see docs/compatibility.md), are looked
up on first use (PEP 562), so that importing a module of this package, say
``pylightnix.core.store``, does not import the engine that depends on it."""
from __future__ import annotations

import importlib
from typing import Any, Dict, List

#: the module each of the original's ``pylightnix.core`` names lives in now
_ORIGINAL: Dict[str, List[str]] = {
    "pylightnix.bashlike": ["mksymlink"],
    "pylightnix.engine.build": [
        "build_cattrs", "build_config", "build_context", "build_deref", "build_deref_", "build_name",
        "build_outpath", "build_outpaths", "build_path", "build_paths", "build_setoutpaths", "build_wrapper",
        "build_wrapper_", "mkbuild", "mkbuildargs"
    ],
    "pylightnix.core.config": [
        "assert_valid_config", "claim", "config_cattrs", "config_deps", "config_dict", "config_hash", "config_name",
        "config_serialize", "mkconfig", "promise"
    ],
    "pylightnix.engine.manager": ["instantiate", "instantiate_", "mkdrv"],
    "pylightnix.engine.matchers": [
        "best", "exact", "latest", "match", "match_all", "match_best", "match_latest", "match_n", "match_only",
        "match_some", "texthash"
    ],
    "pylightnix.engine.realize": ["realize", "realizeMany", "realizeSeq"],
    "pylightnix.core.refs": [
        "assert_valid_dref", "assert_valid_hash", "assert_valid_name", "assert_valid_rref", "mkdref", "mkname",
        "mkrefpath", "mkrref", "rref2dref", "undref", "unrref"
    ],
    "pylightnix.core.store": [
        "rref2path", "store_buildtime", "store_cattrs", "store_cfgpath", "store_config", "store_config_",
        "store_context", "store_deepdeps", "store_deps", "store_deref", "store_deref_", "store_dref2path",
        "store_drefs", "store_gc", "store_initialize", "store_instantiate", "store_realize", "store_rrefs",
        "store_rrefs_"
    ],
    "pylightnix.types": ["mkcontext"],
}
_WHERE = {name: module for module, names in _ORIGINAL.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # found once
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
