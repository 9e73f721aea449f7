"""``instantiate_inplace`` and ``realize_inplace``: the original's REPL and
notebook shortcuts, which keep every derivation in one global Manager instead
of passing a Manager around."""
from __future__ import annotations

from typing import Any, List, Union

from pylightnix.engine.manager import Closure, Manager, instantiate_
from pylightnix.engine.realize import realize
from pylightnix.types import DRef, RRef

#: The global Manager of ``instantiate_inplace``/``realize_inplace``.
PYLIGHTNIX_MANAGER = Manager()


def instantiate_inplace(stage: Any, *args: Any, **kwargs: Any) -> DRef:
    """Run ``stage(PYLIGHTNIX_MANAGER, *args, **kwargs)``; return the stage's DRef."""
    return instantiate_(PYLIGHTNIX_MANAGER, stage, *args, **kwargs).dref


def realize_inplace(dref: DRef, force_rebuild: Union[bool, List[DRef]] = False) -> RRef:
    """Realize ``dref`` with the derivations the global Manager knows."""
    return realize(Closure(DRef(dref), list(PYLIGHTNIX_MANAGER.builders.values())), force_rebuild=force_rebuild)
