"""fetchurl must never let an archive write, link or point outside its output folder
(issue 8, 1.1). Real tar and zip files are built here and served by a real HTTP server."""
import hashlib
import io
import os
import stat
import tarfile
import zipfile
from os.path import join

import pytest

from pylightnix import UnsafeArchiveError, fetchurl, instantiate, realize, rref2path, store_rrefs_


@pytest.fixture
def serve(http_dir):
    """Serve bytes over HTTP on 127.0.0.1: ``url = serve(name, data)``."""
    www, base = http_dir

    def put(name, data):
        (www / name).write_bytes(data)
        return f"{base}/{name}"
    return put


def tar_of(*members):
    """A tar from ('file', name, data) / ('sym', name, target) / ('hard', name, target) / ('fifo', name)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for kind, name, *rest in members:
            ti = tarfile.TarInfo(name)
            ti.mode = 0o644
            if kind == "file":
                ti.size = len(rest[0])
                t.addfile(ti, io.BytesIO(rest[0]))
                continue
            ti.type = {"sym": tarfile.SYMTYPE, "hard": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE,
                       "dir": tarfile.DIRTYPE}[kind]
            if rest:
                ti.linkname = rest[0]
            t.addfile(ti)
    return buf.getvalue()


def fetch(serve, data, name="arc"):
    clo = instantiate(fetchurl, url=serve(f"{name}.tar", data), sha256=hashlib.sha256(data).hexdigest(), name=name)
    return clo, realize(clo)


def test_symlink_chain_cannot_write_outside(store, serve, tmp_path):
    n = 4  # '..' from a build's output folder (root/tmp/<area>/<out>) up to tmp_path
    chain = "/".join(["b"] * n)
    data = tar_of(("sym", "b", "."), ("sym", f"{chain}/esc", "/".join([".."] * n)),
                  ("file", "esc/PWNED", b"escaped"))
    with pytest.raises(UnsafeArchiveError, match="link"):
        fetch(serve, data)
    assert not (tmp_path / "PWNED").exists()
    assert not list(tmp_path.rglob("PWNED"))


def test_symlink_chain_cannot_hard_link_an_outside_file(store, serve, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    victim.chmod(0o640)
    n = 4  # '..' from a build's output folder (root/tmp/<area>/<out>) up to tmp_path
    chain = "/".join(["b"] * n)
    data = tar_of(("sym", "b", "."), ("sym", f"{chain}/esc", "/".join([".."] * n)),
                  ("hard", "stolen", "esc/victim.txt"))
    with pytest.raises(UnsafeArchiveError):
        fetch(serve, data)
    st = os.stat(victim)
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_nlink == 1


def test_a_later_link_cannot_turn_an_earlier_one_outward(store, serve):
    # 'a -> d/..' stays inside while d does not exist; 'd -> .' then makes a point above the folder
    data = tar_of(("sym", "a", "d/.."), ("sym", "d", "."))
    with pytest.raises(UnsafeArchiveError, match="'a'.*outside"):
        fetch(serve, data)


def test_hard_link_to_a_path_not_in_the_archive_is_refused(store, serve, tmp_path):
    data = tar_of(("file", "x", b"x"), ("hard", "h", "../../../../victim"))
    with pytest.raises(UnsafeArchiveError):
        fetch(serve, data)
    data = tar_of(("hard", "h", "later"), ("file", "later", b"x"))
    with pytest.raises(UnsafeArchiveError, match="stored earlier"):
        fetch(serve, data, name="arc2")


def test_special_members_are_refused(store, serve):
    with pytest.raises(UnsafeArchiveError, match="fifo"):
        fetch(serve, tar_of(("fifo", "pipe")))


def test_ordinary_links_inside_the_archive_still_work(store, serve):
    data = tar_of(("dir", "./"), ("dir", "pkg"), ("file", "pkg/lib.so.1", b"ELF"), ("sym", "pkg/lib.so", "lib.so.1"),
                  ("dir", "pkg/sub"), ("sym", "pkg/sub/up", "../lib.so.1"), ("hard", "pkg/copy", "pkg/lib.so.1"),
                  ("sym", "pkg/chain", "sub/up"))
    _, rref = fetch(serve, data)
    p = rref2path(rref)
    assert open(join(p, "pkg", "chain")).read() == "ELF"
    assert open(join(p, "pkg", "copy")).read() == "ELF"
    assert os.readlink(join(p, "pkg", "lib.so")) == "lib.so.1"


def test_zip_member_with_dotdot_is_refused(store, serve, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("../../../../evil.txt", "x")
    data = buf.getvalue()
    clo = instantiate(fetchurl, url=serve("e.zip", data), sha256=hashlib.sha256(data).hexdigest(), name="e")
    with pytest.raises(UnsafeArchiveError):
        realize(clo)
    assert store_rrefs_(clo.dref) == [] and not list(tmp_path.rglob("evil.txt"))
