"""Tiny file helpers the design document's examples use."""
from __future__ import annotations

import os
from os.path import basename, join
from typing import List, Optional

from pylightnix.engine.build import timestring
from pylightnix.types import Path


def tryread(path: str) -> Optional[str]:
    """The text of ``path``, or None if it cannot be read."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def trywrite(path: str, text: str) -> bool:
    """Write ``text`` to ``path``; False if that failed."""
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return True
    except OSError:
        return False


def mklogdir(tag: str, logrootdir: str, subdirs: Optional[List[str]] = None, symlinks: bool = True,
             timetag: Optional[str] = None) -> Path:
    """Create ``<logrootdir>/<tag>_<time>`` (with ``subdirs``) and point the
    ``<logrootdir>/_<tag>_latest`` symlink at it. Returns the new folder."""
    name = f"{tag}_{timetag or timestring()}" if tag else (timetag or timestring())
    logpath = join(logrootdir, name)
    os.makedirs(logpath, exist_ok=True)
    for sd in subdirs or []:
        os.makedirs(join(logpath, sd), exist_ok=True)
    if symlinks:
        forcelink(basename(logpath), join(logrootdir, f"_{tag}_latest" if tag else "_latest"))
    return Path(logpath)


def forcelink(src: str, dst: str) -> None:
    """Make ``dst`` a symlink to ``src``, replacing what is there atomically
    (readers see the old link or the new one, never none)."""
    part = f"{dst}.{os.getpid()}.part"
    os.symlink(src, part)
    os.replace(part, dst)
