"""Raises out of the program: the 'uncaught' filter must still stop while untraced."""
import sys


def fail():
    raise ValueError("boom")


print("crash", "traced" if sys.gettrace() else "untraced", flush=True)
fail()
