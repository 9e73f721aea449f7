"""One progress line on stderr per stage that is actually built (cached stages are silent).

``PYLIGHTNIX_PROGRESS=0`` turns it off.
"""
from __future__ import annotations

import os
import sys


def enabled() -> bool:
    return os.environ.get("PYLIGHTNIX_PROGRESS", "1") not in ("0", "false", "no")


def building(index: int, total: int, name: str) -> None:
    if enabled():
        print(f"[pylightnix] building {name} (stage {index + 1} of {total})", file=sys.stderr, flush=True)
