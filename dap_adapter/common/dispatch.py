"""Handlers found by name: the method ``<name>_<kind>`` of the component serving a peer.

A DAP request ``launch`` is handled by ``launch_request``, a debugpy event
``stopped`` by ``stopped_event``, a side-channel request ``hello`` by
``hello_request`` (names: :mod:`dap_adapter.common.protocol`). Adding a message
is adding a method; no if-chains. Only identifiers not starting with ``_`` name
handlers, so a peer can never reach any other attribute.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

REQUEST = "request"
EVENT = "event"


def handler(component: Any, name: Any, kind: str) -> Optional[Callable[..., Any]]:
    """``component``'s handler for message ``name`` of ``kind`` (:data:`REQUEST` or
    :data:`EVENT`), or None when it has none."""
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
        return None
    found = getattr(component, f"{name}_{kind}", None)
    return found if callable(found) else None
