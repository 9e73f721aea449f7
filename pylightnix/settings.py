"""Every ``PYLIGHTNIX_*`` environment variable, read in one place, when asked.

Nothing here reads the environment at import time: each accessor reads its
variable when called, so a change of ``os.environ`` (a test, ``pylightnix --root``)
takes effect at the next call, and a bad value fails where it is used, not where
``pylightnix`` is imported. :data:`SETTINGS` is the table of every variable with
its default and accepted values; ``docs/settings.md`` shows the same table (a test
checks that they agree).

One convention for every on/off variable: ``0``, ``false``, ``no``, ``off`` (any
case) mean off; ``1``, ``true``, ``yes``, ``on`` mean on; empty or unset means the
default; anything else raises :class:`~pylightnix.errors.SettingsError` naming the
variable, its value and what is accepted.

The variables the debug adapter uses to hand a launched program its secrets
(``dap_adapter.common.protocol.ENV_*``) are a protocol between two processes of
ours, not settings: they are not read here.
"""
from __future__ import annotations

import os
from os.path import expanduser, join
from typing import Dict, List, NamedTuple, Optional, Tuple, Type, Union

from pylightnix.errors import ExecutorSettingsError, SettingsError

#: what ``PYLIGHTNIX_EXECUTOR`` accepts (its error message lists them all)
EXECUTOR_FORMS = ("sequential", "processes (one per CPU)", "processes:N", "dask (the default client)",
                  "dask:ADDRESS (e.g. dask:tcp://127.0.0.1:8786)")
#: seconds ``Dask(address=...)`` waits for its scheduler, and a build paused on a worker for a re-attach
DASK_TIMEOUT = 30.0
REATTACH_TIMEOUT = 600.0
OFF = ("0", "false", "no", "off")
ON = ("1", "true", "yes", "on")
_BOOL = "on: 1/true/yes/on; off: 0/false/no/off (any case)"


class Setting(NamedTuple):
    """One variable: its name, its default (as documented) and what it accepts."""
    name: str
    default: str
    accepts: str
    doc: str


#: every variable pylightnix reads (docs/settings.md shows the same table)
SETTINGS: Dict[str, Setting] = {s.name: s for s in [
    Setting("PYLIGHTNIX_ROOT", "~/_pylightnix", "a folder path",
            "where the store and the temporary folder are (``pylightnix --root`` sets it)"),
    Setting("PYLIGHTNIX_STORE", "$PYLIGHTNIX_ROOT/store-v0", "a folder path", "the store folder"),
    Setting("PYLIGHTNIX_TMP", "$PYLIGHTNIX_ROOT/tmp", "a folder path", "where builds run before they are stored"),
    Setting("PYLIGHTNIX_FSYNC", "on", _BOOL,
            "fsync a realization before it enters the store; off trades power-loss safety for speed"),
    Setting("PYLIGHTNIX_PROGRESS", "on", _BOOL, "one-line progress of realizations on stderr"),
    Setting("PYLIGHTNIX_BREAK", "(none)", "comma-separated derivation names or globs, e.g. train,convnn_*",
            "the initial build breakpoints"),
    Setting("PYLIGHTNIX_BREAK_ON_FAILURE", "off", _BOOL, "pause when a stage's realizer raises"),
    Setting("PYLIGHTNIX_EXECUTOR", "sequential",
            ", ".join(EXECUTOR_FORMS),
            "where realize builds stages when no executor= is given"),
    Setting("PYLIGHTNIX_DASK_TIMEOUT", f"{DASK_TIMEOUT:g}", "a number of seconds > 0",
            "how long Dask(address=...) waits for its scheduler"),
    Setting("PYLIGHTNIX_REMOTE_PAUSES", "on", _BOOL,
            "pause builds on their worker; off builds paused derivations in the driver"),
    Setting("PYLIGHTNIX_REATTACH_TIMEOUT", f"{REATTACH_TIMEOUT:g}", "a number of seconds >= 0",
            "how long a build paused on a worker waits for a re-attach after its attacher went away"),
    Setting("PYLIGHTNIX_NO_TTY", "continue", "continue, fail (any case)",
            "what a pause does with no terminal to open a shell in"),
    Setting("PYLIGHTNIX_DEBUG_WAIT", "on with build breakpoints, else off", _BOOL,
            "``pylightnix debug --listen`` holds the script until a debugger attached"),
    Setting("PYLIGHTNIX_DEBUG_DIR", "~/.cache/pylightnix/debug", "a folder path (private to the user)",
            "where attach files are written and looked for"),
]}


def _raw(name: str) -> str:
    assert name in SETTINGS, name
    return os.environ.get(name, "").strip()


def _bad(name: str, raw: str, error: Type[SettingsError] = SettingsError, why: str = "") -> SettingsError:
    return error(f"{name}={raw!r} is not valid{': ' + why if why else ''}; "
                 f"expected {SETTINGS[name].accepts}")


def flag(name: str, default: Optional[bool]) -> Optional[bool]:
    """The on/off variable ``name``: ``default`` when empty or unset; SettingsError when not
    one of :data:`ON` or :data:`OFF` (any case)."""
    raw = _raw(name)
    if not raw:
        return default
    if raw.lower() in ON:
        return True
    if raw.lower() in OFF:
        return False
    raise _bad(name, raw)


