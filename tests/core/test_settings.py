"""pylightnix.settings: one on/off convention for every variable, read at call time, and a
clear error naming the variable for a value it does not accept."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from pylightnix import ExecutorError, PylightnixError, SettingsError, settings
from pylightnix.settings import SETTINGS

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: each on/off variable and the accessor that reads it, with its default
BOOLS = {
    "PYLIGHTNIX_FSYNC": (settings.fsync, True),
    "PYLIGHTNIX_PROGRESS": (settings.progress, True),
    "PYLIGHTNIX_BREAK_ON_FAILURE": (settings.break_on_failure, False),
    "PYLIGHTNIX_REMOTE_PAUSES": (settings.remote_pauses, True),
    "PYLIGHTNIX_DEBUG_WAIT": (settings.debug_wait, None),
}
OFF_VALUES = ["0", "false", "FALSE", "False", "no", "No", "off", "OFF", " off "]
ON_VALUES = ["1", "true", "True", "yes", "YES", "on", "On"]


def test_every_on_off_variable_is_tested():
    assert set(BOOLS) == {n for n, s in SETTINGS.items() if s.accepts == settings._BOOL}


@pytest.mark.parametrize("name", sorted(BOOLS))
def test_on_off_convention(name, monkeypatch):
    read, default = BOOLS[name]
    for v in OFF_VALUES:
        monkeypatch.setenv(name, v)
        assert read() is False, (name, v)
    for v in ON_VALUES:
        monkeypatch.setenv(name, v)
        assert read() is True, (name, v)
    for v in ["", "  "]:
        monkeypatch.setenv(name, v)
        assert read() is default
    monkeypatch.delenv(name)
    assert read() is default
    for bad in ["bogus", "2", "enabled", "n"]:
        monkeypatch.setenv(name, bad)
        with pytest.raises(SettingsError) as ei:
            read()
        msg = str(ei.value)
        assert name in msg and repr(bad) in msg and "0/false/no/off" in msg and "1/true/yes/on" in msg, msg
        assert isinstance(ei.value, PylightnixError) and isinstance(ei.value, ValueError)


def test_false_means_off_everywhere(monkeypatch):
    """PYLIGHTNIX_FSYNC=False and PYLIGHTNIX_REMOTE_PAUSES=False left their features on,
    while PYLIGHTNIX_PROGRESS=False turned progress off."""
    from pylightnix import progress, remote, store
    monkeypatch.setenv("PYLIGHTNIX_FSYNC", "False")
    monkeypatch.setenv("PYLIGHTNIX_REMOTE_PAUSES", "False")
    monkeypatch.setenv("PYLIGHTNIX_PROGRESS", "False")
    assert not store._sync_each() and not remote.enabled() and not progress.enabled()
    monkeypatch.setenv("PYLIGHTNIX_FSYNC", "ON")
    monkeypatch.setenv("PYLIGHTNIX_REMOTE_PAUSES", "yes")
    monkeypatch.setenv("PYLIGHTNIX_PROGRESS", "true")
    assert remote.enabled() and progress.enabled()


def test_numbers_and_choices(monkeypatch):
    monkeypatch.setenv("PYLIGHTNIX_REATTACH_TIMEOUT", "0")
    assert settings.reattach_timeout() == 0.0
    monkeypatch.setenv("PYLIGHTNIX_DASK_TIMEOUT", "2.5")
    assert settings.dask_timeout() == 2.5
    for name, read, bad in [("PYLIGHTNIX_REATTACH_TIMEOUT", settings.reattach_timeout, "-1"),
                            ("PYLIGHTNIX_REATTACH_TIMEOUT", settings.reattach_timeout, "soon"),
                            ("PYLIGHTNIX_DASK_TIMEOUT", settings.dask_timeout, "0"),
                            ("PYLIGHTNIX_DASK_TIMEOUT", settings.dask_timeout, "nan"),
                            ("PYLIGHTNIX_EXECUTOR", settings.executor, "threads"),
                            ("PYLIGHTNIX_EXECUTOR", settings.executor, "processes:0"),
                            ("PYLIGHTNIX_NO_TTY", settings.no_tty, "maybe")]:
        monkeypatch.setenv(name, bad)
        with pytest.raises(SettingsError, match=f"{name}={bad!r} is not valid") as ei:
            read()
        assert SETTINGS[name].accepts.split(",")[0].split(" (")[0] in str(ei.value)
    # the executor's variables still raise what code catching ExecutorError expects
    with pytest.raises(ExecutorError):
        settings.executor()  # PYLIGHTNIX_EXECUTOR=processes:0 from above
    monkeypatch.setenv("PYLIGHTNIX_EXECUTOR", "Processes:3")
    assert settings.parse_executor_spec(settings.executor()) == ("processes", 3)
    monkeypatch.setenv("PYLIGHTNIX_NO_TTY", " FAIL ")
    assert settings.no_tty() == "fail"
    monkeypatch.setenv("PYLIGHTNIX_BREAK", " a, ,convnn_* ,")
    assert settings.break_patterns() == ["a", "convnn_*"]


def test_paths(monkeypatch, tmp_path):
    for n in ("PYLIGHTNIX_STORE", "PYLIGHTNIX_TMP"):
        monkeypatch.delenv(n, raising=False)
    monkeypatch.setenv("PYLIGHTNIX_ROOT", str(tmp_path))
    assert (settings.store_dir(), settings.tmp_dir()) == (str(tmp_path / "store-v0"), str(tmp_path / "tmp"))
    monkeypatch.setenv("PYLIGHTNIX_STORE", "/elsewhere")
    assert settings.store_dir() == "/elsewhere"


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("PYLIGHTNIX_")}
    full.update(PYTHONPATH=REPO, **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full, capture_output=True,
                          text=True, timeout=120)


def test_bad_values_do_not_break_import(tmp_path):
    """Nothing is read at import: a bad value of every variable still imports pylightnix
    (and the adapter); PYLIGHTNIX_FSYNC and PYLIGHTNIX_BREAK* were read at import."""
    bad = {n: "bogus" for n in SETTINGS if n not in ("PYLIGHTNIX_ROOT", "PYLIGHTNIX_STORE", "PYLIGHTNIX_TMP",
                                                      "PYLIGHTNIX_DEBUG_DIR", "PYLIGHTNIX_BREAK")}
    r = _run("import pylightnix, pylightnix.cli, pylightnix.debug, dap_adapter.adapter; print('imported')",
             PYLIGHTNIX_ROOT=str(tmp_path), **bad)
    assert r.returncode == 0 and r.stdout.strip() == "imported", r.stderr


@pytest.mark.parametrize("name", ["PYLIGHTNIX_FSYNC", "PYLIGHTNIX_BREAK_ON_FAILURE"])
def test_bad_value_fails_clearly_when_used(name, tmp_path):
    r = _run("""
        import pylightnix
        from pylightnix import SettingsError, instantiate, mkdrv, mkconfig, match_only, build_wrapper, realize
        def stage(m):
            return mkdrv(m, mkconfig({'name': 'one'}), match_only(), build_wrapper(lambda b: None))
        try:
            realize(instantiate(stage))
        except SettingsError as e:
            print('refused:', e)
        """, PYLIGHTNIX_ROOT=str(tmp_path), PYLIGHTNIX_PROGRESS="0", **{name: "bogus"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"refused: {name}='bogus' is not valid; expected on: 1/true/yes/on"), r.stdout
    assert not os.path.isdir(tmp_path / "store-v0") or not [
        d for d in os.listdir(tmp_path / "store-v0") if not d.startswith(".")
        and any(not f.endswith(".json") for f in os.listdir(tmp_path / "store-v0" / d))], "something was stored"
