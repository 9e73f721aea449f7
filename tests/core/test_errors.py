"""Bad input gets a clear PylightnixError naming the derivation, the field and what was expected."""
import math
import os
import subprocess
import sys
from os.path import join

import pytest

from pylightnix import *
from pylightnix import ConfigError, ClosureError, PylightnixError, RefError, ReplError
from core_stages import counting_stage

BAD_VALUES = [
    ((1, 2), "tuple"),
    ({1, 2}, "set"),
    (b"raw", "bytes"),
    (float("nan"), "finite number"),
    (float("inf"), "finite number"),
    (object(), "object"),
    ({1: "x"}, "dict keys must be str"),
]


@pytest.mark.parametrize("value,expected", BAD_VALUES)
def test_config_values_are_refused_with_the_key(store, value, expected):
    with pytest.raises(ConfigError) as ei:
        mkconfig({"name": "stage", "deep": {"list": [0, value]}})
    msg = str(ei.value)
    assert expected in msg
    assert "'stage'" in msg  # the derivation
    assert ei.value.key == "deep.list[1]" and "deep.list[1]" in msg  # the field
    assert isinstance(ei.value, PylightnixError)


def test_numpy_scalars_get_a_hint(store):
    np = pytest.importorskip("numpy")
    with pytest.raises(ConfigError, match=r"key 'lr'.*numpy"):
        mkconfig({"name": "s", "lr": np.float32(0.1)})


@pytest.mark.parametrize("name", ["", "has space", "slash/x", "dot.name", None, 5, "foo\n", "\nfoo"])
def test_invalid_names_are_refused(store, name):
    with pytest.raises(ConfigError, match="name"):
        mkconfig({"name": name})


def test_missing_name_means_unnamed(store):
    """As in the original: a config without a name names its derivation 'unnamed'."""
    c = mkconfig({"x": 1})
    assert config_name(c) == "unnamed"
    assert "name" not in config_dict(c)


def test_rref_in_config_is_refused(store):
    rref = realize(instantiate(counting_stage))
    with pytest.raises(ConfigError, match="realization reference"):
        mkconfig({"name": "s", "dep": rref})


def test_mkdrv_argument_errors(store):
    with pytest.raises(ConfigError, match="mkconfig"):
        instantiate(lambda m: mkdrv(m, {"name": "x"}, match_only(), build_wrapper(lambda b: None)))
    with pytest.raises(ClosureError, match="matcher"):
        instantiate(lambda m: mkdrv(m, mkconfig({"name": "x"}), None, build_wrapper(lambda b: None)))
    with pytest.raises(ClosureError, match="must return the DRef"):
        instantiate(lambda m: "not a dref")
    with pytest.raises(ClosureError, match="not instantiated with this Manager"):
        other = instantiate(counting_stage).dref
        instantiate(lambda m: mkdrv(m, mkconfig({"name": "y", "dep": other}), match_only(),
                                    build_wrapper(lambda b: None)))


def test_bad_references(store):
    with pytest.raises(RefError, match="dref:<32 hex>-<name>"):
        undref("dref:xyz-name")
    with pytest.raises(RefError, match="rref:"):
        rref2path("rref:nothex")


def test_force_rebuild_type(store):
    with pytest.raises(ClosureError, match="force_rebuild"):
        realize(instantiate(counting_stage), force_rebuild="yes")


def test_realizer_returning_garbage(store):
    st = lambda m: mkdrv(m, mkconfig({"name": "garbage"}), match_only(), lambda d, c: "not-a-list")
    with pytest.raises(PylightnixError, match="list of folder paths"):
        realize(instantiate(st))
    st2 = lambda m: mkdrv(m, mkconfig({"name": "missing"}), match_only(), lambda d, c: ["/nonexistent/x"])
    with pytest.raises(PylightnixError, match="not a folder"):
        realize(instantiate(st2))


def test_context_json_artifact_is_reserved(store):
    def _r(b):
        open(join(build_outpath(b), "context.json"), "w").write("{}")
    with pytest.raises(PylightnixError, match="reserved"):
        realize(instantiate(lambda m: mkdrv(m, mkconfig({"name": "res"}), match_only(), build_wrapper(_r))))
    assert os.listdir(join(store, "tmp")) == []


def test_repl_functions_without_a_pause(store):
    with pytest.raises(ReplError, match="no paused realization"):
        repl_buildargs()
    with pytest.raises(ReplError, match="no paused realization"):
        repl_cancel()


def test_validation_survives_python_O(store, tmp_path):
    code = ("from pylightnix import mkconfig, ConfigError\n"
            "try:\n    mkconfig({'name': 'x', 'v': float('nan')})\nexcept ConfigError as e:\n    print('refused', e)\n")
    out = subprocess.run([sys.executable, "-O", "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("refused") and "'v'" in out


def test_hierarchy_is_rooted(store):
    import pylightnix.core.errors as E
    for name in ["ConfigError", "RefError", "ClosureError", "StoreError", "BuildError", "PromiseError",
                 "MatcherError", "FetchError", "ChecksumError", "UnsafeArchiveError", "ReplError", "BuildCancelled"]:
        assert issubclass(getattr(E, name), PylightnixError)


def test_every_public_exception_of_the_library_is_an_exported_pylightnix_error():
    """store.md: everything raised on purpose derives from PylightnixError (the attach and
    side-channel errors were plain Exceptions, SpecialFileError was not exported)."""
    import importlib
    import inspect
    import pkgutil
    import pylightnix
    found = set()
    for m in pkgutil.walk_packages(pylightnix.__path__, "pylightnix."):
        if m.name.endswith("__main__"):
            continue
        mod = importlib.import_module(m.name)
        for name, cls in vars(mod).items():
            if inspect.isclass(cls) and issubclass(cls, BaseException) and cls.__module__ == mod.__name__ \
                    and not name.startswith("_"):
                assert issubclass(cls, PylightnixError), f"{m.name}.{name}"
                assert getattr(pylightnix, name, None) is cls, f"{name} is not exported by pylightnix"
                found.add(name)
    assert {"AttachInfoError", "AttachError", "ChannelError", "SpecialFileError"} <= found
    assert issubclass(pylightnix.ChannelError, ConnectionError)
