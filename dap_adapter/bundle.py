"""The libraries the VS Code extension ships beside ``dap_adapter``.

The extension's ``bundled/`` folder (built by ``vscode-config/package.sh``) holds
``adapter/dap_adapter`` (this package, first on ``PYTHONPATH``), ``libs/``
(debugpy, IPython and IPython's pure-Python dependencies) and ``bundle.json``.
:func:`use` appends ``libs`` to ``sys.path`` *after* everything the interpreter
has, in the adapter and in the debuggee, so an interpreter without debugpy or
IPython still debugs, and the user's own copies win where they are installed,
unless they are older than :data:`MINIMUM`: then that package alone comes from
the bundle. The user's program never sees a bundled copy of a package it has.

Outside the extension (a pip install, a source checkout) there is no bundle and
:func:`use` does nothing.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.metadata
import os
import re
import sys
from typing import Any, Optional, Sequence, Tuple

_ABOVE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: ``bundled/`` when this dap_adapter runs from the extension, else None
ROOT: Optional[str] = _ABOVE if os.path.isfile(os.path.join(_ABOVE, "bundle.json")) else None
LIBS: Optional[str] = os.path.join(ROOT, "libs") if ROOT else None
#: the oldest user-installed versions used instead of the bundled ones (pyproject.toml's pins);
#: distribution name -> (top-level package, minimum version)
MINIMUM = {"debugpy": ("debugpy", (1, 8, 0)), "ipython": ("IPython", (8, 12))}


def _version(text: str) -> Tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", text.split("+")[0])[:3])


def installed_version(dist: str, path: Sequence[str]) -> Optional[Tuple[int, ...]]:
    """Version of ``dist`` found on ``path`` (None if not installed there)."""
    for d in importlib.metadata.distributions(path=list(path)):
        if (d.metadata["Name"] or "").lower() == dist:
            return _version(d.version)
    return None


class _FromBundle(importlib.abc.MetaPathFinder):
    """Finds the named top-level packages in the bundle before anywhere else."""

    def __init__(self, names: Sequence[str], libs: str) -> None:
        self.names, self.libs = set(names), libs

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in self.names:
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [self.libs])


def use() -> Optional[str]:
    """Put the bundled libraries behind the interpreter's own; returns their folder (None: no bundle)."""
    if LIBS is None or LIBS in sys.path:
        return LIBS
    own = list(sys.path)
    sys.path.append(LIBS)
    too_old = [top for dist, (top, minimum) in MINIMUM.items()
               if (v := installed_version(dist, own)) is not None and v < minimum]
    if too_old:
        sys.meta_path.insert(0, _FromBundle(too_old, LIBS))
    return LIBS
