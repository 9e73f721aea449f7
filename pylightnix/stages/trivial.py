"""Small ready-made stages: ``mknode`` and ``mkfile``."""
from __future__ import annotations

from hashlib import sha256
from os.path import join
from typing import Any, Dict, Optional

from pylightnix.engine.build import Build, build_outpath, build_wrapper
from pylightnix.core.config import mkconfig
from pylightnix.core.errors import ConfigError
from pylightnix.engine.manager import Manager, mkdrv
from pylightnix.engine.matchers import match_only
from pylightnix.core.refs import is_name
from pylightnix.types import DRef


def mknode(m: Manager, sources: Dict[str, Any], artifacts: Optional[Dict[str, bytes]] = None,
           name: str = "mknode") -> DRef:
    """A stage whose config is ``sources`` and whose realization holds ``artifacts`` (file name -> bytes)."""
    arts = dict(artifacts or {})
    if "__artifacts__" in sources:
        raise ConfigError(f"mknode {name!r}: key '__artifacts__' is reserved", key="__artifacts__")
    for fn, data in arts.items():
        if not isinstance(fn, str) or "/" in fn or fn in ("", ".", "..", "context.json"):
            raise ConfigError(f"mknode {name!r}: artifact name {fn!r}: expected a plain file name", key=str(fn))
        if not isinstance(data, (bytes, bytearray)):
            raise ConfigError(f"mknode {name!r}: artifact {fn!r}: expected bytes, got {type(data).__name__}",
                              key=fn)
    config = dict(sources)
    config["name"] = name
    config["__artifacts__"] = {fn: sha256(bytes(data)).hexdigest() for fn, data in arts.items()}

    def _realize(b: Build) -> None:
        o = build_outpath(b)
        for fn, data in arts.items():
            with open(join(o, fn), "wb") as f:
                f.write(data)
    return mkdrv(m, mkconfig(config), match_only(), build_wrapper(_realize))


def mkfile(m: Manager, name: str, contents: bytes, filename: Optional[str] = None) -> DRef:
    """A stage holding one file ``filename`` (default: ``name``) with ``contents``."""
    if not is_name(name):
        raise ConfigError(f"mkfile: name {name!r}: expected [a-zA-Z0-9_-]+", key="name")
    return mknode(m, sources={}, artifacts={filename or name: contents}, name=name)
