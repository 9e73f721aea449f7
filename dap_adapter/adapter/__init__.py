"""The adapter process (``python -m dap_adapter``): one :class:`~dap_adapter.adapter.session.Session`
per client, with one component per peer (the client, debugpy, the agent in the debuggee)."""
