"""How fast can a paused build's traffic ride Dask's own connections? (issue 16)

    .venv/bin/python bench/bench_dask_transport.py [--rounds 200] [--big 1048576]

A build paused on a worker on another host must reach the user through the
connections Dask already has (worker -> scheduler <- client), not through a port of
its own. This measures, on a real ``LocalCluster`` of worker processes, the candidates
for carrying a console's or a debugger's messages between the driver (a client) and a
task running on a worker:

- ``queue``: two ``distributed.Queue``s held by the scheduler, one each way
  (``Pub``/``Sub`` topics are gone from distributed 2026.x);
- ``events``: ``log_event`` one way and ``subscribe_topic`` handlers the other (the
  task subscribes through its worker's client);
- ``tcp``: a plain loopback socket, the baseline that only works on one machine.

For each: the median round trip of a small message (a DAP request is ~200 bytes) and
the time for one 1 MB message to arrive (a cell that prints a lot). Prints a table;
the transport chosen for pauses on other hosts is explained in docs/scale-out.md.
"""
from __future__ import annotations

import argparse
import socket
import statistics
import threading
import time
from typing import Callable, Dict, List, Tuple

SMALL = b"x" * 200


def _echo_queue(inbox: str, outbox: str, rounds: int) -> int:
    """Task on the worker: echo every item of queue ``inbox`` back on ``outbox``."""
    from distributed import Queue
    qin, qout = Queue(inbox), Queue(outbox)
    for _ in range(rounds):
        qout.put(qin.get(timeout=60))
    return rounds


def _echo_events(inbox: str, outbox: str, rounds: int) -> int:
    """Task on the worker: echo every event of topic ``inbox`` back as an event ``outbox``."""
    import queue

    from distributed import get_client, get_worker
    got: "queue.Queue[bytes]" = queue.Queue()
    client, worker = get_client(), get_worker()
    client.subscribe_topic(inbox, lambda event: got.put(event[1]))
    worker.log_event(outbox, b"ready")
    for _ in range(rounds):
        worker.log_event(outbox, got.get(timeout=60))
    return rounds


def _echo_tcp(port: int, rounds: int) -> int:
    """Task on the worker: connect to the driver's loopback port and echo length-prefixed frames."""
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rwb")
    for _ in range(rounds):
        n = int.from_bytes(f.read(4), "big")
        f.write(n.to_bytes(4, "big") + f.read(n))
        f.flush()
    return rounds


def bench_queue(client, rounds: int, big: int) -> Tuple[List[float], float]:
    from distributed import Queue
    qin, qout = Queue("to-worker"), Queue("to-driver")
    fut = client.submit(_echo_queue, "to-worker", "to-driver", rounds + 1, pure=False)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        qin.put(SMALL)
        qout.get(timeout=30)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    qin.put(b"y" * big)
    assert len(qout.get(timeout=60)) == big
    big_t = time.perf_counter() - t0
    fut.result()
    return times, big_t


def bench_events(client, rounds: int, big: int) -> Tuple[List[float], float]:
    import queue
    got: "queue.Queue[bytes]" = queue.Queue()
    client.subscribe_topic("ev-to-driver", lambda event: got.put(event[1]))
    fut = client.submit(_echo_events, "ev-to-worker", "ev-to-driver", rounds + 1, pure=False)
    assert got.get(timeout=60) == b"ready"
    time.sleep(0.5)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        client.log_event("ev-to-worker", SMALL)
        got.get(timeout=30)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    client.log_event("ev-to-worker", b"y" * big)
    assert len(got.get(timeout=60)) == big
    big_t = time.perf_counter() - t0
    fut.result()
    client.unsubscribe_topic("ev-to-driver")
    return times, big_t


def bench_tcp(client, rounds: int, big: int) -> Tuple[List[float], float]:
    srv = socket.create_server(("127.0.0.1", 0))
    fut = client.submit(_echo_tcp, srv.getsockname()[1], rounds + 1, pure=False)
    conn, _ = srv.accept()
    f = conn.makefile("rwb")

    def round_trip(data: bytes) -> float:
        t0 = time.perf_counter()
        f.write(len(data).to_bytes(4, "big") + data)
        f.flush()
        n = int.from_bytes(f.read(4), "big")
        assert len(f.read(n)) == len(data)
        return time.perf_counter() - t0

    times = [round_trip(SMALL) for _ in range(rounds)]
    big_t = round_trip(b"y" * big)
    fut.result()
    conn.close()
    srv.close()
    return times, big_t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=200)
    p.add_argument("--big", type=int, default=1 << 20)
    ns = p.parse_args()
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster, Client(cluster) as client:
        benches: Dict[str, Callable] = {"queue": bench_queue, "events": bench_events, "tcp": bench_tcp}
        print(f"{'transport':10s} {'small round trip (median, p90)':>32s} {'1 MB round trip':>16s}")
        for name, bench in benches.items():
            times, big_t = bench(client, ns.rounds, ns.big)
            times.sort()
            print(f"{name:10s} {statistics.median(times) * 1e3:20.2f} ms {times[int(len(times) * 0.9)] * 1e3:7.2f} ms"
                  f" {big_t * 1e3:13.1f} ms")


if __name__ == "__main__":
    main()
