"""A program with two threads: one realizes the pipeline, the other keeps counting.

THREADS_MODE=ticker: the main thread realizes, a background thread counts.
THREADS_MODE=worker: a worker thread realizes, the (untraced) main thread counts.
"""
import os
import threading
import time
from os.path import join

from pylightnix import build_outpath, build_wrapper, instantiate, match_only, mkconfig, mkdrv, realize, \
    store_initialize


class Ticker(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.count = 0
        self.running = True

    def run(self):
        while self.running:
            self.count += 1
            time.sleep(0.005)


ticker = Ticker()


def stage_realize(b):
    with open(join(build_outpath(b), "count.txt"), "w") as f:
        f.write(str(ticker.count))


def stage(m):
    return mkdrv(m, mkconfig({"name": "threaded"}), match_only(), build_wrapper(stage_realize))


main_count = 0

if __name__ == "__main__":
    store_initialize()
    if os.environ.get("THREADS_MODE") == "worker":
        worker = threading.Thread(target=lambda: realize(instantiate(stage)))
        worker.start()
        while worker.is_alive():
            main_count += 1
            time.sleep(0.005)
    else:
        ticker.start()
        time.sleep(0.05)
        realize(instantiate(stage))
        ticker.running = False
    print("THREADS-DONE", flush=True)
