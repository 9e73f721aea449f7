"""What runs inside the debugged program: the agent (a pylightnix frontend serving build pauses
over the side channel), the pause frame, the Debug Console's evaluation and untraced mode.
``python -m dap_adapter.debuggee`` is the launch entry point (:mod:`.__main__`),
:func:`dap_adapter.debuggee.attach.serve_attach` the ``pylightnix debug --listen`` one."""
