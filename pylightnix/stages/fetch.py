"""``fetchurl`` and ``fetchlocal``: sources enter the store only with the sha256 they promise.

Pure standard library: ``urllib`` for http, https and ``file:`` URLs,
``tarfile``/``zipfile`` for unpacking, with members that would land outside the
output folder refused.
"""
from __future__ import annotations

import os
import re
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from hashlib import sha256 as _sha256
from os.path import basename, join
from typing import Any, List, Optional

from pylightnix.core.archives import extract_tar, member_parts
from pylightnix.engine.build import Build, build_cattrs, build_outpath, build_wrapper
from pylightnix.core.config import mkconfig
from pylightnix.core.errors import ChecksumError, ConfigError, FetchError
from pylightnix.engine.manager import Manager, mkdrv
from pylightnix.engine.matchers import match_only
from pylightnix.core.refs import is_name
from pylightnix.types import DRef

_SHA_RE = re.compile(r"[0-9a-f]{64}\Z")
_MODES = {"as-is", "unpack", "remove"}
_PROGRESS_AFTER_S = 1.0


def _parse_mode(mode: str, name: str) -> List[str]:
    if not isinstance(mode, str):
        raise ConfigError(f"fetch {name!r}: mode: expected a string like 'unpack,remove' or 'as-is', got "
                          f"{type(mode).__name__}", key="mode")
    parts = [p.strip() for p in mode.split(",") if p.strip()]
    bad = [p for p in parts if p not in _MODES]
    if bad or not parts:
        raise ConfigError(f"fetch {name!r}: mode {mode!r}: expected a comma-separated subset of "
                          f"{sorted(_MODES)}", key="mode")
    if "remove" in parts and "unpack" not in parts:
        raise ConfigError(f"fetch {name!r}: mode {mode!r}: 'remove' only makes sense with 'unpack'", key="mode")
    if "as-is" in parts and len(parts) > 1:
        raise ConfigError(f"fetch {name!r}: mode {mode!r}: 'as-is' excludes the other modes", key="mode")
    return parts


def _check_common(name: str, sha256: str, filename: Optional[str]) -> None:
    if not is_name(name):
        raise ConfigError(f"fetch: name {name!r}: expected [a-zA-Z0-9_-]+", key="name")
    if not isinstance(sha256, str) or not _SHA_RE.match(sha256.lower()):
        raise ConfigError(f"fetch {name!r}: sha256: expected 64 hex characters, got {sha256!r}", key="sha256")
    if filename is not None and (not isinstance(filename, str) or "/" in filename or filename in ("", ".", "..")):
        raise ConfigError(f"fetch {name!r}: filename: expected a plain file name, got {filename!r}", key="filename")


