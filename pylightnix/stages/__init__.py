"""The original's ``pylightnix.stages`` import path: the ready-made stages."""
# flake8: noqa: F401
from pylightnix.stages.fetch import fetchlocal, fetchurl
from pylightnix.stages.trivial import mkfile, mknode
