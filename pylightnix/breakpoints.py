"""``pylightnix.breakpoints``, the import path the docs show, is :mod:`pylightnix.engine.breakpoints`
(the same module object, not a copy)."""
import sys

from pylightnix.engine import breakpoints

sys.modules[__name__] = breakpoints
