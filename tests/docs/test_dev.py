"""`./dev` says which prerequisite of `./dev test` is missing, before it runs anything,
and `./dev shell CMD` runs CMD with .venv activated."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _fake_bin(d: Path, name: str, body: str) -> None:
    p = d / name
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(0o755)


def _dev_copy(tmp: Path) -> Path:
    """A copy of ./dev beside an already set-up venv (so it installs nothing)."""
    work = tmp / "repo"
    (work / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(REPO / "dev", work / "dev")
    (work / "pyproject.toml").write_text("")
    os.symlink(sys.executable, work / ".venv" / "bin" / "python")
    time.sleep(0.01)
    (work / ".venv" / ".installed-test").write_text("")
    return work


def test_dev_test_names_missing_node_and_root(tmp_path: Path) -> None:
    work, fake = _dev_copy(tmp_path), tmp_path / "bin"
    fake.mkdir()
    _fake_bin(fake, "node", '[ "$1" = "-p" ] && echo 18 || echo v18.19.0')
    _fake_bin(fake, "npm", "exit 0")
    _fake_bin(fake, "id", "echo 1000")
    _fake_bin(fake, "sudo", "exit 1")
    _fake_bin(fake, "dpkg-query", "exit 1")
    _fake_bin(fake, "apt-get", "exit 1")
    env = dict(os.environ, PATH=f"{fake}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYLIGHTNIX_SKIP_VSCODE", None)
    p = subprocess.run(["bash", str(work / "dev"), "test"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 1, p.stderr
    assert "Node >= 20 with npm (found Node v18.19.0)" in p.stderr
    assert "root or sudo, to run apt-get install chromium ripgrep" in p.stderr
    assert "PYLIGHTNIX_SKIP_VSCODE=1 ./dev test" in p.stderr
    # without node at all: a PATH with only what ./dev itself uses
    (fake / "node").unlink()
    for tool in ("dirname", "grep", "touch", "cat"):
        os.symlink(shutil.which(tool), fake / tool)
    os.symlink(sys.executable, fake / "python3")
    p = subprocess.run([shutil.which("bash"), str(work / "dev"), "test"], env=dict(env, PATH=str(fake)),
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "Node >= 20 with npm (not found on PATH)" in p.stderr, p.stderr


def test_dev_shell_runs_a_command_in_the_venv(tmp_path: Path) -> None:
    p = subprocess.run([str(REPO / "dev"), "shell", "pylightnix", "--help"], capture_output=True, text=True,
                       timeout=600, env=dict(os.environ, PYLIGHTNIX_ROOT=str(tmp_path)))
    assert p.returncode == 0 and p.stdout.startswith("usage: pylightnix [-h]"), p.stderr
