"""``pylightnix.journal``, the import path the docs show, is :mod:`pylightnix.core.journal`
(the same module object, not a copy)."""
import sys

from pylightnix.core import journal

sys.modules[__name__] = journal
