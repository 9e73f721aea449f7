"""``python -m pylightnix.demo [--broken]``: run the demo from the installed package.

Without arguments it runs ``demo.py`` (train once, then serve from the store);
``--broken`` runs ``broken_demo.py`` (the design document's failing rebuild).
"""
import os
import runpy
import sys


def main() -> None:
    try:
        import numpy  # noqa: F401
    except ImportError:
        sys.exit("pylightnix.demo needs numpy: install the 'demo' extra, e.g. pip install -e '.[demo]' "
                 "in the checkout")
    script = "broken_demo.py" if sys.argv[1:] == ["--broken"] else "demo.py"
    if sys.argv[1:] not in ([], ["--broken"]):
        sys.exit("usage: python -m pylightnix.demo [--broken]")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), script)
    sys.argv = [path]
    runpy.run_path(path, run_name="__main__")


if __name__ == "__main__":
    main()
