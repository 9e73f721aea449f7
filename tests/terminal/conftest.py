"""Fixtures for the terminal tests (helpers live in terminal_support.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from terminal_support import Env


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    """A private PYLIGHTNIX_ROOT; every process spawned through it is stopped afterwards."""
    e = Env(tmp_path)
    try:
        yield e
    finally:
        e.close()
