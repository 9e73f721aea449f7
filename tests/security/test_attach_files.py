"""``pylightnix attach`` and ``--list`` against attach files they must not trust or cannot
read: planted by another user (uid 65534) in a shared folder, owned by another user,
FIFOs, links to /dev/zero, huge files, absurd pids. Each is refused with one line,
quickly, and nothing is sent to a planted hub."""
import json
import os
import subprocess
import sys
import time

import pytest

import hostile_peers
from pylightnix import AttachError, AttachInfoError, PylightnixError
from pylightnix.wire import attach_info
pytestmark = pytest.mark.timeout(120)
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user (uid 65534)")


def run_attach(d, *args, cells=""):
    env = dict(os.environ, PYLIGHTNIX_DEBUG_DIR=str(d))
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "pylightnix", "attach", *args], env=env, input=cells,
                       capture_output=True, text=True, timeout=60)
    return r, time.monotonic() - t0


def plant(d):
    """Another user's fake hub, with its attach file planted in ``d``."""
    hostile_peers.let_in(str(d))
    hub = hostile_peers.spawn("fakehub", d)
    path = hostile_peers.expect_line(hub, "PLANTED ").split(" ", 1)[1]
    return hub, path


@root_only
@pytest.mark.parametrize("folder", ["shared-1777", "another-users"])
def test_attach_refuses_a_folder_others_can_write(tmp_path, folder):
    d = tmp_path / "dbg"
    d.mkdir()
    if folder == "shared-1777":
        d.chmod(0o1777)  # like /tmp: ours, but anyone may add files
    else:
        os.chown(d, hostile_peers.NOBODY, hostile_peers.NOBODY)
        d.chmod(0o755)
    hub, path = plant(d)
    try:
        assert os.stat(path).st_uid == hostile_peers.NOBODY
        for args in (["--list"], ["abc123"], []):
            r, took = run_attach(d, *args, cells="print('secret cell')\n")
            assert r.returncode == 2, (args, r.stdout, r.stderr)
            why = "is writable by other users" if folder == "shared-1777" else "belongs to uid 65534"
            assert f"pylightnix: error: PYLIGHTNIX_DEBUG_DIR {d} {why}" in r.stderr
            assert "set PYLIGHTNIX_DEBUG_DIR to a directory" in r.stderr
            assert "Traceback" not in r.stderr and "abc123" not in r.stdout
    finally:
        got = hostile_peers.stop(hub)
    assert "GOT" not in got  # the planted hub never heard from us


@root_only
def test_attach_skips_a_file_of_another_user_in_a_private_folder(tmp_path):
    """Defence in depth: a private folder holding a file that is not ours (copied with
    its owner, say) is not trusted either."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    hub, planted = plant(shared)
    d = tmp_path / "dbg"
    d.mkdir(mode=0o700)
    path = d / os.path.basename(planted)
    path.write_text(open(planted).read())
    os.chown(path, hostile_peers.NOBODY, hostile_peers.NOBODY)
    try:
        r, _ = run_attach(d, "--list")
        assert r.returncode == 0 and "(no build is paused on a worker)" in r.stdout, r
        assert r.stderr.strip() == f"pylightnix attach: skipped attach file {path} belongs to uid 65534, " \
            f"not to you (uid 0); another user could plant or swap attach files there: set " \
            f"PYLIGHTNIX_DEBUG_DIR to a directory of your own"
        r, _ = run_attach(d, "abc123", cells="print('secret cell')\n")
        assert r.returncode == 2 and "no build is paused" in r.stderr and "belongs to uid 65534" in r.stderr, r
    finally:
        got = hostile_peers.stop(hub)
    assert "GOT" not in got


def _fifo(p):
    os.mkfifo(p)


def _dev_zero(p):
    os.symlink("/dev/zero", p)


def _huge_pid(p):
    p.write_text(json.dumps({"pid": 10 ** 30, "port": 1234, "host": "127.0.0.1", "secret": "s", "role": "hub"}))


def _huge_file(p):
    p.write_text('{"role": "hub", "pad": "' + "x" * (3 << 20) + '"}')


def _folder(p):
    p.mkdir()


def _bad_port(p):
    p.write_text(json.dumps({"pid": os.getpid(), "port": 10 ** 9, "secret": "s", "role": "hub"}))


def _not_json(p):
    p.write_text("[" * 100000)


BROKEN = {"fifo": (_fifo, "is not a regular file"), "dev-zero-link": (_dev_zero, "is a symbolic link"),
          "huge-pid": (_huge_pid, "pid must be a number from 1 to 4194304"),
          "huge-file": (_huge_file, "more than 1048576"), "folder": (_folder, "is not a regular file"),
          "bad-port": (_bad_port, "port must be a number from 1 to 65535"),
          "not-json": (_not_json, "is not valid JSON")}


@pytest.mark.parametrize("kind", sorted(BROKEN))
def test_a_broken_attach_file_is_one_line_within_10s(tmp_path, kind):
    make, why = BROKEN[kind]
    d = tmp_path / "dbg"
    d.mkdir(mode=0o700)
    path = d / "attach-4242.json"
    make(path)
    r, took = run_attach(d, "--list")
    assert took < 10 and r.returncode == 0, (took, r)
    assert "(no build is paused on a worker)" in r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pylightnix attach: skipped attach file {path}") \
        and why in lines[0], r.stderr
    r, took = run_attach(d)
    assert took < 10 and r.returncode == 2, (took, r)
    assert r.stderr.startswith("pylightnix: error: no build is paused") and why in r.stderr
    assert "Traceback" not in r.stderr


def test_the_errors_are_pylightnix_errors():
    assert issubclass(AttachInfoError, PylightnixError) and issubclass(AttachError, PylightnixError)
    from pylightnix import ChannelError, SpecialFileError, StoreError
    assert issubclass(ChannelError, PylightnixError) and issubclass(ChannelError, ConnectionError)
    assert issubclass(SpecialFileError, StoreError)
    assert attach_info.AttachInfoError is AttachInfoError


@root_only
def test_the_adapters_attach_follows_the_same_rules(tmp_path, monkeypatch):
    """An attach request finds the attach file by port (the debug folder's rule applies)
    or is given its path (the file's rules apply): a planted one is refused either way."""
    d = tmp_path / "dbg"
    d.mkdir()
    d.chmod(0o1777)
    hub, path = plant(d)
    try:
        port = int(os.path.basename(path)[len("attach-"):-len(".json")])
        monkeypatch.setenv("PYLIGHTNIX_DEBUG_DIR", str(d))
        with pytest.raises(AttachInfoError, match="is writable by other users"):
            attach_info.resolve({}, port)
        with pytest.raises(AttachInfoError, match="belongs to uid 65534"):
            attach_info.resolve({"pylightnixAttachFile": path}, port)
    finally:
        got = hostile_peers.stop(hub)
    assert "GOT" not in got
