"""``python -m dap_adapter``: the adapter process (:mod:`dap_adapter.adapter.__main__`)."""
import sys

from dap_adapter.adapter.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
