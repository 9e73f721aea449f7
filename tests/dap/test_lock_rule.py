"""The adapter's lock rule (debugpy's): every message handler of every peer runs under
``session.lock`` (:mod:`dap_adapter.adapter.session`). A real session, served in this
process so that every handler found by :func:`dap_adapter.common.dispatch.handler` can
be checked as it runs: launch, a build pause, the Debug Console, a console-less Python
stop, Continue, the program's end, disconnect."""
import socket
import threading

import pytest

from dap_adapter.adapter.session import Session
from dap_adapter.common import dispatch
from dap_adapter.common.messaging import Endpoint
from dap_adapter.testing import Client

from dap_testlib import SchemaChecker, launch, repl, top_frame

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def checked_handlers(monkeypatch):
    """Every handler of a session's peer, as it runs: (component, handler, lock held)."""
    seen = []
    real = dispatch.handler

    def checked(component, name, kind):
        found = real(component, name, kind)
        session = getattr(component, "session", None)
        if found is None or not isinstance(session, Session):
            return found

        def run(*args):
            seen.append((type(component).__name__, f"{name}_{kind}", session.lock.held()))
            return found(*args)
        return run

    monkeypatch.setattr(dispatch, "handler", checked)
    return seen


def test_every_handler_runs_under_the_session_lock(checked_handlers, root):
    ours, theirs = socket.socketpair()
    session = Session(Endpoint.from_socket(ours))
    served = threading.Thread(target=session.serve, daemon=True)
    served.start()
    c = Client(Endpoint.from_socket(theirs), check=SchemaChecker())
    try:
        launch(c, root, function_breakpoints=["trainer"])
        st = c.event("stopped", timeout=60)["body"]
        assert st["description"] == "Paused before building trainer"
        fid = top_frame(c, st["threadId"])["id"]
        assert repl(c, fid, "name") == "'trainer'"
        c.request("continue", {"threadId": st["threadId"]})
        assert c.event("exited", timeout=60)["body"]["exitCode"] == 0
        c.event("terminated", timeout=20)
        c.request("disconnect", {})
    finally:
        c.close()
        served.join(20)
    assert not served.is_alive()
    unlocked = [h for h in checked_handlers if not h[2]]
    assert unlocked == [], unlocked
    ran = {h[1] for h in checked_handlers}
    # each peer's handlers were seen: the client's, debugpy's, the agent's requests and events
    assert {"initialize_request", "launch_request", "evaluate_request", "disconnect_request",
            "stopped_event", "terminated_event", "hello_request", "pause_request",
            "instantiated_event", "resumed_event"} <= ran, ran
    assert not c.check_errors, c.check_errors
