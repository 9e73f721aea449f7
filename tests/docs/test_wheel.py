"""A user without the checkout: the wheel builds without setuptools warnings, and the
installed package runs the demo (`python -m pylightnix.demo`) and the `pylightnix` CLI
from anywhere, with no file of the checkout on the path."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # a copy: building writes build/ and *.egg-info beside the sources
    shutil.copytree(REPO, src, ignore=shutil.ignore_patterns(".git", ".venv*", "bench", "tests", "build", "dist",
                                                              "*.egg-info", "node_modules", "__pycache__"))
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp / "dist"),
                            str(src)], capture_output=True, text=True, timeout=600, cwd=tmp)
    assert build.returncode == 0, build.stdout + build.stderr
    out = build.stdout + build.stderr
    assert "Deprecat" not in out and "deprecat" not in out, out  # e.g. `project.license` as a TOML table
    return next((tmp / "dist").glob("*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path) -> Path:
    """The wheel installed (without dependencies: the running interpreter has them) into a folder."""
    site = wheel.parent.parent / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    str(wheel)], check=True, capture_output=True, text=True, timeout=300)
    return site


def test_installed_package_runs_the_demo_and_the_cli(installed: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYLIGHTNIX_")}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(installed), PYTHONSAFEPATH="1")
    where = subprocess.run([sys.executable, "-c", "import pylightnix.demo as d; print(d.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    assert where.startswith(str(installed)), where  # the wheel's copy, not the checkout's
    first = subprocess.run([sys.executable, "-m", "pylightnix.demo"], env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    assert first.returncode == 0, first.stdout + first.stderr
    rref = [l for l in first.stdout.splitlines() if l.startswith("rref:")]
    assert rref and rref[0].endswith("-convnn_mnist")
    assert "[pylightnix] building convnn_mnist" in first.stderr
    assert (tmp_path / "_pylightnix" / "store-v0").is_dir()  # the default store, in HOME
    again = subprocess.run([sys.executable, "-m", "pylightnix.demo"], env=env, cwd=tmp_path, capture_output=True,
                           text=True, timeout=300, check=True)
    assert rref[0] in again.stdout and "building" not in again.stderr
    ls = subprocess.run([sys.executable, "-m", "pylightnix", "show", "convnn_mnist"], env=env, cwd=tmp_path,
                        capture_output=True, text=True, check=True).stdout
    assert rref[0] in ls
    broken = subprocess.run([sys.executable, "-m", "pylightnix.demo", "--broken"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert broken.returncode == 1 and "AttributeError: 'Sequential' object has no attribute 'load'" in broken.stderr


def test_wheel_ships_the_adapter_by_role_and_the_listen_entry_point(installed: Path, tmp_path: Path) -> None:
    """The adapter's subpackages are in the wheel, and ``pylightnix debug --listen`` finds the
    debugger through the wheel's entry point (the core never imports dap_adapter by name)."""
    for module in ("adapter/__main__.py", "adapter/session.py", "common/protocol.py", "debuggee/__main__.py",
                   "debuggee/attach.py", "testing.py"):
        assert (installed / "dap_adapter" / module).is_file(), module
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYLIGHTNIX_")}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(installed), PYTHONSAFEPATH="1")
    code = ("import importlib.metadata as m, pylightnix.frontends.debug as d; "
            "[ep] = [e for e in m.entry_points(group=d.ENTRY_POINT_GROUP) if e.name == 'listen']; "
            "print(ep.load().__module__, ep.load().__code__.co_filename)")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "dap_adapter.debuggee.attach" and out[1].startswith(str(installed)), out


def test_the_missing_numpy_hint_works_where_it_is_printed(wheel: Path, tmp_path: Path) -> None:
    """The wheel installed in a fresh venv without the demo extra: ``python -m pylightnix.demo``
    names a command, which, typed as printed outside the checkout, makes the demo run."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PYLIGHTNIX_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env.update(HOME=str(tmp_path), PYTHONSAFEPATH="1")
    pip = subprocess.run([py, "-m", "pip", "install", "-q", str(wheel)], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=600)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    first = subprocess.run([py, "-m", "pylightnix.demo"], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=300)
    assert first.returncode != 0 and "needs numpy" in first.stderr, first.stdout + first.stderr
    hint = first.stderr.strip().split("install it with: ", 1)[1]
    assert "-e" not in hint.split() and "checkout" not in hint, hint
    fix = subprocess.run(["bash", "-c", hint], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert fix.returncode == 0, fix.stdout + fix.stderr
    demo = subprocess.run([py, "-m", "pylightnix.demo"], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert demo.returncode == 0 and "-convnn_mnist" in demo.stdout, demo.stdout + demo.stderr
