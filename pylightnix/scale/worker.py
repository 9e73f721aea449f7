"""The worker side: what runs in an executor's worker process for one build
(:func:`run_build`, sent by the driver, :mod:`pylightnix.scale.driver`), and, when
that build pauses, how the pause is served from here through the driver's hub
(:func:`serve`; the whole story: :mod:`pylightnix.scale.remote_pause`).

A build paused here waits in its own thread, where its ``Build`` (a model on a GPU,
say) lives, until an attacher is done with it or the driver resumes or cancels it.
"""
from __future__ import annotations

import importlib.metadata
import os
import pickle
import queue
import socket
import sys
import threading
import time
import traceback
import types
from typing import Any, Callable, Dict, List, Optional, Tuple

from pylightnix.core.config import Config
from pylightnix.core.errors import BuildError, PauseNotServed, StoreError
from pylightnix.core.store import Store, remember_deps, store_instantiate, use_store_at
from pylightnix.engine import breakpoints, events
from pylightnix.engine.build import build_class, stage_function
from pylightnix.engine.events import COMMITTED, FAILURE, BuildPause
from pylightnix.engine.manager import Derivation
from pylightnix.engine.steps import TmpArea, build_one, drive, ignore
from pylightnix.scale.executors import require_cloudpickle
from pylightnix.scale.remote_pause import (CONSOLE, DEBUGGER_STREAM, DROPPED, ENTRY_GROUP, LINGER,
                                          REATTACH_TIMEOUT, SERVICES, HubAddress, hang_up, resume_state)
from pylightnix.scale.transfer import pack, unpack
from pylightnix.types import DRef, RRef
from pylightnix.wire.channel import Channel, ChannelError, connect, daemon

#: seconds a worker keeps trying to announce its pause to a busy hub (a flood of other
#: connections) before it gives up and takes the pause's default
ANNOUNCE_PATIENCE = 300.0

#: per pause being served here (``id(pause)``): the streams the hub opened for its debugger
_debugger_streams: Dict[int, "queue.Queue[socket.socket]"] = {}
#: per build thread: attachers' streams that stay open until its build ends (``LINGER``)
_lingering: Dict[int, List[socket.socket]] = {}

# ---------------------------------------------------------------- a pause served from here


def pause_info(pause: BuildPause, where: str) -> Dict[str, Any]:
    """What a worker tells the hub about its pause (all JSON)."""
    info: Dict[str, Any] = {"name": pause.name, "dref": pause.dref, "kind": pause.kind, "where": where,
                            "pid": os.getpid(), "breakpoint": pause.breakpoint}
    if pause.kind == FAILURE and pause.exception is not None:
        e = pause.exception
        info["exception"] = {"typeName": type(e).__name__, "message": str(e)}
    return info


def _service(name: str) -> Callable[[BuildPause, socket.socket], None]:
    if name == CONSOLE:
        from pylightnix.frontends import remote_console
        return remote_console.serve
    for ep in importlib.metadata.entry_points(group=ENTRY_GROUP):
        if ep.name == "worker":
            return ep.load()
    raise ChannelError(f"no debug service is installed on this worker (entry point {ENTRY_GROUP}: worker); "
                       f"install pylightnix with its dap extra there")


def _warm_up(name: str) -> None:
    """Prepare the service the driver expects to attach (its module's ``warm_up``)."""
    try:
        service = _service(name)
        warm = getattr(sys.modules.get(service.__module__), "warm_up", None)
        if warm is not None:
            warm()
    except Exception:
        pass  # only an optimisation


def dialer(address: HubAddress, tunnel: Optional[Dict[str, str]]) -> Callable[..., socket.socket]:
    """In the build's thread: ``dial(hello, timeout=10)``, a connection to the driver's hub
    past its hello, from any thread: over TCP to ``address`` (a worker on the driver's
    machine), or through Dask when the driver sent a ``tunnel`` (:mod:`pylightnix.scale.tunnel`)."""
    host, port, secret = address
    if tunnel is None:
        return lambda hello, timeout=10.0: connect(host, int(port), secret, timeout=timeout, hello=hello)
    from pylightnix.scale import tunnel as tunnel_mod
    return tunnel_mod.dialer(tunnel, secret)


