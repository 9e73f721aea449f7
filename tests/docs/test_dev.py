"""`./dev` says which prerequisite of `./dev test` is missing, before it runs anything,
`./dev shell CMD` runs CMD with .venv activated, and `./dev vsix` builds and installs the
VS Code extension."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def _code_server() -> Path:
    cache = Path(os.environ.get("PYLIGHTNIX_DEV_CACHE", Path.home() / ".cache" / "pylightnix-dev"))
    return cache / "vscode" / "code-server" / "node_modules" / ".bin" / "code-server"


@pytest.mark.timeout(1500)  # packages the extension twice: minutes on a loaded machine
def test_dev_vsix_builds_the_extension_and_installs_it_or_says_how(tmp_path: Path) -> None:
    """The two steps of docs/vscode-install.md: `./dev vsix` builds the .vsix and, with neither
    `code` nor `code-server` on PATH, prints the `code --install-extension` line, which, run as
    printed, installs it; with `code-server` on PATH (the real one tests/vscode/setup.sh
    installs) it installs the extension itself."""
    server = _code_server()
    if not shutil.which("npm") or not server.exists():
        pytest.skip("needs npm and code-server: run bash tests/vscode/setup.sh (./dev test does)")
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                           if not any(os.path.exists(os.path.join(d, c)) for c in ("code", "code-server")))
    env = dict(os.environ, PATH=path, XDG_DATA_HOME=str(tmp_path / "data"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    out = tmp_path / "ext" / "pylightnix.vsix"
    p = subprocess.run([str(REPO / "dev"), "vsix", str(out)], env=env, capture_output=True, text=True,
                       timeout=1200)
    assert p.returncode == 0, p.stderr[-3000:]
    assert out.is_file() and p.stdout.splitlines()[-1] == f"code --install-extension {out}", p.stdout
    editor = tmp_path / "bin"
    editor.mkdir()
    os.symlink(server, editor / "code")  # what a user with VS Code has; code-server takes the same options
    with_code = dict(env, PATH=f"{editor}{os.pathsep}{path}")

    def installed() -> str:
        return subprocess.run([str(server), "--list-extensions"], env=with_code, capture_output=True, text=True,
                              timeout=120).stdout

    assert "pylightnix.pylightnix-debug" not in installed()
    subprocess.run(["bash", "-c", p.stdout.splitlines()[-1]], env=with_code, check=True, capture_output=True,
                   timeout=300)
    assert "pylightnix.pylightnix-debug" in installed()
    # with code-server on PATH, ./dev vsix installs what it built
    shutil.rmtree(tmp_path / "data")
    os.unlink(editor / "code")
    os.symlink(server, editor / "code-server")
    out.unlink()
    p = subprocess.run([str(REPO / "dev"), "vsix", str(out)], env=with_code, capture_output=True, text=True,
                       timeout=1200)
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"installed {out} with code-server" in p.stderr and "--install-extension" not in p.stdout, p.stderr
    assert "pylightnix.pylightnix-debug" in installed()


def test_dev_shell_prompt_shows_the_venv(tmp_path: Path) -> None:
    """`./dev shell` opens an interactive bash whose prompt starts with (.venv), after the
    user's own ~/.bashrc, with the venv's python first on PATH."""
    import pexpect
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("PS1='mine$ '\nexport FROM_BASHRC=yes\n")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PS1")}
    env.update(HOME=str(home), SHELL=shutil.which("bash"), TERM="dumb")
    child = pexpect.spawn(str(REPO / "dev"), ["shell"], env=env, cwd=str(tmp_path), encoding="utf-8", timeout=600)
    try:
        child.expect_exact("(.venv) mine$ ")
        child.sendline('echo "$FROM_BASHRC $(command -v python)"')
        child.expect_exact(f"yes {REPO}/.venv/bin/python")
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
