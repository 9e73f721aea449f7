"""A fork server preload module that does what Python 3.14's fork server does and 3.10-3.13's
do not (their ``main_path`` never reaches the fork server): import the driver's script as
``__mp_main__`` before forking workers. ``multiprocessing.set_forkserver_preload([this])``
in a script, with ``PRELOAD_MAIN`` naming it, reproduces 3.14's failure mode on older
Pythons: an unguarded script kills the fork server, and the driver's connection to it
fails (``ConnectionResetError`` on 3.14, ``EOFError`` before)."""
import os
from multiprocessing import process, spawn

process.current_process()._inheriting = True  # as 3.14's forkserver.main sets it around the import
try:
    spawn.import_main_path(os.environ["PRELOAD_MAIN"])
finally:
    del process.current_process()._inheriting
