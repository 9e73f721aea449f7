"""Random DAGs: the same pipeline realized in two fresh stores gives the same RRefs."""
import os
from os.path import join

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import pylightnix
from pylightnix import build_cattrs, build_outpath, build_path, build_wrapper, instantiate, match_only, mkconfig, \
    mkdrv, realize, store_initialize

dags = st.lists(st.tuples(st.integers(0, 10**6), st.lists(st.integers(0, 50), max_size=3)), min_size=1, max_size=12)


def make_pipeline(spec):
    def pipeline(m):
        drefs = []
        for i, (payload, deps) in enumerate(spec):
            dep_refs = sorted({drefs[d % len(drefs)] for d in deps}) if drefs else []

            def _realize(b):
                c = build_cattrs(b)
                acc = str(c.payload)
                for d in c.deps:
                    acc += open(build_path(b, [d, "v"])).read()
                with open(join(build_outpath(b), "v"), "w") as f:
                    f.write(acc[-200:])
            drefs.append(mkdrv(m, mkconfig({"name": f"n{i}", "payload": payload, "deps": dep_refs}), match_only(),
                               build_wrapper(_realize, buildtime=False)))
        return drefs[-1]
    return pipeline


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dags)
def test_realizations_agree_across_fresh_stores(tmp_path_factory, spec):
    results = []
    for k in range(2):
        root = tmp_path_factory.mktemp("store")
        store_initialize(custom_store=str(root / "store-v0"), custom_tmp=str(root / "tmp"))
        results.append(realize(instantiate(make_pipeline(spec))))
    assert results[0] == results[1]
