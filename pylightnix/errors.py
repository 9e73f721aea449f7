"""The exception hierarchy. Every error pylightnix raises on purpose is a
:class:`PylightnixError`; a user's own exception inside a stage propagates
unchanged and is never wrapped.

    PylightnixError
    ├── ConfigError        a config is not valid JSON-like data, or lacks/has a bad field
    ├── RefError           a string is not a valid dref:/rref: reference or name
    ├── ClosureError       instantiate/realize misuse: unknown derivation, bad stage, recursion
    ├── StoreError         the store is missing something or is inconsistent
    ├── BuildError         a realizer returned bad outputs (missing folder, reserved name)
    │   └── PromiseError   a promised output file was not produced
    ├── MatcherError       a matcher is not satisfied by what its realizer built
    ├── FetchError         a download failed
    │   ├── ChecksumError  the sha256 of a download does not match
    │   └── UnsafeArchiveError  an archive tries to write outside its folder
    ├── ReplError          repl_* misuse: nothing paused, or something already paused
    ├── ExecutorError      a bad executor (PYLIGHTNIX_EXECUTOR, a missing extra, an unshippable stage)
    ├── FrontendError      a frontend's hook cannot take the hook's arguments (also a ``TypeError``)
    ├── SettingsError      a PYLIGHTNIX_* environment variable has a value it does not accept
    │                      (docs/settings.md); also a ``ValueError``
    │   └── ExecutorSettingsError  a bad PYLIGHTNIX_EXECUTOR or PYLIGHTNIX_DASK_TIMEOUT (also an
    │                      ``ExecutorError``)
    ├── BuildCancelled     a paused build was cancelled; the store is as it was
    ├── AttachInfoError    an attach file or the debug folder (PYLIGHTNIX_DEBUG_DIR) cannot be used
    ├── AttachError        ``pylightnix attach``: no such paused build, or it cannot be reached
    ├── PauseNotServed     a build could not pause on its worker (the driver's pause hub is out of
    │                      its reach); the parallel driver then builds it itself, and says so
    └── ChannelError       a side-channel peer refused, failed a request or went away
                           (also a ``ConnectionError``)

``SpecialFileError`` (a ``StoreError``: a FIFO, socket or device where a file was
expected) is defined in :mod:`pylightnix.store` and exported by ``pylightnix``.

Every class above from ``ConfigError`` to ``ReplError`` also
derives from ``AssertionError``: the original pylightnix reported all of these
with ``assert``, and code written for it catches ``AssertionError``. They are
always raised explicitly, so ``python -O`` does not remove them.
"""
from __future__ import annotations

from typing import Optional


class PylightnixError(Exception):
    """Root of all errors raised by pylightnix itself."""

    def __init__(self, message: str, *, dref: Optional[str] = None) -> None:
        super().__init__(message)
        #: the derivation the error is about, when there is one
        self.dref = dref


class ConfigError(PylightnixError, ValueError, AssertionError):
    """A config is invalid. ``key`` is the path of the offending field."""

    def __init__(self, message: str, *, key: Optional[str] = None, dref: Optional[str] = None) -> None:
        super().__init__(message, dref=dref)
        self.key = key


class RefError(PylightnixError, ValueError, AssertionError):
    """A reference or a name is malformed."""


class ClosureError(PylightnixError, AssertionError):
    """``instantiate``/``realize`` were used in a way that cannot work."""


class StoreError(PylightnixError, AssertionError):
    """The store lacks an object or is inconsistent."""


class BuildError(PylightnixError, AssertionError):
    """A realizer's outputs cannot become a realization."""


class PromiseError(BuildError):
    """A promised output path was not produced by the realizer."""


class MatcherError(PylightnixError, AssertionError):
    """A matcher's answer is inconsistent with its derivation's realizations."""


class FetchError(PylightnixError, AssertionError):
    """Downloading or copying a source failed."""


class ChecksumError(FetchError):
    """The sha256 of fetched data does not match the expected one."""


class UnsafeArchiveError(FetchError):
    """An archive member would land outside the output folder."""


class ReplError(PylightnixError, AssertionError):
    """A ``repl_*`` function was called when it cannot act."""


class ExecutorError(PylightnixError):
    """An executor cannot be made or used: a bad ``PYLIGHTNIX_EXECUTOR``, a missing
    optional package, a stage that cannot be shipped to a worker."""


class FrontendError(PylightnixError, TypeError):
    """A frontend's hook cannot be called with the hook's arguments (neither by keyword nor,
    written the old way, positionally); raised when the frontend is registered or given to
    ``realize``, naming the hook."""


class SettingsError(PylightnixError, ValueError):
    """A ``PYLIGHTNIX_*`` environment variable (or the command-line option that sets the same
    thing, e.g. ``--no-tty``) has a value it does not accept; the message names the variable,
    the value and what is accepted (:mod:`pylightnix.settings`)."""


class ExecutorSettingsError(SettingsError, ExecutorError):
    """A bad ``PYLIGHTNIX_EXECUTOR`` or ``PYLIGHTNIX_DASK_TIMEOUT``: a settings error that
    code catching :class:`ExecutorError` (as before settings were checked in one place) still catches."""


class BuildCancelled(PylightnixError):
    """A paused build was cancelled by the user; nothing was stored."""


class AttachInfoError(PylightnixError):
    """An attach file, or the folder of attach files (``PYLIGHTNIX_DEBUG_DIR``), cannot be
    used: missing, not the user's own, writable by others, or not a sane attach file."""


class AttachError(PylightnixError):
    """``pylightnix attach``: no such paused build, or it cannot be reached."""


class ChannelError(PylightnixError, ConnectionError):
    """A side-channel peer refused the connection, failed a request, or went away."""


class PauseNotServed(PylightnixError):
    """A build that should pause on its worker could not: the worker cannot reach the
    driver's pause hub, or the hub did not take the pause. Raised on the worker instead of
    building on without the pause; the parallel driver catches it, says so in every
    frontend (``on_notice``) and builds the derivation itself, where the pause is served."""
