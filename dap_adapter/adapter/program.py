"""The debuggee's lifecycle in one session: launch it, or attach to it, and end it.

As debugpy's ``adapter/launchers.py`` owns the launcher process, this component
owns the program's life, so that the peers only carry messages:

- launch: the agent's listener and the launch configuration debugpy gets
  (:meth:`Program.launch`);
- attach: the three-step handshake (:meth:`Program.attach`): prove the program's
  secret on its side channel (or, for a build paused on a worker, through the
  driver's pause hub), let our debugpy listen for the program's debug server,
  then have the program connect its pydevd out to it with debugpy's token;
- terminate: end the program within seconds whatever it is doing
  (:meth:`Program.end_within`), killing only our own descendant (``/proc``).

Called from the client's handlers, under ``session.lock``; the attach step 3 and
the terminate watch run in threads of their own and take no lock across a call.
"""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Optional

from dap_adapter.adapter import launch_config
from dap_adapter.adapter.debugpy_peer import REQUEST_TIMEOUT
from dap_adapter.common import protocol
from dap_adapter.common.messaging import Message
from pylightnix.wire import attach_info
from pylightnix.wire.channel import ChannelError
from pylightnix.core.errors import PylightnixError

if TYPE_CHECKING:
    from dap_adapter.adapter.session import Session

#: seconds ``terminate`` waits for the program to exit before ending it
TERMINATE_GRACE = 1.2


def descends_from(pid: int, ancestor: int) -> bool:
    """Whether ``pid`` is a descendant of ``ancestor`` (Linux /proc; False elsewhere)."""
    for _ in range(64):
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


