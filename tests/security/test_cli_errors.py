"""Errors users see from the CLI (issue 8, section 2): a store path that is a file is a
`pylightnix: error: ...` line, and read-only commands never create a store."""
import os
import subprocess
import sys

import pytest

RREF = "rref:" + "a" * 32 + "-" + "b" * 32 + "-x"
COMMANDS = [["ls"], ["ls", "--json"], ["show", RREF], ["verify"], ["gc"], ["gc", "--dry-run"],
            ["gc", "--keep", RREF, "--dry-run"]]


def cli(*args, root=None):
    env = dict(os.environ, PYLIGHTNIX_PROGRESS="0")
    env.pop("PYLIGHTNIX_STORE", None)
    env.pop("PYLIGHTNIX_TMP", None)
    if root is not None:
        env["PYLIGHTNIX_ROOT"] = root
    return subprocess.run([sys.executable, "-m", "pylightnix", *args], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_root_that_is_a_file_is_a_clear_error(tmp_path, args):
    f = tmp_path / "not-a-folder"
    f.write_text("")
    r = cli(*args, root=str(f))
    assert r.returncode == 2 and r.stderr.startswith("pylightnix: error:"), r.stderr
    assert "Traceback" not in r.stderr and str(f) in r.stderr


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_commands_on_a_missing_store_create_nothing(tmp_path, args):
    missing = tmp_path / "missing"
    r = cli("--root", str(missing), *args)
    assert not missing.exists()
    assert "Traceback" not in r.stderr
    if args[0] == "show":
        assert r.returncode == 2 and "no store" in r.stderr
    else:
        assert r.returncode == 0 and ("no store" in r.stdout or r.stdout.strip() == "[]"), (r.stdout, r.stderr)


def test_a_script_with_a_root_that_is_a_file_gets_a_store_error(tmp_path):
    f = tmp_path / "not-a-folder"
    f.write_text("")
    env = dict(os.environ, PYLIGHTNIX_ROOT=str(f))
    r = subprocess.run([sys.executable, "-c", "import pylightnix\ntry:\n    pylightnix.store_initialize()\n"
                        "except pylightnix.StoreError as e:\n    print('StoreError', e)"],
                       env=env, capture_output=True, text=True, timeout=60)
    assert "\nStoreError cannot create the store" in r.stdout and "PYLIGHTNIX_ROOT" in r.stdout, r.stderr
