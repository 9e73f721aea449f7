"""``pylightnix.executors``, the import path the docs show, is :mod:`pylightnix.scale.executors`
(the same module object, not a copy)."""
import sys

from pylightnix.scale import executors

sys.modules[__name__] = executors
