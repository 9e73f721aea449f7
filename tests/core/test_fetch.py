"""fetchurl against a real HTTP server on 127.0.0.1, and file: URLs."""
import hashlib
import io
import os
import tarfile
import zipfile
from os.path import join

import pytest

from pylightnix import *
from pylightnix import ChecksumError, ConfigError, FetchError, UnsafeArchiveError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tar_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_http_as_is(store, http_dir):
    www, url = http_dir
    data = os.urandom(3000)
    (www / "blob.bin").write_bytes(data)
    rref = realize(instantiate(fetchurl, url=f"{url}/blob.bin", sha256=sha(data), mode="as-is", name="blob"))
    assert open(join(rref2path(rref), "blob.bin"), "rb").read() == data


def test_http_unpack_tar_and_zip(store, http_dir):
    www, url = http_dir
    tb = tar_bytes([("pkg/a.txt", b"A"), ("pkg/sub/b.txt", b"B")])
    (www / "pkg.tar.gz").write_bytes(tb)
    r = realize(instantiate(fetchurl, url=f"{url}/pkg.tar.gz", sha256=sha(tb), name="pkg"))
    assert open(join(rref2path(r), "pkg", "sub", "b.txt")).read() == "B"
    assert not os.path.exists(join(rref2path(r), "pkg.tar.gz"))
    zb = io.BytesIO()
    with zipfile.ZipFile(zb, "w") as z:
        z.writestr("z/c.txt", "C")
    (www / "z.zip").write_bytes(zb.getvalue())
    r = realize(instantiate(fetchurl, url=f"{url}/z.zip", sha256=sha(zb.getvalue()), mode="unpack", name="z"))
    assert open(join(rref2path(r), "z", "c.txt")).read() == "C"
    assert os.path.exists(join(rref2path(r), "z.zip"))  # 'unpack' without 'remove' keeps the archive


def test_checksum_mismatch_stores_nothing(store, http_dir):
    www, url = http_dir
    (www / "f").write_bytes(b"actual")
    clo = instantiate(fetchurl, url=f"{url}/f", sha256=sha(b"expected"), mode="as-is", name="f")
    with pytest.raises(ChecksumError, match=r"expected [0-9a-f]{64}, got " + sha(b"actual")):
        realize(clo)
    assert store_rrefs_(clo.dref) == [] and os.listdir(join(store, "tmp")) == []


def test_missing_file_is_a_fetch_error(store, http_dir):
    www, url = http_dir
    with pytest.raises(FetchError, match="404"):
        realize(instantiate(fetchurl, url=f"{url}/nope", sha256=sha(b""), mode="as-is", name="nope"))


def test_unsafe_archive_is_refused(store, http_dir, tmp_path):
    www, url = http_dir
    tb = tar_bytes([("../../escape.txt", b"evil")])
    (www / "evil.tar.gz").write_bytes(tb)
    with pytest.raises(UnsafeArchiveError, match="outside"):
        realize(instantiate(fetchurl, url=f"{url}/evil.tar.gz", sha256=sha(tb), name="evil"))
    assert not (tmp_path / "escape.txt").exists()
    assert os.listdir(join(store, "tmp")) == []


def test_file_url(store, tmp_path):
    p = tmp_path / "local.bin"
    p.write_bytes(b"local data")
    r = realize(instantiate(fetchurl, url=f"file://{p}", sha256=sha(b"local data"), mode="as-is", name="loc"))
    assert open(join(rref2path(r), "local.bin"), "rb").read() == b"local data"


@pytest.mark.parametrize("kw,key", [
    (dict(url="ftp://x/y", sha256="0" * 64), "url"),
    (dict(url="http://127.0.0.1/y", sha256="abc"), "sha256"),
    (dict(url="http://127.0.0.1/y", sha256="0" * 64, mode="explode"), "mode"),
    (dict(url="http://127.0.0.1/y", sha256="0" * 64, mode="remove"), "mode"),
    (dict(url="http://127.0.0.1/", sha256="0" * 64), "filename"),
])
def test_fetchurl_argument_errors(store, kw, key):
    with pytest.raises(ConfigError) as ei:
        instantiate(fetchurl, **kw)
    assert ei.value.key == key