def debugger_stream(pause: BuildPause, timeout: float = 10.0) -> socket.socket:
    """For the debug service of ``pause``: the stream its attacher opened through the hub for
    pydevd (``DEBUGGER_STREAM``), which reaches the attacher's debugpy wherever it runs."""
    q = _debugger_streams.get(id(pause))
    if q is None:
        raise ChannelError(f"{pause.name} is not paused on this worker")
    try:
        return q.get(timeout=timeout)
    except queue.Empty:
        raise ChannelError(f"{pause.name}: the debugger's stream did not come within {timeout:g} s") from None


def serve(pause: BuildPause, address: HubAddress, where: str, expected: Optional[str] = None,
          reattach: float = REATTACH_TIMEOUT, tunnel: Optional[Dict[str, str]] = None) -> None:
    """In the worker's build thread: announce ``pause`` to the driver's hub at ``address``
    and wait until an attacher is done with it (or the driver resumes or cancels it).
    If the driver cannot be reached it raises :class:`PauseNotServed` (the driver then builds it).
    ``expected``: the service the driver's frontend will likely attach (prepared meanwhile).

    The build is cancelled when the driver goes away (killed, or its connection lost),
    with or without an attacher. An attacher whose connection drops without leaving
    (``exit``, Ctrl-D) does not let the build go on: it stays paused for a re-attach for
    ``reattach`` seconds (the driver hears ``detached``), then it is cancelled.
    With ``tunnel``, every connection to the hub goes through Dask's own connections."""
    host, port, _ = address
    try:
        dial = dialer(address, tunnel)
        sock = dial({"role": "worker"}, timeout=ANNOUNCE_PATIENCE)
    except (ChannelError, OSError, ValueError) as e:  # never build on without the pause: the driver builds it itself
        via = "through the Dask scheduler" if tunnel is not None else f"at {host}:{port}"
        raise PauseNotServed(f"{pause.name} could not pause on {where}: the worker cannot reach the driver's "
                             f"pause hub {via} ({e})", dref=pause.dref) from None
    inbox: "queue.Queue[Tuple[str, ...]]" = queue.Queue()
    serving: List[socket.socket] = []
    me = threading.get_ident()
    told: List[str] = []  # the driver said resume or cancel; "done": this pause is over

    streams: "queue.Queue[socket.socket]" = queue.Queue()

    def on_request(method: str, params: Dict[str, Any]) -> Any:
        if method == "open" and params.get("service") == DEBUGGER_STREAM:  # the build thread is in the debug service
            streams.put(dial({"role": "stream", "token": str(params.get("token", ""))}))
        elif method == "open":
            inbox.put(("open", str(params.get("service", "")), str(params.get("token", ""))))
        elif method in ("resume", "cancel"):
            told.append(method)
            if method == "cancel" and pause.pending:
                pause.cancel()
            for s in serving:  # an attacher is in the middle of it: end its connection
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            if method == "cancel":
                _interrupt_console(me)  # a cell still running for a cancelled build stops
            inbox.put((method,))
        else:
            raise ChannelError(f"unknown method {method}")
        return {"ok": True}

    def on_close() -> None:
        if "done" not in told and pause.pending:  # the driver is gone: nobody waits for this build
            pause.cancel()
            _interrupt_console(me)
        inbox.put(("lost",))

    ch = Channel(sock, on_request=on_request, on_close=on_close, name="pylightnix-worker-pause")
    ch.start()
    _debugger_streams[id(pause)] = streams
    try:
        try:
            ch.call("paused", pause_info(pause, where), timeout=10)
        except ChannelError as e:
            raise PauseNotServed(f"{pause.name} could not pause on {where}: the driver's pause hub did not take "
                                 f"the pause ({e})", dref=pause.dref) from None
        if expected in SERVICES:
            daemon(_warm_up, "pylightnix-warm-up", expected)
        deadline: Optional[float] = None  # set while waiting for a re-attach
        while True:
            try:  # a timeout, so that an interrupt from the driver (Dask) gets delivered
                cmd = inbox.get(timeout=0.25)
            except queue.Empty:
                if deadline is not None and time.monotonic() > deadline and pause.pending:
                    pause.cancel()
                    break
                continue
            if cmd[0] == "open":
                try:
                    stream = dial({"role": "stream", "token": cmd[2]})
                    run = _service(cmd[1])
                except (ChannelError, OSError, ImportError) as e:
                    print(f"pylightnix: {pause.name}: cannot serve {cmd[1]}: {e}", file=sys.stderr)
                    continue
                serving.append(stream)
                ended = None
                try:
                    with events.active(pause):
                        ended = run(pause, stream)  # blocks in this thread until the attacher leaves
                finally:
                    serving.remove(stream)
                    if ended == LINGER:  # the attacher steps on into the build: closed when it ends
                        _lingering.setdefault(me, []).append(stream)
                    else:
                        hang_up(stream)  # shutdown first: a channel's reader may still hold the socket
                if ended == DROPPED and pause.pending and not ch.closed and not told:
                    deadline = time.monotonic() + reattach
                    ch.notify("detached", {"timeout": reattach})
                    continue
                if ch.closed and pause.pending:  # the driver went away while the attacher worked
                    pause.cancel()
                break
            break  # resume, cancel, or the driver is gone (cancelled above)
    finally:
        _debugger_streams.pop(id(pause), None)
        while not streams.empty():
            hang_up(streams.get())
        told.append("done")
        if not ch.closed:
            ch.notify("resumed", {"state": resume_state(pause)})
        ch.close()


