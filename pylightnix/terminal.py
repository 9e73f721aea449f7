"""``pylightnix.terminal``, the import path the docs show, is :mod:`pylightnix.frontends.terminal`
(the same module object, not a copy)."""
import sys

from pylightnix.frontends import terminal

sys.modules[__name__] = terminal
