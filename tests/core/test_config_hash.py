"""Derivation identity: canonical JSON, key order never matters, values always do."""
from hypothesis import given, settings, strategies as st, HealthCheck

from pylightnix.core.config import canonical_json
from pylightnix import config_hash, instantiate, mkconfig, mkdrv, match_only, build_wrapper, build_outpath

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12),
                      st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
json_value = st.recursive(json_leaf, lambda ch: st.one_of(st.lists(ch, max_size=4),
                                                          st.dictionaries(st.text(max_size=5), ch, max_size=4)),
                          max_leaves=12)
configs = st.dictionaries(st.text(min_size=1, max_size=6).filter(lambda k: k != "name"), json_value, max_size=6)


@settings(max_examples=100, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(configs, configs)
def test_hash_equal_exactly_when_canonical_json_equal(d, e):
    d, e = dict(d, name="s"), dict(e, name="s")
    same_data = canonical_json(d) == canonical_json(e)
    assert (config_hash(mkconfig(d)) == config_hash(mkconfig(e))) == same_data


def test_dref_is_the_same_for_reordered_configs(store):
    def st_(m, d):
        return mkdrv(m, mkconfig(d), match_only(), build_wrapper(lambda b: build_outpath(b)))
    a = instantiate(st_, {"name": "o", "a": 1, "b": {"x": 1, "y": [1, 2]}}).dref
    b = instantiate(st_, {"b": {"y": [1, 2], "x": 1}, "a": 1, "name": "o"}).dref
    c = instantiate(st_, {"name": "o", "a": 1, "b": {"x": 1, "y": [2, 1]}}).dref
    assert a == b != c
