"""docs/settings.md is the table of pylightnix/settings.py: the same variables, defaults and
accepted values, and no PYLIGHTNIX_* variable is read anywhere that neither lists."""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Dict, List, Set

from pylightnix.settings import SETTINGS

REPO = Path(__file__).resolve().parents[2]
NAME = re.compile(r"PYLIGHTNIX_[A-Z0-9_]*[A-Z0-9]")


def _tables() -> List[Dict[str, List[str]]]:
    """The doc's tables, each as {variable: its other cells}."""
    tables: List[Dict[str, List[str]]] = []
    prev = ""
    for line in (REPO / "docs" / "settings.md").read_text().splitlines():
        if line.startswith("|") and not prev.startswith("|"):
            tables.append({})
        if line.startswith("| `PYLIGHTNIX_"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            tables[-1][cells[0].strip("`")] = cells[1:]
        prev = line
    return tables


def test_the_table_lists_exactly_the_settings_with_their_defaults():
    public, internal = _tables()
    assert set(public) == set(SETTINGS), set(public) ^ set(SETTINGS)
    for name, (default, accepts, _what) in public.items():
        assert (default, accepts) == (SETTINGS[name].default, SETTINGS[name].accepts), name
    assert all(cells[0] == "internal" for cells in internal.values())
    assert not set(internal) & set(SETTINGS)


def _identifiers(tree: ast.AST) -> Set[str]:
    """Python names (PYLIGHTNIX_PROMISE_TAG, PYLIGHTNIX_MANAGER...): not environment variables."""
    out: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.alias):
            out.add(node.asname or node.name)
    return out


def test_every_variable_in_the_sources_is_a_setting_or_internal():
    _public, internal = _tables()
    settings_text = (REPO / "pylightnix" / "settings.py").read_text()
    files = sorted((REPO / "pylightnix").rglob("*.py")) + sorted((REPO / "dap_adapter").rglob("*.py"))
    assert len(files) > 40
    unknown = {}
    for f in files:
        text = f.read_text()
        names = set(NAME.findall(text)) - _identifiers(ast.parse(text))
        for n in names - set(internal):
            if n not in settings_text:
                unknown[n] = f.relative_to(REPO)
    assert not unknown, f"PYLIGHTNIX_* names in no settings row nor internal row: {unknown}"
    # and the internal rows are the adapter's protocol constants, not invented names
    from dap_adapter.common import protocol
    assert set(internal) == {v for k, v in vars(protocol).items() if k.startswith("ENV_")} - set(SETTINGS)


def test_settings_py_reads_only_its_table():
    """Every variable settings.py reads is one of its table's rows."""
    text = (REPO / "pylightnix" / "settings.py").read_text()
    assert set(NAME.findall(text)) <= set(SETTINGS) | {"PYLIGHTNIX_"}
