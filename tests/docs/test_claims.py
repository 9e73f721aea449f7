"""Sentences of the README checked against the program (the ones no code block shows)."""
from os.path import join

from pylightnix import (build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv, realize,
                        repl_continue, repl_realize)

CALLS = []


def counted(m):
    def build(b):
        CALLS.append(1)
        with open(join(build_outpath(b), "out.txt"), "w") as f:
            f.write("built")
    return mkdrv(m, mkconfig({"name": "counted"}), match_only(), build_wrapper(build))


def test_repl_continue_on_a_cached_stage_returns_it_and_builds_nothing(store):
    """README: `repl_continue()` without outputs does what `realize` would: it returns the cached
    realization if there is one, and runs the stage's realizer otherwise."""
    CALLS.clear()
    repl_realize(instantiate(counted))
    first = repl_continue()
    assert CALLS == [1]
    repl_realize(instantiate(counted))  # pauses although the stage is cached
    assert repl_continue() == first == realize(instantiate(counted))
    assert CALLS == [1]


def test_vscode_install_names_the_wheels_dependencies():
    """docs/vscode-install.md: the row of `pylightnix-breakpoints` names exactly the
    dependencies of pyproject.toml (what pip fetches with the extension's wheel)."""
    import re
    from pathlib import Path
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import pytest
        tomllib = pytest.importorskip("tomli")
    repo = Path(__file__).resolve().parents[2]
    deps = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    wanted = {re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower() for d in deps}
    row = next(line for line in (repo / "docs" / "vscode-install.md").read_text().splitlines()
               if line.startswith("| `pylightnix-breakpoints` |"))
    named = {n.lower() for n in re.findall(r"`([\w.-]+)`", row.split("|")[2])}
    assert named == wanted, (row, wanted)
