"""Sentences of the README checked against the program (the ones no code block shows)."""
from os.path import join

from pylightnix import (build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv, realize,
                        repl_continue, repl_realize)

CALLS = []


def counted(m):
    def build(b):
        CALLS.append(1)
        with open(join(build_outpath(b), "out.txt"), "w") as f:
            f.write("built")
    return mkdrv(m, mkconfig({"name": "counted"}), match_only(), build_wrapper(build))


def test_repl_continue_on_a_cached_stage_returns_it_and_builds_nothing(store):
    """README: `repl_continue()` without outputs does what `realize` would: it returns the cached
    realization if there is one, and runs the stage's realizer otherwise."""
    CALLS.clear()
    repl_realize(instantiate(counted))
    first = repl_continue()
    assert CALLS == [1]
    repl_realize(instantiate(counted))  # pauses although the stage is cached
    assert repl_continue() == first == realize(instantiate(counted))
    assert CALLS == [1]
