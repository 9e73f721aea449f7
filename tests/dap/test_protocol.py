"""Handlers by name: every side-channel message one side sends has its handler on the other
side (a renamed method or handler fails here, not in a debug session), and a peer can
reach nothing but handlers."""
from dap_adapter.adapter.agent_peer import AgentPeer
from dap_adapter.adapter.client_peer import FORWARDED, ClientPeer
from dap_adapter.common import dispatch, protocol
from dap_adapter.debuggee.agent import DapAgent


def test_each_side_channel_request_and_event_has_its_handler():
    agent = DapAgent()
    # connect_debugger: only a --listen program serves it (debuggee/attach.py registers it)
    for method in set(protocol.AGENT_REQUESTS) - {protocol.CONNECT_DEBUGGER}:
        assert dispatch.handler(agent, method, dispatch.REQUEST), method
    for method in protocol.ADAPTER_REQUESTS:
        assert dispatch.handler(AgentPeer, method, dispatch.REQUEST), method
    for event in protocol.ADAPTER_EVENTS:
        assert dispatch.handler(AgentPeer, event, dispatch.EVENT), event


def test_client_request_handlers_are_dap_commands():
    handled = {name[:-len("_request")] for name in dir(ClientPeer)
               if name.endswith("_request") and not name.startswith("_")}
    assert "launch" in handled and "evaluate" in handled
    assert handled <= FORWARDED | {"cancel"}, handled - FORWARDED


def test_only_public_identifiers_name_handlers():
    class Component:
        def ping_request(self, params):
            return "pong"

    c = Component()
    assert dispatch.handler(c, "ping", dispatch.REQUEST)({}) == "pong"
    for name in ("__class__", "_private", "a.b", "", None, 3, ["ping"]):
        assert dispatch.handler(c, name, dispatch.REQUEST) is None
    assert dispatch.handler(c, "ping", dispatch.EVENT) is None
