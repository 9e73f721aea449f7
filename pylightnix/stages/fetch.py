"""The original's ``pylightnix.stages.fetch`` import path (see pylightnix.fetch)."""
# flake8: noqa: F401
from pylightnix.fetch import fetchlocal, fetchurl
