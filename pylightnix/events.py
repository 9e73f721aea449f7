"""``pylightnix.events``, the import path the docs show, is :mod:`pylightnix.engine.events`
(the same module object, not a copy)."""
import sys

from pylightnix.engine import events

sys.modules[__name__] = events
