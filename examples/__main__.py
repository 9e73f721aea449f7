"""``python -m pylightnix.demo [--broken]``: run the demo from the installed package.

Without arguments it runs ``demo.py`` (train once, then serve from the store);
``--broken`` runs ``broken_demo.py`` (the design document's failing rebuild).
"""
import os
import runpy
import shlex
import site
import sys


def numpy_hint() -> str:
    """A command that installs numpy for this very interpreter, wherever pylightnix came from
    (a wheel, a checkout; a venv or not): ``--user`` when pylightnix itself is a user install."""
    user = (sys.prefix == sys.base_prefix
            and os.path.abspath(__file__).startswith(os.path.join(site.getusersitepackages(), "")))
    return f"{shlex.quote(sys.executable)} -m pip install{' --user' if user else ''} 'numpy>=1.24'"


def main() -> None:
    try:
        import numpy  # noqa: F401
    except ImportError:
        sys.exit(f"pylightnix.demo needs numpy (the 'demo' extra); install it with: {numpy_hint()}")
    script = "broken_demo.py" if sys.argv[1:] == ["--broken"] else "demo.py"
    if sys.argv[1:] not in ([], ["--broken"]):
        sys.exit("usage: python -m pylightnix.demo [--broken]")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), script)
    sys.argv = [path]
    runpy.run_path(path, run_name="__main__")


if __name__ == "__main__":
    main()
