"""The original's console helpers: ``shell`` opens $SHELL on a terminal and prints
the command elsewhere; the bashlike helpers are in the pause consoles' namespaces;
``repl_continue`` keeps 0.1.0's positional ``out_rrefs`` as well."""
import os
import subprocess
import sys
import textwrap

import pexpect
import pytest

from compat_support import REPO
from pylightnix import instantiate, mkfile, Name, realize, repl_cancel, repl_continue, repl_realize, repl_rref

SCRIPT = textwrap.dedent("""
    import os
    from pylightnix import *
    store_initialize()
    rref = realize(instantiate(mkfile, Name('x'), b'1'))
    print('FOLDER=' + rref2path(rref), flush=True)
    shell(rref)
    print('SHELL-DONE', flush=True)
""")


def _env(store):
    return dict(os.environ, PYLIGHTNIX_ROOT=store, PYTHONPATH=REPO, SHELL="/bin/sh", PS1="sh$ ")


def test_shell_without_a_terminal_prints_the_command(store):
    p = subprocess.run([sys.executable, "-c", SCRIPT], env=_env(store), stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    folder = p.stdout.split("FOLDER=")[1].split()[0]
    assert f"cd {folder} && /bin/sh" in p.stdout
    assert "SHELL-DONE" in p.stdout


def test_shell_on_a_terminal_opens_the_shell_in_the_realization(store):
    child = pexpect.spawn(sys.executable, ["-c", SCRIPT], env=_env(store), encoding="utf-8", timeout=60)
    try:
        child.expect(r"FOLDER=(\S+)")
        folder = os.path.realpath(child.match.group(1))
        child.expect_exact("sh$ ")
        child.sendline("pwd -P; echo in-$((40+2))")
        child.expect_exact(folder)
        child.expect_exact("in-42")
        child.sendline("exit")
        child.expect_exact("SHELL-DONE")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_bashlike_helpers_are_in_the_pause_consoles(store):
    from pylightnix.frontends.terminal import pause_namespace
    from dap_adapter.debuggee import console
    rh = repl_realize(instantiate(mkfile, Name("x"), b"1"), force_interrupt=True)
    try:
        names = ("lsref", "catref", "rmref", "shell", "shellref", "du")
        ns = pause_namespace(rh.pause)
        dap_ns = console._helpers(console.shell())
        import pylightnix.bashlike as bashlike
        for n in names:
            assert ns[n] is getattr(bashlike, n)
            assert dap_ns[n] is getattr(bashlike, n)
    finally:
        repl_cancel()


def test_repl_continue_keeps_0_1_0_positional_out_rrefs(store):
    """0.1.0 put ``out_rrefs`` second; a list there still means realizations to adopt."""
    existing = realize(instantiate(mkfile, Name("y"), b"2"))
    rh = repl_realize(instantiate(mkfile, Name("y"), b"2"), force_interrupt=True)
    assert repl_continue(None, [existing]) == existing
    assert repl_rref(rh) == existing


def test_repl_continue_refuses_a_wrong_rh(store):
    repl_realize(instantiate(mkfile, Name("z"), b"3"), force_interrupt=True)
    try:
        with pytest.raises(AssertionError, match="rh: expected a ReplHelper"):
            repl_continue(None, None, "not a helper")
    finally:
        repl_cancel()
