"""The README stays true: its code blocks marked for testing run as written, in a
temporary HOME (so the default store ~/_pylightnix is a fresh one), right after
the set-up (`./dev demo`; `./dev test` is what runs this test).

Markers, on the line before a fenced block:

- ``<!-- test -->`` before a ``sh`` block: all such blocks run in order, in one
  ``bash -euo pipefail`` in the checkout; each command must succeed.
- ``<!-- test: ipython -->`` before a ``python`` block: typed into ``ipython``
  (after ``source .venv/bin/activate``). A line commented ``# SomeError: ...`` must
  raise that error, no other line may raise, and a line commented ``# True ...``
  must show ``True``.
- ``<!-- test: transcript -->`` before a plain block: what the ``sh`` block before it
  shows, run on a terminal (pexpect): the block's other lines are expected output
  (``…`` stands for anything), and each ``In [n]: `` line is typed at prompt n exactly
  as printed, comments included; no line may raise and the command must succeed.
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Dict, List, Tuple

import pexpect
import pytest

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
BLOCK = re.compile(r"^<!-- test(?::\s*(?P<kind>[\w-]+))? -->\n```(?P<lang>\w*)\n(?P<code>.*?)\n```", re.S | re.M)
ERROR_LINE = re.compile(r"^(\w+(?:Error|Exception|Cancelled)): ", re.M)
# docs written on other branches at the same time; the lead's merge brings them
PENDING_DOCS: set = set()  # docs other work may still add; none now


def marked_blocks() -> List[Tuple[str, str, str]]:
    """(kind, language, code) of every block marked for testing, in README order."""
    return [(m.group("kind") or "sh", m.group("lang"), m.group("code")) for m in BLOCK.finditer(README.read_text())]


def _env(home: Path) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYLIGHTNIX_") and k not in ("VIRTUAL_ENV", "PYTHONPATH", "IPYTHONDIR")}
    env.update(HOME=str(home), TERM="dumb")
    return env


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary HOME after the set-up: ``./dev demo`` has run there."""
    if not (REPO / ".venv" / "bin" / "python").exists():
        pytest.skip("the README's commands need the checkout's .venv: run ./dev test (it creates .venv)")
    h = tmp_path_factory.mktemp("home")
    p = subprocess.run(["./dev", "demo"], cwd=REPO, env=_env(h), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "source .venv/bin/activate" in p.stderr  # it tells how to reach the README's commands
    assert (h / "_pylightnix" / "store-v0").is_dir()
    return h


def test_readme_has_marked_blocks() -> None:
    kinds = [(k, lang) for k, lang, _ in marked_blocks()]
    assert ("sh", "sh") in kinds and ("ipython", "python") in kinds, kinds


def test_shell_blocks_run_as_written(home: Path) -> None:
    script = "\n".join(code for kind, lang, code in marked_blocks() if kind == "sh")
    p = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=REPO, env=_env(home), capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, f"README commands failed:\n{script}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}"
    assert "convnn_mnist" in p.stdout


@pytest.mark.parametrize("code", [c for k, _, c in marked_blocks() if k == "ipython"])
def test_ipython_blocks_run_as_written(home: Path, code: str) -> None:
    p = subprocess.run(["bash", "-c", "source .venv/bin/activate && ipython --no-banner --colors=NoColor"],
                       input=code + "\n\nexit\n", cwd=REPO, env=_env(home), capture_output=True, text=True,
                       timeout=600)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    expected = [m.group(1) for line in code.splitlines() for m in [re.search(r"#\s*(\w+Error):", line)] if m]
    assert ERROR_LINE.findall(out) == expected, out
    trues = sum(1 for line in code.splitlines() if re.search(r"#\s*True\b", line))
    assert len(re.findall(r"Out\[\d+\]: True\b", out)) == trues, out


def transcripts() -> List[Tuple[str, str]]:
    """(command, transcript) of every block marked ``transcript``: the command is the
    last line of the ``sh`` block before it."""
    text = README.read_text()
    out = []
    for m in BLOCK.finditer(text):
        if m.group("kind") == "transcript":
            shells = re.findall(r"^```sh\n(.*?)\n```", text[:m.start()], re.S | re.M)
            out.append((shells[-1].splitlines()[-1], m.group("code")))
    return out


@pytest.mark.parametrize("command,transcript", transcripts())
def test_transcripts_type_as_printed(home: Path, command: str, transcript: str) -> None:
    child = pexpect.spawn("bash", ["-c", f"source .venv/bin/activate && {command}"], cwd=str(REPO),
                          env=_env(home), encoding="utf-8", timeout=120, dimensions=(50, 200))
    typed = []
    try:
        for line in transcript.splitlines():
            prompt = re.match(r"(In \[\d+\]: )(.*)", line)
            if prompt:
                child.expect_exact(prompt.group(1))
                assert not re.search(r"Error\b|Traceback", child.before), (typed, child.before)
                child.sendline(prompt.group(2))
                typed.append(prompt.group(2))
            elif line.strip() != "…":  # expected output; … is anything
                child.expect(r"\s*".join(re.escape(part).replace("…", ".*?") for part in line.split()))
        more = child.expect([pexpect.EOF, r"In \[\d+\]: "])  # a prompt again: the last line did not end it
        assert more == 0, (typed, child.before)
    finally:
        child.close(force=True)
    assert not re.search(r"Error\b|Traceback", child.before), (typed, child.before)
    assert child.exitstatus == 0, child.before
    assert typed and typed[-1].startswith("exit ") and "#" in typed[-1]  # typed as printed, comment included


def test_every_link_of_the_readme_and_docs_resolves() -> None:
    """Everything is one click away from the README, and no link is dead."""
    pages = [README] + sorted((REPO / "docs").glob("*.md"))
    missing = []
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"\w+:", target):
                continue  # http(s), mailto
            path = (page.parent / target).resolve()
            rel = os.path.relpath(path, REPO)
            if not path.exists() and rel not in PENDING_DOCS:
                missing.append(f"{page.name}: {target}")
    assert not missing, missing
    linked = set(re.findall(r"\]\((docs/[\w-]+\.md)", README.read_text()))
    on_disk = {f"docs/{p.name}" for p in (REPO / "docs").glob("*.md")}
    assert on_disk <= linked, f"docs not linked from the README: {sorted(on_disk - linked)}"