def _interrupt_console(ident: int) -> None:
    """Stop a console cell running in thread ``ident`` for a build that is cancelled."""
    mod = sys.modules.get("pylightnix.frontends.remote_console")
    if mod is not None:
        mod.interrupt(ident)


# ---------------------------------------------------------------- one build


def _location() -> str:
    distributed = sys.modules.get("distributed")  # a Dask worker has it; a pool process need not import it
    if distributed is not None:
        try:
            return distributed.get_worker().address
        except ValueError:
            pass
    return f"{socket.gethostname()} pid {os.getpid()}"


def sees_probe(path: str, content: str) -> bool:
    """Whether this process reads ``content`` in the probe file ``path`` (shared store)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read() == content
    except OSError:
        return False


def _main_globals(blob: bytes) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, data in pickle.loads(blob).items():
        try:
            out[k] = pickle.loads(data)
        except Exception:  # e.g. a module the worker cannot import: the console goes without it
            continue
    return out


def _drive_remote(steps: Any, debug: Dict[str, Any], where: str, built: List[bool]) -> List[RRef]:
    """Run the engine on a worker, serving each pause through the driver's pause hub;
    a result committed by hand counts as built."""
    shipped: List[Dict[str, Any]] = []  # unpickled at the first pause, shared by the next

    def on_pause(pause: Any) -> None:
        if not shipped:
            shipped.append(_main_globals(debug["globals"]))
        pause.user_globals = shipped[0]  # the driver's, for the console (each pause copies them)
        try:
            serve(pause, debug["hub"], where, debug.get("service"), debug.get("reattach", REATTACH_TIMEOUT),
                  debug.get("tunnel"))
        except PauseNotServed:
            steps.close()  # the engine drops this build (temporary folder, lock) before the error travels
            raise
        if pause.state == COMMITTED:
            built.append(True)
    return drive(steps, on_pause)


#: what cloudpickle (3.x) makes the source file of every function it pickles by value
DYNAMIC_CODE = "<dynamic-code>"


def _refile(code: types.CodeType, filename: str) -> types.CodeType:
    consts = tuple(_refile(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def restore_sources(root: Any, main_file: Optional[str]) -> None:
    """Give the functions that came by value (the driver's ``__main__`` functions, closures)
    their source file back: cloudpickle names it ``<dynamic-code>``, where a debugger on the
    worker could neither step into them nor stop at a line breakpoint set in that file.
    Follows closures, defaults and the globals the code names, from ``root``, through the
    functions that came by value only (the others came by reference, with their file)."""
    seen: set = set()
    stack = [root]
    while stack:
        f = stack.pop()
        if not isinstance(f, types.FunctionType) or id(f) in seen:
            continue
        seen.add(id(f))
        wrapped = getattr(f, "__pylightnix_stage_function__", None)  # a wrapper's user function
        if wrapped is not None:
            stack.append(wrapped)
        code = f.__code__
        if code.co_filename != DYNAMIC_CODE:
            continue
        module = sys.modules.get(f.__module__ or "")
        filename = main_file if f.__module__ == "__main__" else getattr(module, "__file__", None)
        if filename:
            f.__code__ = _refile(code, filename)
        stack.extend(c.cell_contents for c in f.__closure__ or () if _filled(c))
        stack.extend(f.__defaults__ or ())
        names = set(code.co_names) | {n for c in code.co_consts if isinstance(c, types.CodeType) for n in c.co_names}
        stack.extend(v for k, v in f.__globals__.items() if k in names)


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _sendable(e: BaseException, dref: DRef, where: str) -> BaseException:
    """``e`` with the worker traceback attached, or a BuildError if ``e`` cannot travel back."""
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    note = f"[pylightnix] the build of {dref} failed on {where}; worker traceback:\n{tb}"
    try:
        e.worker_traceback = tb  # type: ignore[attr-defined]
        if hasattr(e, "add_note"):
            e.add_note(note)
        pickle.loads(require_cloudpickle().dumps(e))
        return e
    except Exception:
        return BuildError(f"{dref}: the stage raised {type(e).__name__}: {e}, which cannot be sent back to the "
                          f"driver\n{note}", dref=dref)


def run_build(payload: bytes, *archives: bytes) -> Dict[str, Any]:
    """The task a worker runs: build one derivation (or match it) and report the RRefs.
    In copy mode ``archives`` are the dependency realizations, in the order of ``spec["ship"]``."""
    spec = pickle.loads(payload)
    drv: Derivation = spec["drv"]._replace(realizer=pickle.loads(spec["realizer"]))
    restore_sources(drv.realizer, spec.get("main_file"))
    where = _location()
    if spec["shared"]:
        if not sees_probe(*spec["probe"]):
            raise StoreError(f"{drv.dref}: worker {where} does not see the driver's store {spec['store']} "
                             f"(the probe file is missing); start workers that share it, or use copy mode",
                             dref=drv.dref)
        use_store_at(spec["store"], spec["tmp"] if os.path.isdir(spec["tmp"]) else Store.from_env().tmp)
    else:
        env = Store.from_env()
        use_store_at(env.root, env.tmp)
        for (cfg, rref), data in zip(spec["ship"], archives):
            store_instantiate(Config(cfg), check=True)
            unpack(rref, data)
    remember_deps(drv.dref, drv.deps)
    ran: List[bool] = []
    realizer = drv.realizer

    def counted(*args: Any) -> Any:
        ran.append(True)
        return realizer(*args)
    counted.__pylightnix_stage_function__ = stage_function(realizer)  # type: ignore[attr-defined]
    counted.__pylightnix_build_class__ = build_class(realizer)  # type: ignore[attr-defined]
    area = TmpArea()
    failure: Optional[BaseException] = None
    debug = spec.get("debug")
    try:
        steps = build_one(drv._replace(realizer=counted), spec["ctx"], *spec["index"], spec["forced"], False,
                          spec["rarg"], area)
        if debug is None:
            rrefs = drive(steps, ignore)  # no frontend here: every pause does its default (build, or raise)
        else:  # pause here, by the driver's breakpoints, and let the driver's hub serve the pauses
            with breakpoints.overridden(debug["breakpoints"], debug["on_failure"]):
                rrefs = _drive_remote(steps, debug, where, ran)
    except KeyboardInterrupt:
        raise
    except BaseException as e:
        failure = _sendable(e, drv.dref, where)
    finally:
        area.close()
        for stream in _lingering.pop(threading.get_ident(), []):  # a debugger stepping through it is done
            hang_up(stream)
    if failure is not None:
        raise failure  # outside the handler: a replacement does not drag the original along as its context
    out: Dict[str, Any] = {"rrefs": rrefs, "built": bool(ran), "where": where}
    if not spec["shared"]:
        out["archives"] = [(r, pack(r)) for r in rrefs]
    return out
