"""The events the progress frontend is fed by, and observers that never take a pause from its handler."""
import io

from pylightnix import *
from pylightnix import events
from pylightnix.progress import ProgressFrontend
from core_stages import chain


class Observer(Frontend):
    handles_pauses = False

    def __init__(self):
        self.seen = []

    def on_realize_start(self, *, target, total, **kw):
        self.seen.append(("start", target.split("-", 1)[1], total))

    def on_progress(self, *, index, total, dref, name, **kw):
        self.seen.append(("progress", index, name))

    def on_pause(self, *, pause, **kw):
        self.seen.append(("pause", pause.name))

    def on_realize_end(self, *, target, total, error, **kw):
        self.seen.append(("end", type(error).__name__ if error else None))


class Handler(Frontend):
    def __init__(self):
        self.paused = []

    def on_pause(self, *, pause, **kw):
        self.paused.append(pause.name)
        pause.cancel()


def test_observer_sees_the_realization_and_the_handler_resolves_the_pause(store):
    realize(instantiate(chain, 1))
    handler, observer = add_frontend(Handler()), add_frontend(Observer())  # the observer is added last
    try:
        set_build_breakpoints(["s2"])
        try:
            realize(instantiate(chain, 3))
            raise AssertionError("the handler cancelled the pause; realize must raise")
        except BuildCancelled:
            pass
    finally:
        remove_frontend(observer)
        remove_frontend(handler)
    assert handler.paused == ["s2"]
    assert observer.seen == [("start", "s2", 3), ("progress", 1, "s1"), ("pause", "s2"),
                             ("end", "BuildCancelled")]


def test_progress_frontend_on_a_stream_that_is_not_a_terminal(store, monkeypatch):
    monkeypatch.delenv("PYLIGHTNIX_PROGRESS")
    out = io.StringIO()
    f = add_frontend(ProgressFrontend(out))
    try:
        realize(instantiate(chain, 2))
        realize(instantiate(chain, 2))  # all cached: silent
    finally:
        remove_frontend(f)
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["[pylightnix] building s0 (stage 1 of 2)", "[pylightnix] building s1 (stage 2 of 2)"]
    assert lines[2].startswith("[pylightnix] realized s1: 2 built, 0 cached, ") and len(lines) == 3
