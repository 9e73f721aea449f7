"""The launch attributes the adapter understands are the ones the editor offers: every key
of the extension's initial configuration, snippets and vscode-config/launch.json examples
is declared in the extension's configurationAttributes, and breakOnFailedBuilds is on in
all of them (it works from the first run, unlike the "Failed builds" filter)."""
import json
import os
import re

from dap_adapter.adapter import launch_config

from dap_testlib import REPO

EXTENSION = os.path.join(REPO, "vscode-config", "extension", "package.json")
EXAMPLES = os.path.join(REPO, "vscode-config", "launch.json")
COMMON = {"type", "request", "name", "debugServer"}


def debugger():
    with open(EXTENSION) as f:
        return json.load(f)["contributes"]["debuggers"][0]


def examples():
    with open(EXAMPLES) as f:
        text = re.sub(r"(?m)^\s*//.*$", "", f.read())  # JSONC: whole-line comments only
    return json.loads(text)["configurations"]


def test_every_offered_configuration_uses_declared_attributes_and_breaks_on_failed_builds():
    d = debugger()
    attrs = {req: set(spec["properties"]) for req, spec in d["configurationAttributes"].items()}
    assert "breakOnFailedBuilds" in attrs["launch"] and "breakOnFailedBuilds" in attrs["attach"]
    offered = d["initialConfigurations"] + [s["body"] for s in d["configurationSnippets"]] + examples()
    assert len(offered) >= 4
    for cfg in offered:
        unknown = set(cfg) - COMMON - attrs[cfg["request"]]
        assert not unknown, (cfg["name"], unknown)
    on = [cfg for cfg in offered if cfg.get("breakOnFailedBuilds") is True]
    assert d["initialConfigurations"][0] in on
    assert {"launch", "attach"} <= {s["body"]["request"] for s in d["configurationSnippets"] if s["body"] in on}
    assert all(cfg in on for cfg in examples())


def test_adapter_keeps_its_own_attributes_from_debugpy():
    """Our attributes are not passed on to debugpy, and they are all declared for the editor."""
    out, _, _ = launch_config.launch_args({"program": __file__, "breakOnFailedBuilds": True,
                                           "buildBreakpoints": ["x"]}, 1, "s")
    assert "breakOnFailedBuilds" not in out and "buildBreakpoints" not in out
    declared = set(debugger()["configurationAttributes"]["launch"]["properties"]) | \
        set(debugger()["configurationAttributes"]["attach"]["properties"])
    assert set(launch_config.OUR_KEYS) <= declared
