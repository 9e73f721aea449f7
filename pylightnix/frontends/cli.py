"""The ``pylightnix`` command: look into the store, collect garbage, verify hashes, debug a script.

    pylightnix ls [--json]
    pylightnix show REF|NAME|HASH-PREFIX
    pylightnix gc [--keep REF ...] [--dry-run]
    pylightnix verify
    pylightnix debug [--break NAME] ... SCRIPT [ARGS ...]

The store is ``$PYLIGHTNIX_ROOT/store-v0`` (``--root`` overrides PYLIGHTNIX_ROOT).
"""
from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from typing import List, Optional

from pylightnix.core.errors import PylightnixError, StoreError
from pylightnix.core.config import config_name
from pylightnix.core.refs import is_dref, is_rref, rref2dref, undref, unrref
from pylightnix.core.store import (rref2path, store_dref2path, store_config_, store_context, store_drefs, store_gc,
                                   store_leftovers, store_collect, store_location, store_path_is_real, store_root,
                                   store_rrefs_, store_use_existing, store_verify)
from pylightnix.types import DRef, RRef


def _ls(args: argparse.Namespace) -> int:
    rows = []
    for d in store_drefs():
        rrefs = store_rrefs_(d)
        rows.append({"name": config_name(store_config_(d)), "dref": d, "realizations": len(rrefs), "rrefs": rrefs})
    rows.sort(key=lambda r: (r["name"], r["dref"]))  # by name: the folders' order follows their hashes
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    if not rows:
        print(f"(empty store {store_root()})")
        return 0
    width = max(len(r["name"]) for r in rows)
    for r in rows:
        print(f"{r['name']:<{width}}  {r['realizations']:>3} realization(s)  {r['dref']}")
    return 0


def _files(path: str) -> List[str]:
    """Every file and symlink under ``path`` with its size or target; links are never followed."""
    out = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
            p = os.path.join(root, f)
            rel = os.path.relpath(p, path)
            st = os.lstat(p)
            out.append(f"{rel} -> {os.readlink(p)}" if stat.S_ISLNK(st.st_mode) else f"{rel}  ({st.st_size} bytes)")
    return out


def _is_hex(s: str) -> bool:
    return bool(s) and all(c in "0123456789abcdef" for c in s)


def resolve_ref(query: str, command: str = "show") -> str:
    """The one dref or rref that ``query`` names: a full reference, a derivation
    name, or a prefix of a derivation's or a realization's hash (``dref:``/``rref:``
    optional). Several matches raise StoreError listing the candidates; ``command``
    (``show``, ``gc --keep``) starts the messages."""
    if is_dref(query) or is_rref(query):
        return query
    q = query.split(":", 1)[1] if query.startswith(("dref:", "rref:")) else query
    hexq = _is_hex(q.lower())
    found: List[str] = []
    for d in store_drefs():
        dhash, name = undref(d)
        if q == name or (hexq and dhash.startswith(q.lower())):
            found.append(d)
        elif hexq:
            found.extend(r for r in store_rrefs_(d) if unrref(r)[0].startswith(q.lower()))
    if not found:
        raise StoreError(f"{command}: nothing in {store_root()} is named {query!r} or has a hash starting with it "
                         f"(see: pylightnix ls)")
    if len(found) > 1:
        raise StoreError(f"{command}: {query!r} is ambiguous; it matches {len(found)} references:\n"
                         + "\n".join("  " + f for f in sorted(found)))
    return found[0]


def _show(args: argparse.Namespace) -> int:
    ref = resolve_ref(args.ref)
    if (is_rref(ref) or is_dref(ref)) and not store_path_is_real(rref2path(RRef(ref)) if is_rref(ref)
                                                                 else store_dref2path(DRef(ref))):
        raise StoreError(f"show: {ref} is reached through a symlink planted in the store; pylightnix never "
                         f"follows links out of the store (see: pylightnix verify)")
    if is_rref(ref):
        d = rref2dref(ref)
        print(f"realization {ref}\nderivation  {d}\npath        {rref2path(RRef(ref))}")
        print("config:")
        print(json.dumps(store_config_(d).val, indent=2, sort_keys=True))
        print("context:")
        print(json.dumps(store_context(RRef(ref)), indent=2, sort_keys=True))
        print("files:")
        for f in _files(rref2path(RRef(ref))):
            print("  " + f)
    elif is_dref(ref):
        d = DRef(ref)
        print(f"derivation {d}")
        print("config:")
        print(json.dumps(store_config_(d).val, indent=2, sort_keys=True))
        rrefs = store_rrefs_(d)
        print(f"realizations ({len(rrefs)}):")
        for r in rrefs:
            print("  " + r)
    return 0


def _gc(args: argparse.Namespace) -> int:
    keep = [resolve_ref(k, "gc --keep") for k in args.keep or []]
    # a root keeps its closure: a kept derivation keeps its realizations (and, through their
    # contexts, the realizations they were built from)
    keep_d = [DRef(k) for k in keep if is_dref(k)]
    keep_r = [RRef(k) for k in keep if is_rref(k)] + [r for d in keep_d for r in store_rrefs_(d)]
    leftovers = store_leftovers()
    rm_d, rm_r = (set(), set())
    if keep:
        rm_d, rm_r = store_gc(keep_d, keep_r)
        rm_r = {r for r in rm_r if rref2dref(r) not in rm_d}
    verb = "would remove" if args.dry_run else "removing"
    for p in leftovers:
        print(f"{verb} leftover {p}")
    for r in sorted(rm_r):
        print(f"{verb} {r}")
    for d in sorted(rm_d):
        print(f"{verb} {d} and its realizations")
    if not (leftovers or rm_r or rm_d):
        print("nothing to remove")
    elif not args.dry_run:
        for ref, why in store_collect(sorted(rm_d), sorted(rm_r), leftovers):
            print(f"kept {ref}: {why}")
    if not keep:
        print("(only leftovers are collected without --keep; name the refs to keep to collect the rest)")
    return 0


