"""The design document's demo pipeline, shipped as ``pylightnix.demo``.

In a checkout these files are ``examples/``; installed, they are the package
``pylightnix.demo``, run with ``python -m pylightnix.demo`` (needs numpy: the
``demo`` extra).
"""
