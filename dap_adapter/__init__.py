"""pylightnix's Debug Adapter: debugpy plus build breakpoints, an IPython Debug Console
and fix-and-continue for failed builds. Run ``python -m dap_adapter`` (stdio) or
``python -m dap_adapter --port N`` (TCP on 127.0.0.1)."""