class Program:
    """The program one session debugs: how it was started, and how it ends."""

    def __init__(self, session: "Session") -> None:
        self.session = session
        self.mode: Optional[str] = None  # "launch" or "attach"

    def _inherit(self, args: Dict[str, Any]) -> None:
        """What launch and attach configurations both say about build breakpoints."""
        s = self.session
        s.launch_break_on_failure = launch_config.break_on_failed_builds(args)
        s.book.launch_patterns = [str(p) for p in args.get("buildBreakpoints") or []]
        s.workers.inherit(args)

    # -- launch ----------------------------------------------------------------------
    def launch(self, req: Message) -> None:
        """Start the program through debugpy, its agent connecting back to our listener."""
        s = self.session
        args = dict(req.get("arguments") or {})
        self.mode = "launch"
        listener = s.agent.listen()
        try:
            out, label, entry_pending = launch_config.launch_args(args, listener.port, s.agent.secret)
            self._inherit(args)
        except launch_config.LaunchError as e:
            listener.close()
            s.client.fail(req, str(e))
            return
        s.debugpy.expect_program(label, entry_pending)
        s.agent.serve(listener)
        s.debugpy.forward(req, out)

    # -- attach ----------------------------------------------------------------------
    def attach(self, req: Message) -> None:
        """Attach, steps 1 and 2 (step 3 in a thread: the program's ``debugpy.connect``
        returns only after the client's configurationDone)."""
        s = self.session
        args = dict(req.get("arguments") or {})
        self.mode = "attach"
        conn = args.get("connect") or {}
        host = str(conn.get("host") or args.get("host") or "127.0.0.1")
        port = conn.get("port", args.get("port"))
        if port is None:
            s.client.fail(req, "attach: give `connect: {host, port}` of a process started with "
                               "`python -m pylightnix debug --listen HOST:PORT SCRIPT`")
            return
        paused = args.get(protocol.PAUSED_BUILD_KEY)
        where = ""
        # every way this fails (the attach file, the hub, the side channel) is one of these
        try:
            chan = attach_info.resolve(args, int(port))
            self._inherit(args)
            if not s.debugpy.running:
                raise launch_config.LaunchError("no debugpy adapter (send initialize first)")
            # 1. prove we know the program's secret on its side channel (a build paused on a
            #    worker: the secret of its driver's pause hub, which leads us to the worker)
            where = f"cannot open the pylightnix side channel at {chan['host']}:{chan['port']}: "
            if isinstance(paused, dict):
                s.paused_build = paused
                # a child session: its paused derivation is instantiated, whatever it was told
                s.book.learn([str(paused.get("name", ""))])
                s.agent.connect_paused_build(chan, str(paused.get("id", "")))
            else:
                s.agent.connect(chan["host"], int(chan["port"]), chan["secret"])
        except (PylightnixError, launch_config.LaunchError, OSError, ValueError) as e:
            s.client.fail(req, f"attach: {where}{e}")
            return
        # 2. our debugpy adapter listens for the program's debug server (token-checked) ...
        # (a fixed port for a remote program: `ssh -R PORT:127.0.0.1:PORT` carries it back)
        back = args.get("pylightnixConnectBack") or {}
        out = launch_config.attach_args(args, host, int(port))
        out.pop("connect", None)
        out.pop("pylightnixConnectBack", None)
        out["listen"] = {"host": "127.0.0.1", "port": int(back.get("port", 0) or 0)}
        s.debugpy.forward(req, out)
        threading.Thread(target=self._connect_debugger, args=(req,), name="dap-attach", daemon=True).start()

    def _connect_debugger(self, req: Message) -> None:
        """Attach, step 3: the program connects out to our debugpy, presenting its token."""
        s = self.session
        port = s.debugpy.server_port(timeout=10)
        if port is None or s.agent.channel is None:
            s.client.fail(req, "attach: debugpy did not open its server port", late=True)
            return
        params = {"host": "127.0.0.1", "port": port, "token": s.debugpy.token}
        try:
            if s.paused_build is not None:  # pydevd on a worker, maybe of another host: through the hub
                from pylightnix.scale.hub import splice
                stream = s.agent.debugger_stream()
                local = socket.create_connection(("127.0.0.1", port), timeout=10)
                local.settimeout(None)  # a debugger may stay quiet for long (a user reading the code)
                splice(stream, local)
                params = {"via": protocol.VIA_HUB, "token": s.debugpy.token}
            s.agent.call(protocol.CONNECT_DEBUGGER, params, timeout=REQUEST_TIMEOUT)
        except (ChannelError, PylightnixError, OSError) as e:
            s.client.fail(req, f"attach: the program could not connect its debugger: {e}", late=True)
            return
        s.agent.configure()

    # -- the end ---------------------------------------------------------------------
    def end_within(self, grace: float = TERMINATE_GRACE) -> None:
        """``terminate``: watch, in a thread, that the program ends within ``grace`` seconds."""
        threading.Thread(target=self._kill_if_alive, args=(grace,), name="dap-terminate", daemon=True).start()

    def _kill_if_alive(self, grace: float) -> None:
        """``terminate`` ends the program within 2 s whatever it is doing (a console cell
        blocked in C, a stuck thread): after ``grace`` seconds the agent is told to exit
        the process; a launched program that still lives then gets SIGKILL."""
        s = self.session
        ch = s.agent.channel
        # the program is gone when its side channel closes (debugpy may say "terminated"
        # for an attached program that still runs)
        gone = (lambda: ch.closed) if ch is not None else s.exited.is_set
        deadline = time.monotonic() + grace
        while not gone() and time.monotonic() < deadline:
            time.sleep(0.05)
        if gone():
            return
        s.log(f"terminate: the program is still running after {grace}s: ending it")
        if ch is not None:
            try:
                ch.call(protocol.EXIT, {}, timeout=0.2)
            except ChannelError:
                pass  # no answer: the process is gone
            time.sleep(0.2)
            if gone():
                return
        pid = s.agent.program_pid
        adapter_pid = s.debugpy.pid
        # only our own descendant: an attached program's pid may be another machine's
        if pid and self.mode == "launch" and adapter_pid is not None and descends_from(pid, adapter_pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
