"""What a cold build leaves on disk, entry by entry (the cold path's cost on a real
disk is the number of files and folders it creates)."""
import os
from os.path import join

from pylightnix import build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv, realize, rref2path


def _entries(top):
    """Every file and folder under ``top``, as paths relative to it."""
    out = set()
    for d, dirs, files in os.walk(top):
        out.update(os.path.relpath(join(d, x), top) for x in dirs + files)
    return out


def _write_out(b):
    with open(join(build_outpath(b), "out"), "w") as f:
        f.write("x")


def _trivial(n, buildtime=True):
    def stage(m):
        leaves = [mkdrv(m, mkconfig({"name": f"leaf{i}", "i": i, "bt": buildtime}), match_only(), build_wrapper(_write_out, buildtime))
                  for i in range(n)]
        return leaves[0] if n == 1 else mkdrv(m, mkconfig({"name": "root", "deps": leaves, "bt": buildtime}), match_only(),
                                              build_wrapper(_write_out, buildtime))
    return stage


def _warm_up():
    """One realize, so the store's own files (.locks/gc.lock, journal, pins) exist: they are per store."""
    realize(instantiate(lambda m: mkdrv(m, mkconfig({"name": "warmup"}), match_only(), build_wrapper(_write_out))))


def test_a_cold_trivial_stage_creates_its_derivation_and_realization_only(store, tmp_path):
    """No lock file, no build folder left behind, nothing outside the store: the derivation
    folder and config.json, the realization folder with context.json and __buildtime__.txt
    (the seed's paths), and the realizer's own file."""
    _warm_up()
    before = _entries(tmp_path)
    clo = instantiate(_trivial(1))
    rref = realize(clo)
    new = _entries(tmp_path) - before
    ddir = os.path.relpath(os.path.dirname(rref2path(rref)), tmp_path)
    rdir = os.path.relpath(rref2path(rref), tmp_path)
    assert new == {ddir, join(ddir, "config.json"), rdir, join(rdir, "context.json"),
                   join(rdir, "__buildtime__.txt"), join(rdir, "out")}, sorted(new)


def test_entries_per_stage_of_a_wide_cold_build(store, tmp_path):
    """Per stage, besides the realizer's own files: 5 entries with a build time, 4 without
    (the seed's layout needs context.json and, with a build time, __buildtime__.txt)."""
    _warm_up()
    for buildtime, per_stage in ((True, 5), (False, 4)):
        before = _entries(tmp_path)
        n = 20
        realize(instantiate(_trivial(n, buildtime)))
        new = [p for p in _entries(tmp_path) - before if os.path.basename(p) != "out"]
        assert len(new) == per_stage * (n + 1), sorted(new)
        assert os.listdir(join(store, "tmp")) == []
        assert not [p for p in new if p.endswith(".lock")]