def _seconds(name: str, default: float, positive: bool) -> float:
    raw = _raw(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not (0 < value < 1e6 if positive else value >= 0):
        raise _bad(name, raw, ExecutorSettingsError if name == "PYLIGHTNIX_DASK_TIMEOUT" else SettingsError)
    return value


def _path(name: str, default: str) -> str:
    return _raw(name) or default


# ---------------------------------------------------------------- the store

def root() -> str:
    """``$PYLIGHTNIX_ROOT``, else ``~/_pylightnix``."""
    return _path("PYLIGHTNIX_ROOT", join(expanduser("~"), "_pylightnix"))


def store_dir() -> str:
    """``$PYLIGHTNIX_STORE``, else ``store-v0`` under :func:`root`."""
    return _path("PYLIGHTNIX_STORE", join(root(), "store-v0"))


def tmp_dir() -> str:
    """``$PYLIGHTNIX_TMP``, else ``tmp`` under :func:`root`."""
    return _path("PYLIGHTNIX_TMP", join(root(), "tmp"))


def fsync() -> bool:
    """Whether realizations are fsynced before they enter the store (default on)."""
    return bool(flag("PYLIGHTNIX_FSYNC", True))


# ---------------------------------------------------------------- frontends and breakpoints

def progress() -> bool:
    """Whether the progress frontend prints (default on)."""
    return bool(flag("PYLIGHTNIX_PROGRESS", True))


def break_patterns() -> List[str]:
    """The build breakpoints of ``$PYLIGHTNIX_BREAK`` (comma-separated, blanks dropped)."""
    return [p.strip() for p in _raw("PYLIGHTNIX_BREAK").split(",") if p.strip()]


def break_on_failure() -> bool:
    """Whether a failing realizer pauses (default off)."""
    return bool(flag("PYLIGHTNIX_BREAK_ON_FAILURE", False))


NO_TTY_CHOICES = ("continue", "fail")


def no_tty(value: Optional[str] = None, source: str = "--no-tty") -> Optional[str]:
    """A no-terminal policy: ``value`` (from ``source``, e.g. ``--no-tty``) if given, else
    ``$PYLIGHTNIX_NO_TTY``; None when neither says (the default is ``continue``)."""
    if value is None:
        value, source = _raw("PYLIGHTNIX_NO_TTY"), "PYLIGHTNIX_NO_TTY"
        if not value:
            return None
    choice = value.strip().lower()
    if choice not in NO_TTY_CHOICES:
        raise SettingsError(f"{source}={value!r} is not valid: choose one of {', '.join(NO_TTY_CHOICES)}")
    return choice


def debug_wait() -> Optional[bool]:
    """``$PYLIGHTNIX_DEBUG_WAIT`` as on/off, or None when unset (the caller decides)."""
    return flag("PYLIGHTNIX_DEBUG_WAIT", None)


def debug_dir() -> str:
    """``$PYLIGHTNIX_DEBUG_DIR``, else ``~/.cache/pylightnix/debug``."""
    return _path("PYLIGHTNIX_DEBUG_DIR", join(expanduser("~"), ".cache", "pylightnix", "debug"))


# ---------------------------------------------------------------- executors and remote pauses

ExecutorSpec = Tuple[str, Union[int, str, None]]


def parse_executor_spec(value: str) -> ExecutorSpec:
    """``(kind, arg)`` from an executor spec: ``("sequential", None)``, ``("processes", N or
    None)``, ``("dask", ADDRESS or None)``. ExecutorSettingsError naming the value otherwise
    (the address itself is checked by ``Dask``)."""
    name = "PYLIGHTNIX_EXECUTOR"
    kind, sep, arg = value.strip().partition(":")
    kind = kind.strip().lower()
    if kind == "sequential" and not sep:
        return ("sequential", None)
    if kind == "processes":
        if not sep:
            return ("processes", None)
        try:
            n = int(arg)
        except ValueError:
            n = 0
        if n < 1:
            raise _bad(name, value, ExecutorSettingsError, f"'processes:N' needs a positive number N, got {arg!r}")
        return ("processes", n)
    if kind == "dask":
        if sep and not arg.strip():
            raise _bad(name, value, ExecutorSettingsError, "'dask:ADDRESS' needs an address")
        return ("dask", arg.strip() or None)
    raise _bad(name, value, ExecutorSettingsError, "unknown executor")


def executor() -> Optional[str]:
    """The raw ``$PYLIGHTNIX_EXECUTOR`` (checked by :func:`parse_executor_spec`), or None
    when unset (then realize builds in its own process)."""
    raw = _raw("PYLIGHTNIX_EXECUTOR")
    if not raw:
        return None
    parse_executor_spec(raw)
    return raw


def dask_timeout() -> float:
    """``$PYLIGHTNIX_DASK_TIMEOUT`` seconds (default 30; > 0)."""
    return _seconds("PYLIGHTNIX_DASK_TIMEOUT", DASK_TIMEOUT, positive=True)


def remote_pauses() -> bool:
    """Whether builds on workers pause there (default on; off: the driver builds them)."""
    return bool(flag("PYLIGHTNIX_REMOTE_PAUSES", True))


def reattach_timeout() -> float:
    """``$PYLIGHTNIX_REATTACH_TIMEOUT`` seconds (default 600; >= 0)."""
    return _seconds("PYLIGHTNIX_REATTACH_TIMEOUT", REATTACH_TIMEOUT, positive=False)
