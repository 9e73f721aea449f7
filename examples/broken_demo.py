"""The design document's first step: a forced rebuild of ``convnn_mnist`` fails
with the stage's own ``AttributeError`` (the model has no ``load`` method).

Run it with the "Failed builds" filter in VS Code, or in a terminal with

    python -m pylightnix debug --break-on-failure examples/broken_demo.py

to stop with the trained model alive, fix it by hand and commit.
"""
import sys
from os.path import dirname

sys.path.insert(0, dirname(__file__))

from mnist import *  # noqa: E402,F401
from mnist import convnn_mnist  # noqa: E402
from pylightnix import instantiate, realize, store_initialize  # noqa: E402

if __name__ == "__main__":
    store_initialize()
    rref = realize(instantiate(convnn_mnist), force_rebuild=True)   # Spoiler: will fail
    print(rref)
