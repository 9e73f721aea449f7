"""``python -m pylightnix``: the store CLI (see pylightnix.cli)."""
import sys

from pylightnix.cli import main

sys.exit(main())
