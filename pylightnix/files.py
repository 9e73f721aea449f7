"""Tiny file helpers the design document's examples use."""
from __future__ import annotations

from typing import Optional


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
