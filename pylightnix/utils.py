"""The original's ``pylightnix.utils`` import path: a re-export of the helpers it
held that this project has (see docs/compatibility.md). Nothing is defined here."""
# flake8: noqa: F401
from pylightnix.build import parsetime, timestring
from pylightnix.files import forcelink, mklogdir, tryread, trywrite
from pylightnix.refs import isdref, isrref, scanref_dict, traverse_dict
from pylightnix.store import dirhash
