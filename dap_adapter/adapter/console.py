"""The Debug Console as the adapter sees it: pydevd expressions that call the debuggee's
console (:mod:`dap_adapter.debuggee.console`), and its completions as DAP items."""
from __future__ import annotations

from typing import Any, Dict

from dap_adapter.common.protocol import CONSOLE_MODULE

#: the debuggee's console module, from inside a pydevd evaluation (``__import__`` returns the top package)
_MODULE = f"__import__({CONSOLE_MODULE!r})." + ".".join(CONSOLE_MODULE.split(".")[1:])


def expression_for(cell: str) -> str:
    """The pydevd expression that runs ``cell`` through the debuggee console's ``run_cell``."""
    return f"{_MODULE}.run_cell({cell!r}, vars())"


def completions_expression(text: str, column: int) -> str:
    """pydevd expression returning completions as JSON (the debuggee console's ``complete``)."""
    return f"{_MODULE}.complete_json({text!r}, {column}, vars())"


_DAP_TYPES = {"method", "function", "constructor", "field", "variable", "class", "interface", "module",
              "property", "unit", "value", "enum", "keyword", "snippet", "text", "color", "file",
              "reference", "customcolor"}
_TYPES = {"function": "function", "instance": "variable", "module": "module", "class": "class",
          "keyword": "keyword", "statement": "variable", "param": "variable", "path": "file",
          "magic": "function", "property": "property"}


def _completion_type(t: str) -> str:
    return t if t in _DAP_TYPES else _TYPES.get(t, "text")


def _completion_item(c: Dict[str, Any], cursor: int, base: int) -> Dict[str, Any]:
    item: Dict[str, Any] = {"label": c["text"], "text": c["text"],
                            "type": _completion_type(str(c.get("type", "")))}
    item["start"] = int(c.get("start", cursor)) + base
    item["length"] = max(0, int(c.get("end", cursor)) - int(c.get("start", cursor)))
    return item


def dap_completion_items(items: list, cursor: int, base: int) -> list:
    """The debuggee's completion items as DAP ``CompletionItem``s (``base`` = 1 when
    the client counts columns from 1)."""
    return [_completion_item(c, cursor, base) for c in items]