def _progress(label: str, done: int, total: Optional[int], started: float) -> None:
    if time.monotonic() - started < _PROGRESS_AFTER_S:
        return
    pct = f" {100 * done // total}%" if total else ""
    sys.stderr.write(f"\r[pylightnix] fetching {label}: {done / 1e6:.1f} MB{pct}")
    sys.stderr.flush()


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http and https, and from https to http only when allowed."""

    def __init__(self, label: str, allow_downgrade: bool) -> None:
        super().__init__()
        self.label, self.allow_downgrade = label, allow_downgrade

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        old = urllib.parse.urlparse(req.full_url).scheme.lower()
        new = urllib.parse.urlparse(newurl).scheme.lower()
        if new not in ("http", "https"):
            raise FetchError(f"fetch {self.label}: {req.full_url} redirects to {newurl!r}; only http and https "
                             f"redirects are followed")
        if old == "https" and new == "http" and not self.allow_downgrade:
            raise FetchError(f"fetch {self.label}: {req.full_url} redirects from https to plain http {newurl!r}; "
                             f"pass allow_downgrade=True to fetchurl to follow it")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _download(url: str, dest: str, expected: str, label: str, allow_downgrade: bool = False) -> None:
    """Stream ``url`` into ``dest`` while hashing; raise ChecksumError on mismatch."""
    h = _sha256()
    started = time.monotonic()
    shown = False
    try:
        opener = urllib.request.build_opener(_Redirects(label, allow_downgrade))
        with opener.open(url, timeout=60) as resp, open(dest, "wb") as out:
            total = resp.headers.get("Content-Length") if hasattr(resp, "headers") else None
            total_n = int(total) if total and str(total).isdigit() else None
            done = 0
            while True:
                chunk = resp.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
                h.update(chunk)
                done += len(chunk)
                if time.monotonic() - started >= _PROGRESS_AFTER_S:
                    _progress(label, done, total_n, started)
                    shown = True
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise FetchError(f"fetch {label}: downloading {url} failed: {e}") from e
    finally:
        if shown:
            sys.stderr.write("\n")
    got = h.hexdigest()
    if got != expected.lower():
        raise ChecksumError(f"fetch {label}: sha256 mismatch for {url}: expected {expected.lower()}, got {got}; "
                            f"nothing was stored")


def unpack(archive: str, out: str, label: str) -> None:
    """Unpack a tar or zip archive into ``out``; refuse an archive with any member that could land
    outside it (see docs/security.md)."""
    what = f"fetch {label}"
    if tarfile.is_tarfile(archive):
        try:
            with tarfile.open(archive) as tf:
                extract_tar(tf, out, what)
        except (tarfile.TarError, OSError) as e:
            raise FetchError(f"{what}: cannot unpack {basename(archive)}: {e}") from e
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            for n in zf.namelist():
                member_parts(n, what)  # zipfile writes links as plain files, so names are all there is
            zf.extractall(out)
    else:
        raise FetchError(f"{what}: {basename(archive)} is neither a tar nor a zip archive; "
                         f"use mode='as-is' to keep it as it is")


def _mkfetch(m: Manager, kind: str, source: str, url: str, sha256: str, mode: str, name: str,
             filename: Optional[str], extra: Any, allow_downgrade: bool = False) -> DRef:
    _check_common(name, sha256, filename)
    _parse_mode(mode, name)
    fname = filename or basename(urllib.parse.urlparse(url).path)
    if not fname:
        raise ConfigError(f"fetch {name!r}: cannot deduce a file name from {source!r}; pass filename=...",
                          key="filename")
    config = dict(extra)
    config.update({"name": name, kind: source, "sha256": sha256.lower(), "mode": mode})
    if filename is not None:
        config["filename"] = filename

    def _realize(b: Build) -> None:
        c = build_cattrs(b)
        o = build_outpath(b)
        path = join(o, fname)
        _download(url, path + ".part", c.sha256, name, allow_downgrade)
        os.rename(path + ".part", path)
        modes = _parse_mode(c.mode, name)
        if "unpack" in modes:
            unpack(path, o, name)
            if "remove" in modes:
                os.remove(path)
    return mkdrv(m, mkconfig(config), match_only(), build_wrapper(_realize))


def fetchurl(m: Manager, url: str, sha256: str, mode: str = "unpack,remove", name: Optional[str] = None,
             filename: Optional[str] = None, force_download: bool = False, check_promises: bool = True,
             allow_downgrade: bool = False, **kwargs: Any) -> DRef:
    """Download ``url`` (http, https or file) and verify its sha256; unpack it unless ``mode='as-is'``.

    Redirects are followed only to http and https URLs, and never from https to
    plain http unless ``allow_downgrade=True`` (the sha256 still guards the
    content). Archives are unpacked only if no member can land outside the
    output folder; see docs/security.md.
    """
    if not isinstance(url, str) or urllib.parse.urlparse(url).scheme not in ("http", "https", "file"):
        raise ConfigError(f"fetchurl {name or 'fetchurl'!r}: url: expected an http, https or file URL, got {url!r}",
                          key="url")
    return _mkfetch(m, "url", url, url, sha256, mode, name or "fetchurl", filename, kwargs, allow_downgrade)


def fetchlocal(m: Manager, path: str, sha256: str, mode: str = "unpack,remove", name: Optional[str] = None,
               filename: Optional[str] = None, **kwargs: Any) -> DRef:
    """Copy a local file into the store after verifying its sha256."""
    if not isinstance(path, str) or not path:
        raise ConfigError(f"fetchlocal {name or 'fetchlocal'!r}: path: expected a file path, got {path!r}", key="path")
    url = "file://" + urllib.request.pathname2url(os.path.abspath(path))
    return _mkfetch(m, "path", path, url, sha256, mode, name or "fetchlocal", filename or basename(path), kwargs)
