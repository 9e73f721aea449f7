"""Symlinks planted in the store (issue 8, section 2): gc, verify, show and store_remove never
follow one out of the store and never delete outside it. The CLI runs as a real subprocess."""
import os
import shutil
import subprocess
import sys
from os.path import join

from pylightnix import (build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv, realize, rref2dref,
                        rref2path, store_remove)
from pylightnix.core.store import store_dref2path


def stage(m, name, make):
    return mkdrv(m, mkconfig({"name": name}), match_only(), build_wrapper(lambda b: make(build_outpath(b))))


def write(o, rel="data.txt", text="content"):
    os.makedirs(join(o, os.path.dirname(rel)), exist_ok=True)
    with open(join(o, rel), "w") as f:
        f.write(text)


def cli(root, *args):
    env = dict(os.environ, PYLIGHTNIX_ROOT=root, PYLIGHTNIX_PROGRESS="0")
    return subprocess.run([sys.executable, "-m", "pylightnix", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def tree(path):
    return sorted(os.path.relpath(join(r, f), path) for r, ds, fs in os.walk(path) for f in fs + ds)


def plant(store_path, outside):
    """Move a store folder outside and leave a symlink to it in its place."""
    shutil.move(store_path, outside)
    os.symlink(outside, store_path)


def test_gc_never_deletes_through_a_derivation_folder_link(store, tmp_path):
    rref = realize(instantiate(stage, "victim", lambda o: write(o, "sub/data.txt")))
    dref = rref2dref(rref)
    outside = str(tmp_path / "outside-folder")
    plant(store_dref2path(dref), outside)
    before = tree(outside)
    assert len(before) >= 4  # config.json, the realization folder and its files
    for args in (["gc", "--keep", dref], ["gc", "--keep", dref, "--dry-run"]):
        g = cli(store, *args)
        assert g.returncode == 0, g.stderr
        assert tree(outside) == before  # it used to delete the realization folder out there
    v = cli(store, "verify")
    assert v.returncode == 1 and "a symlink where a derivation folder should be" in v.stdout
    s = cli(store, "show", rref)
    assert s.returncode == 2 and s.stderr.startswith("pylightnix: error:") and "symlink" in s.stderr
    assert "data.txt" not in s.stdout
    store_remove([dref], [rref])
    assert tree(outside) == before and not os.path.lexists(store_dref2path(dref))  # only the link went


def test_gc_removes_a_planted_realization_link_but_not_its_target(store, tmp_path):
    keep = realize(instantiate(stage, "keep", write))
    junk = realize(instantiate(stage, "junk", lambda o: write(o, "x/y.txt")))
    outside = str(tmp_path / "outside-realization")
    plant(rref2path(junk), outside)
    before = tree(outside)
    g = cli(store, "gc", "--keep", keep)
    assert g.returncode == 0, g.stderr
    assert tree(outside) == before
    assert not os.path.lexists(rref2path(junk)) and os.path.isdir(rref2path(keep))


def test_links_inside_a_realization_are_never_followed(store, tmp_path):
    target_dir = tmp_path / "outside-dir"
    target_dir.mkdir()
    (target_dir / "f.txt").write_text("keep me")
    target_file = tmp_path / "outside-file.txt"
    target_file.write_text("keep me too")

    def make(o):
        write(o)
        os.symlink(str(target_dir), join(o, "dir-link"))
        os.symlink(str(target_file), join(o, "file-link"))
        os.symlink("nowhere", join(o, "dangling"))
    rref = realize(instantiate(stage, "links", make))
    s = cli(store, "show", rref)  # used to crash on the dangling link
    assert s.returncode == 0, s.stderr
    assert "dangling -> nowhere" in s.stdout and f"dir-link -> {target_dir}" in s.stdout
    assert cli(store, "verify").returncode == 0
    keep = realize(instantiate(stage, "other", write))
    assert cli(store, "gc", "--keep", keep).returncode == 0
    assert not os.path.exists(rref2path(rref))
    assert (target_dir / "f.txt").read_text() == "keep me" and target_file.read_text() == "keep me too"
