"""The on-disk store: derivations (``config.json``) and their realizations.

Layout under ``$PYLIGHTNIX_ROOT/store-v0`` (``PYLIGHTNIX_STORE`` overrides)::

    <dhash>-<name>/config.json         a derivation; its folder is also its build lock (flock)
    <dhash>-<name>/<rhash>/context.json + artifacts
    .locks/                            gc lock, pins, journal lock (not per derivation)

A cold build creates per stage its derivation folder, ``config.json``, the
realization folder with ``context.json`` and (``build_wrapper``) ``__buildtime__.txt``,
plus the realizer's own files; nothing else stays, in the store or out of it.

Every object enters the store by one ``rename`` of a complete, fsynced folder,
so after a crash the store holds whole objects or nothing. Names that are not
hashes (``.staging-*``, ``.tmp-*``) are leftovers: ignored, and removed by gc.
The store knows nothing about the engine or any frontend.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import secrets
import shutil
import stat
import sys
import tempfile
from hashlib import sha256
from os.path import isdir, join
from contextlib import contextmanager
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Set, Tuple, Union

from pylightnix.core import locks, settings
from pylightnix.wire.process import pid_alive
from pylightnix.core.config import (Config, RConfig, canonical_json, check_config_dict, config_hash, config_deps,
                                    config_name, config_substitute_promises)
from pylightnix.core.errors import BuildError, StoreError
from pylightnix.core.refs import HASHPART_RE, dref_dirname, mkdref, mkrref, rref2dref, undref, unrref
from pylightnix.types import Context, DRef, Path, RRef

class Store:
    """One store: its folder (``root``, the ``store-v0`` folder), its temporary area (``tmp``),
    the immutable facts read from it (cached for the object's life) and the syncs a running
    realize defers (:mod:`pylightnix.core.journal`). The seed's functions use the current one
    (:func:`current_store`); a pool worker is handed its own (:func:`use_store`)."""

    def __init__(self, root: str, tmp: str, folder_locks: Optional[bool] = None) -> None:
        self.root, self.tmp = os.path.abspath(root), os.path.abspath(tmp)
        self._folder_locks = folder_locks
        #: called before each commit while a realize syncs once at its end (it starts the journal)
        self.deferred: Optional[Callable[[], None]] = None
        self.known_drefs: Set[str] = set()
        self.config_cache: Dict[str, Config] = {}
        self.context_cache: Dict[str, str] = {}
        self.deps_cache: Dict[str, frozenset] = {}
        self.listing: Optional[Set[str]] = None  # folder names seen at first instantiate (a positive cache)

    @classmethod
    def from_env(cls) -> "Store":
        """The store ``PYLIGHTNIX_ROOT``, ``PYLIGHTNIX_STORE`` and ``PYLIGHTNIX_TMP`` name (not created)."""
        return cls(*_env_paths())

    def create(self) -> "Store":
        """Make its folders (if missing); returns itself."""
        _make_dirs(self.root, self.tmp)
        return self

    def defer_syncs(self, start: Optional[Callable[[], None]]) -> None:
        """Sync once at the end instead of per realization (``start`` runs before each commit), or,
        with None, per realization again."""
        self.deferred = start

    def folder_locks(self) -> bool:
        """Whether a derivation's folder can be its build lock here (probed once). The NFS client
        maps ``flock`` to POSIX locks and refuses an exclusive one on a folder; there each
        derivation gets a lock file, ``.locks/<dhash>-<name>.lock``, as stores had before."""
        if self._folder_locks is None:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._folder_locks = True
            except BlockingIOError:
                self._folder_locks = True  # another process probes at the same moment: locks work
            except OSError:
                self._folder_locks = False
            finally:
                os.close(fd)  # drops the probe's lock
        return self._folder_locks

    def sync_each(self) -> bool:
        """fsync each artifact before its rename (``PYLIGHTNIX_FSYNC``, read now), unless a journal defers it."""
        return settings.fsync() and self.deferred is None

    def before_commit(self) -> None:
        if self.deferred is not None:
            self.deferred()

    def __repr__(self) -> str:
        return f"Store({self.root!r}, {self.tmp!r})"


_current: Optional[Store] = None


def current_store() -> Store:
    """The store the seed's functions use: the one made current last, else (created on first use)
    the one the environment names."""
    global _current
    if _current is None:
        _current = Store.from_env().create()
    return _current


def use_store(s: Optional[Store]) -> Optional[Store]:
    """Make ``s`` current (a pool worker is handed its driver's store this way; None: the one the
    environment names, on next use); returns the one it replaces."""
    global _current
    previous, _current = _current, s
    return previous


def use_store_at(root: str, tmp: str) -> Store:
    """Make the store at ``root`` (temporary area ``tmp``) current, created if missing; the current
    object (and its caches) is kept if it is that store already."""
    s = _current
    if s is None or (s.root, s.tmp) != (os.path.abspath(root), os.path.abspath(tmp)):
        s = Store(root, tmp).create()
        use_store(s)
    return s


def _sync_each() -> bool:
    return current_store().sync_each()


def _env_paths() -> Tuple[str, str]:
    return settings.store_dir(), settings.tmp_dir()


def store_initialize(custom_store: Optional[str] = None, custom_tmp: Optional[str] = None,
                     check_not_exist: bool = False) -> None:
    """Create (or reuse) the store and the temporary folder and make them current.

    Locations come from ``PYLIGHTNIX_ROOT`` (default ``~/_pylightnix``),
    ``PYLIGHTNIX_TMP`` and ``PYLIGHTNIX_STORE`` unless given here.
    """
    store, tmp = _env_paths()
    store = os.path.abspath(custom_store or store)
    tmp = os.path.abspath(custom_tmp or tmp)
    exists = isdir(store)
    if exists and check_not_exist:
        raise StoreError(f"store {store} already exists (check_not_exist=True)")
    print(f"Initializing {'' if exists else 'non-'}existing {store}")
    use_store_at(store, tmp).create()


def store_root() -> str:
    """The store folder; created silently on first use if store_initialize was not called."""
    return current_store().root


def _make_dirs(store: str, tmp: str) -> None:
    try:
        os.makedirs(join(store, ".locks"), exist_ok=True)
        os.makedirs(tmp, exist_ok=True)
    except OSError as e:
        raise StoreError(f"cannot create the store {store} or its temporary folder {tmp}: {e.strerror} "
                         f"({e.filename}); check PYLIGHTNIX_ROOT, PYLIGHTNIX_STORE and PYLIGHTNIX_TMP") from None


def store_location() -> str:
    """Where the store is (or would be), without creating it."""
    return _current.root if _current is not None else os.path.abspath(_env_paths()[0])


def store_use_existing() -> bool:
    """Make the store named by the environment current without creating anything
    (read-only commands). False if there is none; StoreError if its path is not a folder."""
    store, tmp = (os.path.abspath(p) for p in _env_paths())
    try:
        is_dir = stat.S_ISDIR(os.stat(store).st_mode)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise StoreError(f"cannot use the store {store}: {e.strerror}; check PYLIGHTNIX_ROOT "
                         f"(or --root) and PYLIGHTNIX_STORE") from None
    if not is_dir:
        raise StoreError(f"cannot use the store {store}: it is not a folder; check PYLIGHTNIX_ROOT (or --root) "
                         f"and PYLIGHTNIX_STORE")
    if _current is None or (_current.root, _current.tmp) != (store, tmp):
        use_store(Store(store, tmp))
    return True


def tmp_root() -> str:
    return current_store().tmp


def store_dref2path(r: DRef) -> Path:
    return Path(join(store_root(), dref_dirname(r)))


def rref2path(r: RRef) -> Path:
    """The folder holding a realization's artifacts."""
    rhash, dhash, name = unrref(r)
    return Path(join(store_root(), f"{dhash}-{name}", rhash))


def store_cfgpath(r: DRef) -> Path:
    return Path(join(store_dref2path(r), "config.json"))


def _same_folder(path: str, fd: int) -> bool:
    """Whether ``path`` still names the folder open as ``fd`` (gc may have removed it meanwhile)."""
    try:
        a, b = os.stat(path), os.fstat(fd)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _lock_target(dref: DRef) -> Tuple[str, bool]:
    """Where a derivation's build lock is, and whether it is its folder (see :meth:`Store.folder_locks`)."""
    s = current_store()
    if s.folder_locks():
        return store_dref2path(dref), True
    return join(s.root, ".locks", dref_dirname(dref) + ".lock"), False


@contextmanager
def derivation_lock(c: Config) -> Iterator[DRef]:
    """Hold the build lock of ``c``'s derivation for the block: an ``flock`` on its folder (no
    lock file, unless :meth:`Store.folder_locks` says no). The derivation is instantiated first,
    again if gc removed it meanwhile."""
    for _ in range(100):
        dref = store_instantiate(c, check=True)
        path, folder = _lock_target(dref)
        locked = False
        try:
            with locks.exclusive(path, dref, folder=folder) as fd:
                locked = True
                if not folder:
                    store_instantiate(c, check=True)  # gc may have removed it before we locked
                if not folder or _same_folder(path, fd):
                    yield dref
                    return
        except FileNotFoundError:
            if locked:
                raise  # the block's own error
    raise StoreError(f"cannot lock the derivation folder of {dref}: it keeps being removed (by gc?)", dref=dref)


def derivation_try_lock(c: Config) -> int:
    """Take ``c``'s derivation lock without waiting (instantiating it if needed): its fd, or -1
    if another holder has it."""
    dref = store_instantiate(c, check=True)
    path, folder = _lock_target(dref)
    fd = locks.try_lock(path, create=not folder, folder=folder)
    if fd >= 0 and folder and not _same_folder(path, fd):
        os.close(fd)
        return -1  # removed under us: the caller looks again later
    if fd >= 0 and not folder:
        store_instantiate(c, check=True)  # gc may have removed it before we locked
    return fd


def fsync_dir(path: str) -> None:
    """fsync a folder (its entries), unless syncs are off or deferred to the end of a realize."""
    if _sync_each():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_file(path: str, data: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(data)
        if _sync_each():
            f.flush()
            os.fsync(f.fileno())


def unique_token() -> str:
    """A name part no other process or call uses at the same time (temporary folder names)."""
    return f"{os.getpid()}-{secrets.token_hex(4)}"


# ---------------------------------------------------------------- derivations

def store_instantiate(c: Config, check: bool = False) -> DRef:
    """Put a config into the store (once) and return its DRef.

    Derivation folders already listed in the store are trusted; ``check``
    (used before a build) makes sure ``config.json`` is really there.
    """
    s = current_store()
    name = config_name(c)
    dhash = config_hash(c)[:32]
    dref = mkdref(dhash, name)
    if not check:
        if dref in s.known_drefs:
            return dref
        if s.listing is None:
            s.listing = set(os.listdir(s.root))
        if f"{dhash}-{name}" in s.listing:
            s.known_drefs.add(dref)
            return dref
    ddir = store_dref2path(dref)
    cfg = join(ddir, "config.json")
    try:
        present = os.stat(cfg).st_size > 0
    except FileNotFoundError:
        present = False
    if not present:
        # Not fsynced: a config is reproducible from code, and an empty one (power loss) is rewritten here.
        # Realizations fsync before they are committed, which flushes this file too.
        text = json.dumps(c.val, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False)
        if isdir(ddir):  # the folder survived without its config: restore the file atomically
            part = join(ddir, f".tmp-{unique_token()}")
            with open(part, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(part, cfg)
        else:
            part = join(store_root(), f".tmp-{unique_token()}")
            os.mkdir(part)
            with open(join(part, "config.json"), "w", encoding="utf-8") as f:
                f.write(text)
            try:
                os.rename(part, ddir)
            except OSError as e:
                shutil.rmtree(part, ignore_errors=True)
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
    s.known_drefs.add(dref)
    s.config_cache.setdefault(dref, c)
    return dref


def store_config_(r: DRef) -> Config:
    """The config a derivation was made from, as stored."""
    cache = current_store().config_cache
    c = cache.get(r)
    if c is None:
        try:
            with open(store_cfgpath(r), encoding="utf-8") as f:
                d = json.load(f)
        except FileNotFoundError:
            raise StoreError(f"derivation {r} is not in the store {store_root()}; instantiate it first",
                             dref=r) from None
        c = cache[r] = Config(d)
    return c


def store_config(r: Union[DRef, RRef]) -> RConfig:
    """The config of a derivation (or of a realization's derivation), promises resolved."""
    dref = rref2dref(r) if r.startswith("rref:") else DRef(r)
    return config_substitute_promises(store_config_(dref), dref)


def store_cattrs(r: Union[DRef, RRef]):  # type: ignore[no-untyped-def]
    from pylightnix.core.config import config_cattrs
    return config_cattrs(store_config(r))


def store_deps(drefs: Iterable[DRef]) -> Set[DRef]:
    """Direct dependencies of the given derivations."""
    out: Set[DRef] = set()
    for d in drefs:
        out |= config_deps(store_config_(d))
    return out


def store_deepdeps(roots: Iterable[DRef]) -> Set[DRef]:
    """All transitive dependencies of ``roots`` (not including the roots)."""
    seen: Set[DRef] = set()
    stack = list(store_deps(roots))
    while stack:
        d = stack.pop()
        if d not in seen:
            seen.add(d)
            stack.extend(store_deps([d]))
    return seen


def store_drefs() -> List[DRef]:
    """All derivations in the store."""
    out = []
    for e in _dref_entries():
        if e.is_dir(follow_symlinks=False) and _is_file(join(e.path, "config.json")):
            dhash, _, name = e.name.partition("-")
            out.append(mkdref(dhash, name))
    return out


def _is_file(path: str) -> bool:
    """A regular file, not a symlink (which could lead anywhere) nor a FIFO (which would hang a reader)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _dref_entries() -> List[os.DirEntry]:
    """Store entries named like derivation folders, sorted (symlinks included: callers decide)."""
    with os.scandir(store_root()) as it:
        return sorted((e for e in it if not e.name.startswith(".") and HASHPART_RE.match(e.name.partition("-")[0])),
                      key=lambda e: e.name)


# ---------------------------------------------------------------- realizations

def _realizations(dref: DRef) -> Tuple[str, List[Tuple[str, RRef]]]:
    """The derivation's folder and its ``(folder name, RRef)`` realizations, sorted."""
    dhash, name = undref(dref)
    ddir = join(store_root(), f"{dhash}-{name}")
    try:
        entries = os.listdir(ddir)
    except FileNotFoundError:
        return ddir, []
    entries.sort()
    return ddir, [(e, RRef(f"rref:{e}-{dhash}-{name}")) for e in entries if len(e) == 32 and HASHPART_RE.match(e)]


def store_rrefs_(dref: DRef) -> List[RRef]:
    """All realizations of ``dref``, whatever their context."""
    return [r for _, r in _realizations(dref)[1]]


def _context_text(rref: RRef, path: str) -> Optional[str]:
    """The raw text of a realization's context.json (cached: realizations never change)."""
    cache = current_store().context_cache
    k = cache.get(rref)
    if k is None:
        try:
            with open(join(path, "context.json"), encoding="utf-8") as f:
                k = f.read()
        except FileNotFoundError:
            return None
        cache[rref] = k
    return k


def context_text(context: Context) -> str:
    """How store_realize writes a context (canonical JSON): the fast path of context comparison."""
    return canonical_json({k: list(v) for k, v in context.items()})


def _same_context(text: Optional[str], want_text: str, want_canonical: List[str]) -> bool:
    if text is None:
        return False
    if text == want_text:
        return True
    if not want_canonical:
        want_canonical.append(canonical_json(json.loads(want_text)))
    try:
        return canonical_json(json.loads(text)) == want_canonical[0]
    except ValueError:
        return False


def store_rrefs(dref: DRef, context: Context) -> List[RRef]:
    """Realizations of ``dref`` that were built from exactly ``context``."""
    mine = context_only(dref, context)
    ddir, found = _realizations(dref)
    if not mine:
        return [r for _, r in found]  # no dependencies: every realization was built in the empty context
    want = context_text(mine)
    lazy: List[str] = []
    return [r for e, r in found if _same_context(_context_text(r, join(ddir, e)), want, lazy)]


def remember_deps(dref: DRef, deps: frozenset) -> None:
    """Record a derivation's direct dependencies (known at mkdrv time) to spare re-reading its config."""
    current_store().deps_cache[dref] = deps


def context_only(dref: DRef, context: Context) -> Context:
    """The part of ``context`` that belongs to ``dref``'s direct dependencies."""
    cache = current_store().deps_cache
    deps = cache.get(dref)
    if deps is None:
        deps = cache[dref] = frozenset(config_deps(store_config_(dref)))
    return {k: v for k, v in context.items() if k in deps}


def store_context(r: RRef) -> Context:
    """The context a realization was built in: its direct dependencies' realizations."""
    try:
        with open(join(rref2path(r), "context.json"), encoding="utf-8") as f:
            return {DRef(k): [RRef(x) for x in v] for k, v in json.load(f).items()}
    except FileNotFoundError:
        raise StoreError(f"realization {r} is not in the store", dref=rref2dref(r)) from None


def store_deref_(context_holder: RRef, dref: DRef) -> List[RRef]:
    ctx = store_context(context_holder)
    if dref not in ctx:
        raise StoreError(f"{context_holder} does not depend on {dref}", dref=dref)
    return ctx[dref]


def store_deref(context_holder: RRef, dref: DRef) -> RRef:
    """The realization of dependency ``dref`` that ``context_holder`` was built with."""
    rrefs = store_deref_(context_holder, dref)
    if len(rrefs) != 1:
        raise StoreError(f"{context_holder} uses {len(rrefs)} realizations of {dref}, expected 1", dref=dref)
    return rrefs[0]


def store_buildtime(rref: RRef) -> Optional[str]:
    try:
        with open(join(rref2path(rref), "__buildtime__.txt"), encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


class SpecialFileError(StoreError):
    """A FIFO, socket or device inside a folder being hashed: never opened, never stored."""

    def __init__(self, rel: str, kind: str) -> None:
        super().__init__(f"{rel!r} is {kind}")
        self.rel, self.kind = rel, kind


def _special_kind(mode: int) -> str:
    return ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a special file")


def _own_copy(path: str) -> None:
    """Replace a file that has other hard links by a private copy, so sealing never
    changes an inode that other names (maybe outside the store) share."""
    part = f"{path}.pylightnix-copy-{unique_token()}"
    shutil.copyfile(path, part, follow_symlinks=False)
    os.replace(part, path)


def is_metadata(name: str) -> bool:
    """Entries whose names start with ``_`` (``__buildtime__.txt``, ``_logs/``) are
    metadata: stored and sealed like artifacts, but left out of the realization hash."""
    return name.startswith("_")


def dirhash(path: str, *, seal: bool = False) -> str:
    """The realization hash: sha256 over every entry's relative path, kind and content, in sorted order.

    Metadata (:func:`is_metadata`, at any depth, with everything below a
    metadata folder) is not hashed, so two builds of a deterministic stage get
    the same RRef whatever their build times. Symlinks are hashed by their
    target text and never followed. A FIFO, socket or device raises
    :class:`SpecialFileError` (it is never opened). With ``seal``, files
    (metadata too) are also fsynced (if FSYNC) and made read-only; a file with
    other hard links is first replaced by a private copy.
    """
    h = sha256()

    def skip(_data: bytes) -> None:
        pass

    def walk(d: str, rel: str, hashed: bool) -> None:
        with os.scandir(d) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            keep = hashed and not is_metadata(e.name)
            update = h.update if keep else skip
            r = f"{rel}/{e.name}" if rel else e.name
            rb = r.encode("utf-8", "surrogateescape")
            if e.is_symlink():
                update(b"l\0" + rb + b"\0" + os.readlink(e.path).encode("utf-8", "surrogateescape") + b"\n")
            elif e.is_dir(follow_symlinks=False):
                update(b"d\0" + rb + b"\n")
                walk(e.path, r, keep)
            elif not e.is_file(follow_symlinks=False):
                raise SpecialFileError(r, _special_kind(e.stat(follow_symlinks=False).st_mode))
            elif keep or seal:
                fh = sha256()
                if seal and e.stat(follow_symlinks=False).st_nlink > 1:
                    _own_copy(e.path)
                with open(e.path, "rb") as f:
                    while keep:
                        chunk = f.read(1 << 20)
                        if not chunk:
                            break
                        fh.update(chunk)
                    if seal:
                        if _sync_each():
                            os.fsync(f.fileno())
                        os.fchmod(f.fileno(), 0o444)
                update(b"f\0" + rb + b"\0" + fh.hexdigest().encode() + b"\n")
    walk(path, "", True)
    return h.hexdigest()


def _seal(dref: DRef, path: str) -> str:
    """dirhash(path, seal=True), a special file being the build's error."""
    try:
        return dirhash(path, seal=True)
    except SpecialFileError as e:
        raise BuildError(f"while realizing {dref}: output file {e.rel!r} is {e.kind}; a realization holds only "
                         f"files, folders and symlinks (remove it before the stage returns)", dref=dref) from None


def store_realize(dref: DRef, context: Context, path: str) -> RRef:
    """Move a finished output folder into the store as a realization of ``dref``.

    The folder gets ``context.json``, is hashed (names and contents), sealed and
    renamed into place in one step. An identical realization already present
    wins and the folder is discarded.
    """
    if not isdir(path):
        raise BuildError(f"while realizing {dref}: output {path!r} is not a folder", dref=dref)
    ctxfile = join(path, "context.json")
    if os.path.lexists(ctxfile):
        raise BuildError(f"while realizing {dref}: an artifact is named 'context.json'; that name is reserved "
                         f"for the store, rename the artifact", dref=dref)
    ddir = store_dref2path(dref)
    if not os.path.exists(join(ddir, "config.json")):
        raise StoreError(f"while realizing {dref}: the derivation is not in the store (removed by gc?); "
                         f"instantiate it again", dref=dref)
    current_store().before_commit()
    ctx_text = context_text(context_only(dref, context))
    _write_file(ctxfile, ctx_text)
    rhash = _seal(dref, path)[:32]
    fsync_dir(path)
    dhash, name = undref(dref)
    target = join(ddir, rhash)
    try:
        os.rename(path, target)
    except OSError as e:
        if e.errno in (errno.ENOTEMPTY, errno.EEXIST):
            rmtree(path)
        elif e.errno == errno.EXDEV:
            staging = join(ddir, f".staging-{unique_token()}")
            shutil.copytree(path, staging, symlinks=True)
            _seal(dref, staging)
            try:
                os.rename(staging, target)
            except OSError as e2:
                rmtree(staging)
                if e2.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
            rmtree(path)
        else:
            raise
    rref = mkrref(rhash, dhash, name)
    current_store().context_cache[rref] = ctx_text
    return rref


def rmtree(path: str) -> None:
    """Remove a tree, read-only folders included; a tree that is already gone is fine."""
    def retry(func, p, _exc):  # type: ignore[no-untyped-def]
        try:
            os.chmod(os.path.dirname(p), 0o755)
            func(p)
        except OSError:
            pass
    if sys.version_info >= (3, 12):
        shutil.rmtree(path, onexc=retry)
    else:
        shutil.rmtree(path, onerror=retry)


# ---------------------------------------------------------------- gc and verify

def store_gc(keep_drefs: List[DRef], keep_rrefs: List[RRef]) -> Tuple[Set[DRef], Set[RRef]]:
    """Derivations and realizations not needed by the given roots (nothing is removed here).

    A kept dref keeps its dependencies' derivations; a kept rref keeps its
    derivation and, through contexts, every realization it was built from.
    """
    keep_d: Set[DRef] = set()
    stack_d = list(keep_drefs) + [rref2dref(r) for r in keep_rrefs]
    keep_r: Set[RRef] = set()
    stack_r = list(keep_rrefs)
    while stack_r:
        r = stack_r.pop()
        if r in keep_r:
            continue
        keep_r.add(r)
        stack_d.append(rref2dref(r))
        for rs in store_context(r).values():
            stack_r.extend(rs)
    while stack_d:
        d = stack_d.pop()
        if d in keep_d:
            continue
        keep_d.add(d)
        stack_d.extend(store_deps([d]))
    rm_d: Set[DRef] = set()
    rm_r: Set[RRef] = set()
    for d in store_drefs():
        for r in store_rrefs_(d):
            if r not in keep_r:
                rm_r.add(r)
        if d not in keep_d:
            rm_d.add(d)
    return rm_d, rm_r


def store_path_is_real(path: str) -> bool:
    """True if ``path`` is in the store and no component below the store root is a
    symlink: the store's own folders, never a link planted to lead outside."""
    root = store_root()
    rel = os.path.relpath(path, root)
    if rel == ".":
        return True
    if rel.startswith(".."):
        return False
    cur = root
    for part in rel.split(os.sep):
        cur = join(cur, part)
        try:
            if stat.S_ISLNK(os.lstat(cur).st_mode):
                return False
        except FileNotFoundError:
            return True  # nothing further to follow
    return True


def _remove_in_store(path: str) -> None:
    """Remove a store folder; a symlink planted in its place goes, its target stays untouched."""
    if store_path_is_real(path):
        rmtree(path)
    elif os.path.islink(path) and store_path_is_real(os.path.dirname(path)):
        os.unlink(path)
    # else: reached through a planted link: not in the store, never removed


def store_remove(drefs: Iterable[DRef], rrefs: Iterable[RRef]) -> None:
    """Delete realizations and derivations (with all their realizations).

    Takes no locks (the engine calls it under a derivation's lock); ``gc`` uses
    :func:`store_collect`, which spares whatever a live process uses.
    """
    s = current_store()
    for r in rrefs:
        _remove_in_store(rref2path(r))
        s.context_cache.pop(r, None)
    for d in drefs:
        _remove_in_store(store_dref2path(d))
        s.known_drefs.discard(d)
        if s.listing is not None:
            s.listing.discard(dref_dirname(d))
        s.config_cache.pop(d, None)


# ---------------------------------------------------------------- what live processes use

def _pins_dir() -> str:
    return join(store_root(), ".locks", "pins")


class Pin:
    """Derivations a running realize uses; gc spares them (and all their realizations) until close()."""

    def __init__(self, path: str, fd: int) -> None:
        self.path, self.fd = path, fd

    def close(self) -> None:
        if self.fd >= 0:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            os.close(self.fd)
            self.fd = -1


def _gc_lock(shared: bool):  # type: ignore[no-untyped-def]
    """Shared while a process registers something live (a pin, a temporary area);
    exclusive while gc removes things, so gc sees every registration complete."""
    return locks.exclusive(join(store_root(), ".locks", "gc.lock"), "gc", shared=shared)


def store_tmp_area(prefix: str) -> Tuple[str, int]:
    """A new temporary folder for builds and the fd of its held ``.lock``; gc never
    takes it for a leftover while the fd is open."""
    with _gc_lock(shared=True):
        path = tempfile.mkdtemp(prefix=prefix, dir=tmp_root())
        return path, locks.hold_forever(join(path, ".lock"))


def store_pin(drefs: Iterable[DRef]) -> Pin:
    """Mark ``drefs`` as in use by this process until the Pin is closed (or the process dies).

    Registration waits while a gc is removing things, so a realize either sees what
    gc left or is seen by gc: a derivation it matched is never collected under it.
    """
    path = join(_pins_dir(), unique_token())
    try:
        with _gc_lock(shared=True):
            try:
                fd = locks.hold_forever(path)
            except FileNotFoundError:
                os.makedirs(_pins_dir(), exist_ok=True)
                fd = locks.hold_forever(path)
            os.write(fd, "\n".join(drefs).encode())
    except OSError as e:
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        return Pin(path, -1)  # a store we cannot write to is not collected by us either; reading it is fine
    return Pin(path, fd)


def _live_pins() -> Set[str]:
    """Derivations pinned by live processes; pins of dead ones are removed."""
    out: Set[str] = set()
    try:
        names = os.listdir(_pins_dir())
    except FileNotFoundError:
        return out
    for e in names:
        p = join(_pins_dir(), e)
        fd = locks.try_lock(p)
        if fd >= 0:  # its process is gone
            try:
                os.unlink(p)
            finally:
                os.close(fd)
            continue
        try:
            with open(p, encoding="utf-8") as f:
                out.update(f.read().split())
        except FileNotFoundError:
            pass
    return out


def store_collect(drefs: Iterable[DRef], rrefs: Iterable[RRef],
                  leftovers: Iterable[str] = ()) -> List[Tuple[str, str]]:
    """Remove derivations, realizations and leftovers (from :func:`store_leftovers`) as gc
    does, sparing any that a live process builds (its lock is held) or uses (a running
    realize pinned it, or its temporary area is alive).

    Returns the ``(ref or path, reason)`` pairs that were spared.
    """
    spared: List[Tuple[str, str]] = []
    os.makedirs(join(store_root(), ".locks"), exist_ok=True)
    with _gc_lock(shared=False):
        still = set(store_leftovers())  # a folder seen half-made before the lock may be alive now
        spared += [(p, "in use by a running build") for p in leftovers if p not in still]
        remove_paths([p for p in leftovers if p in still])
        pinned = _live_pins()
        for ref, dref, is_d in [(r, rref2dref(r), False) for r in rrefs] + [(d, d, True) for d in drefs]:
            if dref in pinned:
                spared.append((ref, "in use by a running realize"))
                continue
            path, folder = _lock_target(dref)
            fd = locks.try_lock(path, create=not folder, folder=folder)
            if fd < 0 and (not folder or (os.path.lexists(path) and not os.path.islink(path))):
                spared.append((ref, "being built by a running process"))
                continue
            try:
                store_remove([dref] if is_d else [], [] if is_d else [RRef(ref)])
            finally:
                if fd >= 0:
                    os.close(fd)
    return spared


def _pid_alive(token: str) -> bool:
    """Whether the process named in a temporary's name (``.tmp-PID-...``) lives."""
    try:
        pid = int(token.split("-")[1])
    except (IndexError, ValueError):
        return False
    return pid_alive(pid)


def store_leftovers() -> List[str]:
    """Paths of abandoned temporaries: tmp build folders whose owner is gone, staging folders of dead processes."""
    out: List[str] = []
    tmp = tmp_root()
    for e in sorted(os.listdir(tmp) if isdir(tmp) else []):
        p = join(tmp, e)
        lock = join(p, ".lock")
        if isdir(p) and os.path.exists(lock):
            fd = locks.try_lock(lock)
            if fd < 0:
                continue  # a live build owns it
            os.close(fd)
        out.append(p)
    root = store_root()
    for e in sorted(os.listdir(root)):
        if e.startswith(".tmp-") and not _pid_alive(e):
            out.append(join(root, e))
    for d in _dref_entries():
        if d.is_dir(follow_symlinks=False):
            for sub in sorted(os.listdir(d.path)):
                if sub.startswith((".staging-", ".tmp-")) and not _pid_alive(sub):
                    out.append(join(d.path, sub))
    return out


def remove_paths(paths: Iterable[str]) -> None:
    """Remove leftovers; a symlink is removed itself, and nothing is reached through one."""
    for p in paths:
        if os.path.islink(p) or not isdir(p):
            try:
                os.remove(p)
            except FileNotFoundError:
                pass
        elif store_path_is_real(p) or os.path.dirname(p) == tmp_root():
            rmtree(p)


def store_verify() -> List[str]:
    """Recompute every hash in the store; return a description of each problem found:
    a mismatch, a missing file, a symlink where a store folder should be, a special file."""
    problems: List[str] = []
    for e in _dref_entries():
        if e.is_symlink():
            problems.append(f"{e.path}: a symlink where a derivation folder should be (gc removes the link, "
                            f"never its target)")
        elif os.path.lexists(join(e.path, "config.json")) and not _is_file(join(e.path, "config.json")):
            problems.append(f"{e.path}: config.json is not a regular file (a symlink or a special file)")
    for d in store_drefs():
        try:
            c = store_config_(d)
            check_config_dict(c.val)
            if mkdref(config_hash(c)[:32], config_name(c)) != d:
                problems.append(f"{d}: config.json does not hash to its derivation reference")
        except Exception as e:  # report and go on: verify must survive any damage
            problems.append(f"{d}: unreadable config.json ({type(e).__name__}: {e})")
            continue
        for r in store_rrefs_(d):
            p = rref2path(r)
            if not store_path_is_real(p) or not isdir(p):
                problems.append(f"{r}: a symlink or file where the realization folder should be")
                continue
            if not os.path.lexists(join(p, "context.json")):
                problems.append(f"{r}: missing context.json")
                continue
            try:
                if dirhash(p)[:32] != unrref(r)[0]:
                    problems.append(f"{r}: content does not match its hash")
            except SpecialFileError as e:
                problems.append(f"{r}: {e.rel!r} is {e.kind}; realizations hold only files, folders and symlinks")
            except OSError as e:
                problems.append(f"{r}: unreadable ({type(e).__name__}: {e})")
    return problems
