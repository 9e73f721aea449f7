"""Configs that used to be accepted and crash later (issue 8, section 2) are ConfigErrors at
mkconfig naming the key; configs at the documented limits build, list, show and verify."""
import json
import os
import subprocess
import sys

import pytest

from pylightnix import (ConfigError, build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv, realize,
                        rref2dref)
from pylightnix.core.config import CONFIG_MAX_DEPTH, CONFIG_MAX_INT_BITS, CONFIG_MAX_NAME


def nested(depth, leaf=1):
    """{'name': 'deep', 'a': {'a': ... leaf}} with ``depth`` dicts in all."""
    d = {"name": "deep"}
    cur = d
    for _ in range(depth - 1):
        cur["a"] = {}
        cur = cur["a"]
    cur["a"] = leaf
    return d


def self_dict():
    d = {"name": "selfish", "x": 1}
    d["me"] = d
    return d


def self_list():
    lst = [1]
    lst.append(lst)
    return {"name": "selfish", "items": lst}


BAD = [
    ("deep-500", lambda: nested(500), "a.a.a"),
    ("self-dict", self_dict, "me.me"),
    ("self-list", self_list, "items[1][1]"),
    ("surrogate-value", lambda: {"name": "s", "text": "ok \ud800"}, "text"),
    ("surrogate-key", lambda: {"name": "s", "opts": {"k\udc80": 1}}, "opts.k\udc80"),
    ("5000-digit-int", lambda: {"name": "big", "n": 10 ** 4999}, "n"),
    ("300-char-name", lambda: {"name": "n" * 300}, "name"),
]


@pytest.mark.parametrize("make,key", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_config_that_would_crash_later_is_refused_at_mkconfig(make, key):
    with pytest.raises(ConfigError) as e:
        mkconfig(make())
    assert e.value.key.startswith(key), e.value.key
    assert "Recursion" not in str(e.value) and len(str(e.value)) < 400


def test_limits_are_far_above_real_use_and_exact():
    assert CONFIG_MAX_DEPTH >= 64 and CONFIG_MAX_NAME >= 100 and CONFIG_MAX_INT_BITS >= 1024
    mkconfig(nested(CONFIG_MAX_DEPTH))
    with pytest.raises(ConfigError, match=f"more than {CONFIG_MAX_DEPTH} deep"):
        mkconfig(nested(CONFIG_MAX_DEPTH + 1))
    mkconfig({"name": "x", "n": -(2 ** CONFIG_MAX_INT_BITS - 1)})
    with pytest.raises(ConfigError, match="bits"):
        mkconfig({"name": "x", "n": 2 ** CONFIG_MAX_INT_BITS})


def test_configs_at_the_limits_build_list_show_and_verify(store):
    cfgs = [nested(CONFIG_MAX_DEPTH), {"name": "n" * CONFIG_MAX_NAME, "big": 2 ** CONFIG_MAX_INT_BITS - 1,
                                           "text": "caf\u00e9 \U0001F600"}]

    def stage(m, cfg):
        return mkdrv(m, mkconfig(cfg), match_only(), build_wrapper(lambda b: open(build_outpath(b) + "/o", "w").close()))
    rrefs = [realize(instantiate(stage, c)) for c in cfgs]
    env = dict(os.environ, PYLIGHTNIX_ROOT=store, PYLIGHTNIX_PROGRESS="0")

    def cli(*a):
        r = subprocess.run([sys.executable, "-m", "pylightnix", *a], env=env, capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
        return r.stdout
    assert sorted(row["name"] for row in json.loads(cli("ls", "--json"))) == sorted(c["name"] for c in cfgs)
    cli("ls")
    for r in rrefs:
        assert '"name"' in cli("show", r) and str(rref2dref(r)) in cli("show", str(rref2dref(r)))
    assert "OK" in cli("verify")