def _verify(args: argparse.Namespace) -> int:
    problems = store_verify()
    for p in problems:
        print(p)
    n = sum(len(store_rrefs_(d)) for d in store_drefs())
    print(f"verified {len(store_drefs())} derivation(s), {n} realization(s): "
          f"{'OK' if not problems else f'{len(problems)} problem(s)'}")
    return 1 if problems else 0


def _prog() -> str:
    """How the user called us: ``pylightnix`` (the script) or ``python -m pylightnix``."""
    base = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    return "python -m pylightnix" if base in ("__main__.py", "-m", "") else base


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=_prog(), description="Inspect and maintain the pylightnix store.")
    p.add_argument("--root", help="store root (default: $PYLIGHTNIX_ROOT or ~/_pylightnix)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("ls", help="derivations with names and realization counts")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    s.set_defaults(func=_ls)
    s = sub.add_parser("show", help="config, context and files of a dref or rref")
    s.add_argument("ref", metavar="REF", help="a dref or rref, a derivation name, or a prefix of a hash")
    s.set_defaults(func=_show)
    s = sub.add_parser("gc", help="remove leftovers, and with --keep everything the kept refs do not need")
    s.add_argument("--keep", action="append", metavar="REF",
                   help="what to keep, as for show: a dref or rref, a derivation name or a prefix of a hash; "
                        "a derivation keeps its realizations and everything they were built from (repeatable)")
    s.add_argument("--dry-run", action="store_true", help="print what would be removed")
    s.set_defaults(func=_gc)
    s = sub.add_parser("verify", help="recompute hashes; exit 1 if anything does not match")
    s.set_defaults(func=_verify)
    sub.add_parser("debug", help="run a script with build breakpoints (see: pylightnix debug --help)",
                   add_help=False)
    s = sub.add_parser("attach", help="open IPython in a build paused on a worker (the driver prints its id)",
                       description="Open an IPython console in a build paused on a worker. Cells run "
                                   "there, in the paused build; leaving (exit, Ctrl-D) continues the "
                                   "build, repl_cancel() cancels it. --list shows what is paused.")
    s.add_argument("id", nargs="?", metavar="ID", help="the paused build's id (or its derivation name); "
                                                       "optional when only one build is paused")
    s.add_argument("--list", action="store_true", help="list the builds paused on workers and exit")
    s.set_defaults(func=_attach)
    return p


def _attach(args: argparse.Namespace) -> int:
    from pylightnix.frontends import attach
    if args.list:
        problems: List[str] = []
        builds = attach.paused_builds(problems)
        for line in problems:
            print(f"pylightnix attach: {line}", file=sys.stderr)
        for p, h in builds:
            print(f"{p.get('id')}  {p.get('name')}  {p.get('kind')}  on "
                  f"{attach.worker_label(p.get('where'), p.get('pid'))}, driver pid {h.get('pid')}")
        if not builds:
            print("(no build is paused on a worker)")
        return 0
    return attach.attach(args.id)


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `debug` takes the script's own arguments verbatim, so it bypasses this parser
    root_args: List[str] = []
    while argv and argv[0].startswith("--root"):
        root_args.append(argv.pop(0))
        if root_args[-1] == "--root" and argv:
            root_args.append(argv.pop(0))
    if root_args:
        ns = argparse.Namespace(root=root_args[-1].split("=", 1)[-1] if "=" in root_args[-1] else root_args[-1])
        os.environ["PYLIGHTNIX_ROOT"] = os.path.abspath(ns.root)
    if argv and argv[0] == "debug":
        from pylightnix.frontends.debug import main as debug_main
        return debug_main(argv[1:], prog=f"{_prog()} debug")
    args = parser().parse_args(argv)
    try:
        if args.func is _attach:  # needs no store here: the build is paused elsewhere
            return _attach(args)
        try:
            rc = _no_store(args) if not store_use_existing() else int(args.func(args) or 0)
            sys.stdout.flush()  # a reader that went away shows here, not at the interpreter's exit
            return rc
        except BrokenPipeError:
            return _reader_gone()
    except (PylightnixError, OSError) as e:
        print(f"pylightnix: error: {e}", file=sys.stderr)
        return 2


def _reader_gone() -> int:
    """``pylightnix show ... | head``: the reader closed the pipe. Stop quietly, as a tool
    ended by SIGPIPE does (exit status 141), with nothing more written to the closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13


def _no_store(args: argparse.Namespace) -> int:
    if args.func is _show:
        if not (is_rref(args.ref) or is_dref(args.ref)):
            return _show(args)  # the error for a malformed reference, which needs no store
        raise StoreError(f"show {args.ref}: there is no store at {store_location()}")
    if args.func is _ls and args.json:
        print("[]")
    else:
        print(f"(no store at {store_location()}: nothing to {args.cmd})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
