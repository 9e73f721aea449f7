"""Tar archives that may come from someone else: ``fetchurl``'s downloads and the
realizations a worker sends back in copy mode. One check for both: an archive is
extracted only if no member can land outside the output folder (see docs/security.md).
"""
from __future__ import annotations

import os
import tarfile
from collections import deque
from typing import Dict, List, Optional, Set, Tuple

from pylightnix.core.errors import UnsafeArchiveError


def member_parts(name: str, what: str, kind: str = "member") -> Tuple[str, ...]:
    """The components of an archive path; refuse absolute paths, empty names and '..'.
    ``what`` names the archive in the error ("fetch NAME", "the archive of RREF")."""
    parts = tuple(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))
    if name.startswith("/") or ".." in parts or not parts:
        raise UnsafeArchiveError(f"{what}: archive {kind} {name!r} would be outside the output folder "
                                 f"(it is absolute, empty or contains '..')")
    return parts


def _resolve(links: Dict[Tuple[str, ...], str], start: Tuple[str, ...], target: str) -> Optional[Tuple[str, ...]]:
    """Where the relative link ``target`` seen from folder ``start`` lands in the archive's final tree,
    following the archive's own symlinks; None if it leaves the tree (or loops)."""
    cur = list(start)
    todo = deque(target.split("/"))
    hops = 0
    while todo:
        p = todo.popleft()
        if p in ("", "."):
            continue
        if p == "..":
            if not cur:
                return None
            cur.pop()
            continue
        cur.append(p)
        t = links.get(tuple(cur))
        if t is not None:
            hops += 1
            if hops > 40 or t.startswith("/"):
                return None
            cur.pop()
            todo.extendleft(reversed(t.split("/")))
    return tuple(cur)


def check_tar(members: List[tarfile.TarInfo], what: str) -> None:
    """Refuse a tar unless every member provably stays inside the output folder.

    Checked on the archive's final tree, so the order of members does not matter:
    no member may be written through a link of the archive (nor replace one), every
    symlink must resolve inside the tree through all other symlinks, and a hard link
    may only point to a regular file stored earlier in the same archive. Nothing here
    asks the filesystem, so paths longer than PATH_MAX (CVE-2025-4517) change nothing.
    """
    links: Dict[Tuple[str, ...], str] = {}
    files: Set[Tuple[str, ...]] = set()
    seen: Set[Tuple[str, ...]] = set()
    prefixes: Set[Tuple[str, ...]] = set()
    for m in members:
        if m.isdir() and set(m.name.split("/")) <= {"", "."}:
            continue  # "./": the output folder itself, as `tar -C dir .` writes it
        name = member_parts(m.name, what)
        if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise UnsafeArchiveError(f"{what}: archive member {m.name!r} is a device, fifo or other special file")
        if name in links or ((m.issym() or m.islnk()) and name in seen):
            raise UnsafeArchiveError(f"{what}: archive member {m.name!r} replaces a link or is replaced by one")
        prefixes.update(name[:i] for i in range(1, len(name)))
        if m.issym():
            if m.linkname.startswith("/") or not m.linkname:
                raise UnsafeArchiveError(f"{what}: archive link {m.name!r} -> {m.linkname!r} is absolute")
            links[name] = m.linkname
        elif m.islnk():
            target = member_parts(m.linkname, what, "hard link target")
            if target not in files:
                raise UnsafeArchiveError(f"{what}: archive hard link {m.name!r} -> {m.linkname!r} does not "
                                         f"point to a file stored earlier in the archive")
            prefixes.update(target[:i] for i in range(1, len(target)))
            links[name] = ""  # nothing may be written through it either
        elif m.isfile():
            files.add(name)
        seen.add(name)
    through = prefixes & set(links)
    if through:
        raise UnsafeArchiveError(f"{what}: archive members are stored under the link "
                                 f"{'/'.join(sorted(through)[0])!r}; refusing to write through links")
    symlinks = {k: v for k, v in links.items() if v}
    for name, target in symlinks.items():
        if _resolve(symlinks, name[:-1], target) is None:
            raise UnsafeArchiveError(f"{what}: archive link {'/'.join(name)!r} -> {target!r} points "
                                     f"outside the output folder")


def _safe_modes(m: tarfile.TarInfo) -> tarfile.TarInfo:
    """The 'data' filter's rules where tarfile lacks it: no set-id bits, no group/other write,
    and files owned by whoever unpacks (tarfile restores owners when run as root)."""
    m.mode &= 0o755
    m.uid, m.gid, m.uname, m.gname = os.getuid(), os.getgid(), "", ""
    return m


_FILTER_ERROR = getattr(tarfile, "FilterError", ())  # tarfile without extraction filters has none


def extract_tar(tf: tarfile.TarFile, out: str, what: str) -> None:
    """Check every member of ``tf`` (:func:`check_tar`), then extract it into ``out`` with
    tarfile's ``data`` filter where the running Python has it (its own rules otherwise).
    Raises :class:`UnsafeArchiveError` before anything is written if a member could escape."""
    members = tf.getmembers()
    check_tar(members, what)
    try:
        if hasattr(tarfile, "data_filter"):
            tf.extractall(out, filter="data")
        else:
            tf.extractall(out, members=[_safe_modes(m) for m in members])
    except _FILTER_ERROR as e:
        raise UnsafeArchiveError(f"{what}: tarfile's data filter refused the archive: {e}") from e
