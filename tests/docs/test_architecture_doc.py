"""docs/architecture.md names the code a newcomer is sent to read: every module, file and
folder it cites must exist where it says, so a move that forgets the page fails here."""
from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from typing import List, Set

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "architecture.md"
PACKAGES = ("pylightnix", "dap_adapter")


def _code_spans(text: str) -> List[str]:
    """The backticked spans of the page, and the words of its fenced pictures."""
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        if "import " in block:  # a code example, checked by running it elsewhere
            continue
        spans += re.findall(r"[\w./]+\.py\b|\b(?:pylightnix|dap_adapter)/[\w./]+", block)
    return spans


def _files() -> Set[str]:
    return {str(p.relative_to(REPO)) for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}


def cited_paths(text: str) -> List[str]:
    """``x.py``, ``folder/x.py`` and ``pylightnix/...`` paths the page cites."""
    out = []
    for span in _code_spans(text):
        for word in re.findall(r"[\w./]+", span):
            if word.endswith(".py") or re.match(r"(pylightnix|dap_adapter)/", word):
                out.append(word.rstrip("/."))
    return out


def missing_paths(text: str) -> List[str]:
    files = _files()
    missing = []
    for path in cited_paths(text):
        if (REPO / path).exists():
            continue
        if "/" in path and path.split("/")[0] not in ("adapter", "common", "debuggee") + tuple(
                p.name for p in (REPO / "pylightnix").iterdir() if p.is_dir()):
            missing.append(path)  # a path from the repository's root (bench/..., pylightnix/...)
        elif not any(f == path or f.endswith("/" + path) for f in files):
            missing.append(path)
    return missing


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        name = ".".join(parts[:i])
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is None:
            continue
        obj = importlib.import_module(name)
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def missing_dotted(text: str) -> List[str]:
    """``pylightnix.x.y`` names (modules, names in them, or our entry-point groups) that do
    not resolve."""
    names = {m.rstrip(".") for span in _code_spans(text)
             for m in re.findall(r"\b(?:pylightnix|dap_adapter)(?:\.\w+)+", span)}
    groups = set(re.findall(r'^\[project\.entry-points\."([\w.]+)"\]', (REPO / "pyproject.toml").read_text(),
                            flags=re.M))
    return sorted(n for n in names if n not in groups and not _resolves(n))


def missing_in_table(text: str) -> List[str]:
    """The role table: each row's folder holds each module the row lists."""
    missing = []
    for folder, modules in re.findall(r"^\| `(\w+)/` \|[^|]*\| (.*) \|$", text, flags=re.M):
        for module in re.findall(r"`(\w+)`", modules):
            if not (REPO / "pylightnix" / folder / f"{module}.py").exists():
                missing.append(f"pylightnix/{folder}/{module}.py")
    return missing


def test_every_cited_module_exists() -> None:
    text = DOC.read_text()
    assert len(cited_paths(text)) > 25, "the page cites code; the scan found too little to trust"
    assert missing_paths(text) == []
    assert missing_dotted(text) == []


def test_the_role_table_matches_the_folders() -> None:
    text = DOC.read_text()
    assert len(re.findall(r"^\| `\w+/` \|", text, flags=re.M)) >= 5
    assert missing_in_table(text) == []
    listed = {(f, m) for f, mods in re.findall(r"^\| `(\w+)/` \|[^|]*\| (.*) \|$", text, flags=re.M)
              for m in re.findall(r"`(\w+)`", mods)}
    for folder in {f for f, _ in listed}:
        on_disk = {p.stem for p in (REPO / "pylightnix" / folder).glob("*.py") if p.stem != "__init__"}
        assert on_disk == {m for f, m in listed if f == folder}, f"pylightnix/{folder}/ and its row differ"


def test_the_checks_catch_a_stale_page() -> None:
    """The scan itself: a moved module and a stale table row are reported."""
    stale = ("See `scheduler.py` and `pylightnix/remote.py`, and `pylightnix.scale.nothing`.\n"
             "| `scale/` | builds | `executors`, `scheduler` |\n")
    assert missing_paths(stale) == ["scheduler.py", "pylightnix/remote.py"]
    assert missing_dotted(stale) == ["pylightnix.scale.nothing"]
    assert missing_in_table(stale) == ["pylightnix/scale/scheduler.py"]
