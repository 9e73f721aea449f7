"""The tunnel that carries a Dask worker's connections to the driver's pause hub over Dask's
own connections (pylightnix/scale/tunnel.py), against a real LocalCluster of worker
processes: what it refuses to anyone who can talk to the scheduler, what never sits in the
scheduler's event log, and that a killed driver cancels a build paused through it."""
from __future__ import annotations

import os
import re
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import pytest

from pylightnix.scale import tunnel
from pylightnix.scale.hub import PauseHub
from test_remote_pauses import ATTACH_LINE, attach, driver_factory, env, realization  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(180)


def _open_from_worker(topics: Dict[str, str], secret: str, role: str) -> str:
    """A task: open a tunnel as a worker would; "OK" (then closed) or the refusal."""
    try:
        sock = tunnel.dialer(topics, secret)({"role": role}, 5.0)
    except Exception as e:
        return f"REFUSED {e}"
    sock.close()
    return "OK"


class Answers:
    """What the relay sends on a run's DOWN topic, as an attacker subscribed to it sees it."""

    def __init__(self, client: Any, topic: str) -> None:
        self.got: List[list] = []
        self.cond = threading.Condition()
        client.subscribe_topic(topic, self._event)

    def _event(self, event: Any) -> None:
        with self.cond:
            self.got.append(list(event[1]))
            self.cond.notify_all()

    def for_tunnel(self, tid: str, timeout: float) -> List[list]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not [m for m in self.got if m[0] == tid] and time.monotonic() < deadline:
                self.cond.wait(0.1)
            return [m for m in self.got if m[0] == tid]


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PYLIGHTNIX_DEBUG_DIR", str(tmp_path / "debug"))
    h = PauseHub()
    yield h
    h.close()


def test_relay_opens_hub_connections_only_for_openers_proving_the_secret(client, cluster, hub) -> None:
    """A worker task with the hub's secret gets a hub connection as a worker; with another
    secret, or asking for a role a worker does not have (``attach``), it is refused. Another
    client of the scheduler (anyone who can talk to it) that replays a genuine opening from
    the scheduler's event log, or forges one, gets nothing from the hub."""
    from distributed import Client
    relay = tunnel.Relay(client, hub.address)
    try:
        topics = relay.topics()
        assert client.submit(_open_from_worker, topics, hub.secret, "worker", pure=False).result(60) == "OK"
        wrong = client.submit(_open_from_worker, topics, secrets.token_hex(32), "worker", pure=False).result(60)
        assert wrong.startswith("REFUSED") and "did not prove the hub's secret" in wrong, wrong
        role = client.submit(_open_from_worker, topics, hub.secret, "attach", pure=False).result(60)
        assert role.startswith("REFUSED") and "may only be a worker or stream" in role, role

        with Client(cluster.scheduler_address) as other:  # the attacker: another client of the scheduler
            answers = Answers(other, topics["down"])
            time.sleep(0.5)
            genuine = [e[1] for e in other.get_events(topics["up"]) if e[1][2] == "open"]
            assert genuine and all(hub.secret not in repr(m) for m in genuine)
            tid, _, _, payload = genuine[0]
            other.log_event(topics["up"], [tid, 0, "open", payload])  # replayed: the id was used
            forged = secrets.token_hex(16)
            other.log_event(topics["up"], [forged, 0, "open", {"hello": {"role": "worker"}, "proof": "0" * 64}])
            refused = answers.for_tunnel(forged, 10)
            assert refused and refused[0][2] == "error" and "did not prove" in refused[0][3], refused
            assert answers.for_tunnel(tid, 2) == []  # the replay got no answer at all: no hub connection
    finally:
        relay.close()


def test_the_secret_never_sits_in_the_schedulers_event_log(env, cluster, driver_factory) -> None:
    """A build paused on a Dask worker, attached and committed through the tunnel: the hub's
    secret is in none of the events the scheduler keeps (which any of its clients can read)."""
    from distributed import Client
    from pylightnix.wire import attach_info
    env["PYLIGHTNIX_BREAK"] = "beta"
    d = driver_factory(f"dask:{cluster.scheduler_address}", env)
    pause_id = d.wait_for(ATTACH_LINE)[0].group(3)
    (hub_file,) = [p for p in Path(env["PYLIGHTNIX_DEBUG_DIR"]).glob("attach-*.json")
                   if attach_info.read(str(p)).get("role") == "hub"]
    secret = attach_info.read(str(hub_file))["secret"]
    out = attach(env, "b = Model(repl_buildargs()); train(b)\nrepl_continueBuild(b)\n", pause_id)
    assert out.returncode == 0, out.stderr
    assert d.finish() and d.proc.returncode == 0
    with Client(cluster.scheduler_address) as c:
        events = c.get_events()
    tunnels = [t for t in events if t.startswith("pylightnix-tunnel-")]
    assert tunnels, list(events)  # the pause did go through a tunnel
    assert sum(len(events[t]) for t in tunnels) > 4
    assert secret not in repr(events)


def test_a_killed_driver_cancels_a_build_paused_through_the_tunnel(env, cluster, driver_factory) -> None:
    """SIGKILL to the driver while beta is paused on a Dask worker: the worker stops hearing
    the relay's heartbeat and cancels the build within the silence limit (nothing of beta is
    stored; beta's realizer never runs); the worker itself lives on."""
    from distributed import Client
    env["PYLIGHTNIX_BREAK"] = "beta"
    d = driver_factory(f"dask:{cluster.scheduler_address}", env)
    d.wait_for(ATTACH_LINE)
    with Client(cluster.scheduler_address) as c:
        workers = set(c.scheduler_info()["workers"])
        before = len(tunnel_ids(c))
        assert before >= 1
        os.kill(d.proc.pid, signal.SIGKILL)
        d.proc.wait(10)
        deadline = time.monotonic() + tunnel.SILENCE + 15
        while tunnel_ids(c) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert tunnel_ids(c) == [], "the worker kept its tunnel to a dead driver"
        assert set(c.scheduler_info()["workers"]) == workers  # no worker died
    assert realization(env, "beta") == []
    assert "beta" not in [r.split()[0] for r in d.runs()]


def tunnel_ids(c: Any) -> List[str]:
    """Tunnels open on the cluster's workers."""
    return [t for ids in c.run(tunnel.tunnels_open).values() for t in ids]


def test_tunnel_names_are_unguessable_per_run(client, hub) -> None:
    a, b = tunnel.Relay(client, hub.address), tunnel.Relay(client, hub.address)
    try:
        names = [a.up, a.down, b.up, b.down]
        assert len(set(names)) == 4
        assert all(re.fullmatch(r"pylightnix-tunnel-[0-9a-f]{32}-(up|down)", n) for n in names)
    finally:
        a.close()
        b.close()
