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


def test_the_core_never_imports_the_adapter():
    """pylightnix/ reaches the debugger only through the entry point (pylightnix.frontends.debug)."""
    import ast
    import pathlib

    import pylightnix
    core = pathlib.Path(pylightnix.__file__).parent
    for path in core.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "dap_adapter" for n in names), (path, node.lineno)


def test_listen_without_debugpy_names_the_install_command(tmp_path):
    """The entry point loads the debuggee side, which needs debugpy: a missing one is the
    same clear error as before, and the script does not run."""
    import os
    import subprocess
    import sys
    fake = tmp_path / "shadow" / "debugpy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'debugpy'\", name='debugpy')\n")
    script = tmp_path / "job.py"
    script.write_text("print('the job ran')\n")
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "shadow"), PYLIGHTNIX_DEBUG_DIR=str(tmp_path / "debug"))
    proc = subprocess.run([sys.executable, "-m", "pylightnix", "debug", "--listen", "127.0.0.1:0", str(script)],
                          capture_output=True, text=True, timeout=60, env=env, cwd=str(tmp_path))
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "--listen needs debugpy" in proc.stderr and "install it with: " in proc.stderr
    assert "pip install 'debugpy>=1.8.0'" in proc.stderr and "the job ran" not in proc.stdout
