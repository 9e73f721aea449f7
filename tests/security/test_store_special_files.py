"""FIFOs, sockets and hard links in a build's output (issue 8, section 2): commit refuses
special files with a BuildError naming them, verify reports planted ones instead of hanging or
crashing, and sealing never chmods an inode that also has a name outside the store."""
import os
import socket
import stat
import subprocess
import sys
from os.path import join

import pytest

from pylightnix import (BuildError, build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv, realize,
                        rref2path, store_rrefs_)


def stage(m, name, make):
    """A one-output stage whose realizer calls ``make(output_folder)``."""
    return mkdrv(m, mkconfig({"name": name}), match_only(), build_wrapper(lambda b: make(build_outpath(b))))


def unix_socket(path):
    """A socket file at ``path`` (bound by a relative name: AF_UNIX paths are limited to 108 bytes)."""
    cwd = os.getcwd()
    os.chdir(os.path.dirname(path))
    try:
        s = socket.socket(socket.AF_UNIX)
        s.bind(os.path.basename(path))
        s.close()  # the socket file stays
    finally:
        os.chdir(cwd)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_special_file_in_output_is_a_build_error(store, kind):
    def make(o):
        os.makedirs(join(o, "sub"))
        with open(join(o, "ok.txt"), "w") as f:
            f.write("ok")
        (os.mkfifo if kind == "fifo" else unix_socket)(join(o, "sub", "special"))
    clo = instantiate(stage, f"with_{kind}", make)
    with pytest.raises(BuildError, match=r"'sub/special' is a (FIFO|socket)") as e:
        realize(clo)
    assert e.value.dref == clo.dref
    assert store_rrefs_(clo.dref) == [] and os.listdir(join(store, "tmp")) == []


def cli(root, *args):
    env = dict(os.environ, PYLIGHTNIX_ROOT=root, PYLIGHTNIX_PROGRESS="0")
    return subprocess.run([sys.executable, "-m", "pylightnix", *args], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("kind", ["fifo", "socket"])
def test_verify_reports_a_planted_special_file(store, kind):
    rref = realize(instantiate(stage, "plain", lambda o: open(join(o, "a.txt"), "w").close()))
    (os.mkfifo if kind == "fifo" else unix_socket)(join(rref2path(rref), "planted"))
    v = cli(store, "verify")  # used to hang on a FIFO and crash on a socket
    assert v.returncode == 1, v.stderr
    assert f"{rref}: 'planted' is a {'FIFO' if kind == 'fifo' else 'socket'}" in v.stdout
    assert "Traceback" not in v.stderr


def test_sealing_never_chmods_a_hard_linked_outside_file(store, tmp_path):
    mine = tmp_path / "users-own-file.txt"
    mine.write_text("precious")
    mine.chmod(0o640)
    before = os.stat(mine)
    rref = realize(instantiate(stage, "linker", lambda o: os.link(mine, join(o, "data.txt"))))
    after = os.stat(mine)
    assert stat.S_IMODE(after.st_mode) == 0o640 and after.st_nlink == 1 and after.st_ino == before.st_ino
    stored = os.stat(join(rref2path(rref), "data.txt"))
    assert stored.st_ino != before.st_ino and stat.S_IMODE(stored.st_mode) == 0o444
    assert open(join(rref2path(rref), "data.txt")).read() == "precious" and mine.read_text() == "precious"
    assert cli(store, "verify").returncode == 0


def test_hard_links_inside_one_output_are_sealed_as_copies(store):
    def make(o):
        with open(join(o, "a"), "w") as f:
            f.write("same")
        os.link(join(o, "a"), join(o, "b"))
    p = rref2path(realize(instantiate(stage, "twins", make)))
    a, b = os.stat(join(p, "a")), os.stat(join(p, "b"))
    assert a.st_ino != b.st_ino and a.st_nlink == b.st_nlink == 1 and open(join(p, "b")).read() == "same"


def test_verify_and_ls_report_a_planted_special_config(store):
    rref = realize(instantiate(stage, "cfg", lambda o: open(join(o, "a.txt"), "w").close()))
    ddir = os.path.dirname(rref2path(rref))
    os.remove(join(ddir, "config.json"))
    os.mkfifo(join(ddir, "config.json"))
    v = cli(store, "verify")  # reading the FIFO would hang
    assert v.returncode == 1 and "config.json is not a regular file" in v.stdout, v.stderr
    assert cli(store, "ls").returncode == 0
