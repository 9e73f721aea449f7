"""The names the adapter and the debuggee agree on, in one place.

The adapter process (:mod:`dap_adapter.adapter`) and the debuggee
(:mod:`dap_adapter.debuggee`) talk over the authenticated side channel
(:mod:`pylightnix.wire.channel`) and through the environment of a launched program.
Every method, event, variable and module name of that conversation is here;
a handler for side-channel message ``NAME`` is the method ``NAME_request`` or
``NAME_event`` of the component serving that peer (:mod:`dap_adapter.common.dispatch`).
"""
from __future__ import annotations

# -- launch: the adapter starts the debuggee through debugpy ------------------
#: the module debugpy runs instead of the user's program (``python -m ...``)
DEBUGGEE_MODULE = "dap_adapter.debuggee"
#: the module whose functions the Debug Console's pydevd expressions call
CONSOLE_MODULE = "dap_adapter.debuggee.console"
#: the type pydevd reports for a console cell that raised (its ``evaluate`` then answers ``success: false``)
CELL_ERROR_TYPE = "CellError"
#: environment of a launched debuggee: the side channel's ``HOST:PORT`` and its secret
#: (removed from the environment before the user's program runs)
ENV_CHANNEL = "PYLIGHTNIX_DAP_CHANNEL"
ENV_SECRET = "PYLIGHTNIX_DAP_SECRET"
#: ``pylightnix debug --listen``: hold the program until an adapter has attached
ENV_WAIT = "PYLIGHTNIX_DEBUG_WAIT"
#: environment of the spawned debugpy adapter: its pinned access token and the folder
#: holding the debugpy package to run (both removed there)
ENV_DEBUGPY_TOKEN = "PYLIGHTNIX_DEBUGPY_TOKEN"
ENV_DEBUGPY_HOME = "PYLIGHTNIX_DEBUGPY_HOME"
#: exit status of a program ended by the adapter's ``terminate`` (as if SIGKILLed)
EXIT_TERMINATED = 137

# -- build pauses ---------------------------------------------------------------
#: pause kinds (the engine's ``pylightnix.engine.events.BEFORE`` / ``FAILURE``)
BEFORE = "before"
FAILURE = "failure"
#: the exception filter "Failed builds" (``breakOnFailedBuilds`` in launch.json)
FAILURE_FILTER_ID = "pylightnix-build-failure"

# -- side channel: agent -> adapter ------------------------------------------------
#: request ``{pid, python}`` -> the configuration (see CONFIGURE)
HELLO = "hello"
#: request ``{kind, name, dref, breakpoint, exception?}``: the thread is about to stop
PAUSE = "pause"
#: events
INSTANTIATED = "instantiated"  #: ``{derivations: [[dref, name], ...]}``
RESUMED = "resumed"            #: ``{dref, state}``: a pause frame returned
PROGRESS = "progress"          #: ``{index, total, dref, name, where}`` or ``{done, target, outcome}``
BUILT = "built"                #: ``{dref, name}``: a stage was built (by its realizer or by hand)
#: with an executor: a build paused on its worker (``pylightnix.scale.hub.RemotePause.info()``
#: plus ``exception``), and that pause ended (``{id, dref, name, state}``)
WORKER_PAUSED = "worker_paused"
WORKER_RESUMED = "worker_resumed"
OUTPUT = "output"              #: ``{category, output}``

# -- side channel: adapter -> agent ------------------------------------------------
CONFIGURE = "configure"                    #: ``{buildBreakpoints, breakOnFailure, ready}``
STEP_INTO = "step_into"                    #: ``{dref}``: Step Into from a build pause
TRACE_ALL = "trace_all"                    #: trace every thread (Pause pressed)
CANCEL = "cancel"                          #: cancel the pending build pause
CANCEL_REALIZATION = "cancel_realization"  #: the user cancelled the progress
INTERRUPT = "interrupt"                    #: KeyboardInterrupt in running console cells
EXIT = "exit"                              #: end the process (``terminate`` found it alive)
CONNECT_DEBUGGER = "connect_debugger"      #: attach: ``{host, port, token}`` of our debugpy
#: ``connect_debugger``'s ``via`` for a build paused on a worker: pydevd connects through a
#: stream of the driver's pause hub (``DEBUGGER_STREAM``), not to ``host:port``
VIA_HUB = "hub"

#: requests each side serves (tests check that every one has its handler)
AGENT_REQUESTS = (CONFIGURE, STEP_INTO, TRACE_ALL, CANCEL, CANCEL_REALIZATION, INTERRUPT, EXIT,
                  CONNECT_DEBUGGER)
ADAPTER_REQUESTS = (HELLO, PAUSE)
ADAPTER_EVENTS = (INSTANTIATED, RESUMED, PROGRESS, OUTPUT, BUILT, WORKER_PAUSED, WORKER_RESUMED)

# -- DAP: parent and child sessions ---------------------------------------------------
#: the attach configuration's key naming a build paused on a worker (a child session)
PAUSED_BUILD_KEY = "pylightnixPause"
#: the custom DAP event with the running realization's derivation states
BUILDS_EVENT = "pylightnixBuilds"
