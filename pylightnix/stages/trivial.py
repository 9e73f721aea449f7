"""The original's ``pylightnix.stages.trivial`` import path (see pylightnix.trivial)."""
# flake8: noqa: F401
from pylightnix.trivial import mkfile, mknode
