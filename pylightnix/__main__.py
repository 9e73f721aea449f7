"""``python -m pylightnix``: the store CLI (see pylightnix.frontends.cli)."""
import sys

from pylightnix.frontends.cli import main

sys.exit(main())
