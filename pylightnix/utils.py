"""The original's ``pylightnix.utils`` import path: a re-export of the helpers it
held that this project has (see docs/compatibility.md). Nothing is defined here."""
# flake8: noqa: F401
from pylightnix.engine.build import parsetime, timestring
from pylightnix.core.files import forcelink, mklogdir, tryread, trywrite
from pylightnix.core.refs import isdref, isrref, scanref_dict, traverse_dict
from pylightnix.core.store import dirhash
