"""The engine's public calls, which both drivers (sequential and parallel) use:
``drive`` runs the steps and can stop at a pause and resume there; ``realization``
owns the start and end events and the temporary folder, however the realization ends."""
import os

import pytest

from pylightnix import Frontend, StoreError, instantiate, realize
from pylightnix.core.store import store_rrefs_, tmp_root
from pylightnix.engine import events
from pylightnix.engine.steps import build_one, drive, ignore, match, needed, realization, realize_steps
from core_stages import chain


class Recorder(Frontend):
    handles_pauses = False

    def __init__(self):
        self.seen = []

    def on_realize_start(self, *, target, total, **kw):
        self.seen.append(("start", total))

    def on_realize_end(self, *, target, total, error, **kw):
        self.seen.append(("end", total, type(error).__name__ if error else None))


def test_drive_stops_at_a_chosen_pause_and_resumes_there(store):
    closure = instantiate(chain, 3)
    order = [d.dref for d in needed(closure)]
    steps = realize_steps(closure, interrupt=set(order[1:]))
    handled = []
    first = drive(steps, handled.append, stop=lambda p: p.dref == order[1])
    assert first.dref == order[1] and first.pending and handled == []
    second = drive(steps, handled.append, stop=lambda p: p.dref == order[2])
    assert second.dref == order[2]
    rrefs = drive(steps, handled.append)
    assert isinstance(rrefs, list) and len(rrefs) == 1 and handled == []
    assert realize(closure) == rrefs[0]  # built once: now matched


def test_realization_tells_start_and_end_once_and_drops_its_folder_on_error(store):
    closure = instantiate(chain, 2)
    rec = Recorder()
    with events.using([rec]):
        with pytest.raises(StoreError, match="was expected to be realized already"):
            with realization(closure, assert_realized={closure.dref}) as r:
                for i, drv in enumerate(r.order):
                    ctx = r.context(drv)
                    if match(drv, ctx) is None:
                        session = r.area.session(drv.dref)  # the folder exists while the realization runs
                        assert os.path.isdir(session.outdir) and session.outdir.startswith(tmp_root())
                        r.must_build(drv)
                        r.results[drv.dref] = drive(build_one(drv, ctx, i, r.total, False, False, {}, r.area),
                                                    ignore)
    assert rec.seen == [("start", 2), ("end", 2, "StoreError")]
    assert not os.path.exists(r.area.path)
    first = needed(closure)[0]
    assert len(store_rrefs_(first.dref)) == 1  # built before the asserted target refused to build
