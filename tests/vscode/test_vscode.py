"""The real-VS-Code test: the Pylightnix extension in code-server, driven in headless Chromium.

Each test packages ``vscode-config/extension`` as a ``.vsix``, starts code-server
4.100.3 (its own process group, loopback only, fresh user-data, extension and
XDG folders), installs the ``.vsix``, opens a temporary copy of ``examples/``
and runs one scenario of ``drive.js`` (Playwright driving Debian's Chromium).
Screenshots of every step land in ``tests/vscode/artifacts/<test>/``.

Set-up (``setup.sh``) installs what is missing; set ``PYLIGHTNIX_SKIP_VSCODE=1``
to skip these tests explicitly. They are never skipped silently.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ARTIFACTS = HERE / "artifacts"
CHROMIUM = "/usr/bin/chromium"
MARKER_VAR = "PYLIGHTNIX_VSCODE_TEST_ID"
RHASH_DIR = re.compile(r"^[0-9a-f]{32}$")

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(os.environ.get("PYLIGHTNIX_SKIP_VSCODE", "") not in ("", "0"),
                       reason="PYLIGHTNIX_SKIP_VSCODE is set: the real-VS-Code tests were disabled explicitly"),
]


class VSCodeTestError(Exception):
    """The VS Code test harness could not do what it needed (set-up, start, drive)."""


# --------------------------------------------------------------------------- tools
@pytest.fixture(scope="session")
def tools() -> Path:
    """Run setup.sh (fast when everything is installed) and return the cache folder."""
    proc = subprocess.run(["bash", str(HERE / "setup.sh")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=900)
    if proc.returncode != 0:
        raise VSCodeTestError(f"tests/vscode/setup.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    cache = Path(proc.stdout.strip().splitlines()[-1])
    for p in (cache / "code-server/node_modules/.bin/code-server",
              cache / "tools/node_modules/playwright-core/package.json", Path(CHROMIUM)):
        if not p.exists():
            raise VSCodeTestError(f"setup.sh finished but {p} is missing")
    return cache


@pytest.fixture(scope="session")
def vsix(tools: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The extension packaged by vscode-config/package.sh."""
    out = tmp_path_factory.mktemp("vsix") / "pylightnix-debug.vsix"
    env = dict(os.environ, PYLIGHTNIX_DEV_CACHE=str(tools.parent))
    proc = subprocess.run(["bash", str(REPO / "vscode-config/package.sh"), str(out)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    if proc.returncode != 0 or not out.is_file():
        raise VSCodeTestError(f"package.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return out


# --------------------------------------------------------------------------- code-server
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:300]
    except OSError:
        return "?"


def _state(proc: Path) -> str:
    try:
        return (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def _pids_with_marker(marker: str) -> List[int]:
    """Processes whose environment carries this test's marker (descendants of code-server)."""
    needle = f"{MARKER_VAR}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in env.split(b"\0") and _state(entry) != "Z":
            found.append(int(entry.name))
    return found


class CodeServer:
    """One code-server process group with its own profile, serving one workspace."""

    def __init__(self, tools: Path, root: Path, adapter_log: Optional[Path] = None) -> None:
        self.bin = tools / "code-server/node_modules/.bin/code-server"
        self.root = root
        self.user_data = root / "user-data"
        self.extensions = root / "extensions"
        self.port = _free_port()
        self.marker = uuid.uuid4().hex
        self.proc: Optional[subprocess.Popen] = None
        #: processes that outlived the process group at stop(), pid -> command line
        self.escaped: Dict[int, str] = {}
        self.log = root / "code-server.log"
        xdg = root / "xdg"
        self.env = dict(os.environ)
        self.env.update({
            "XDG_CONFIG_HOME": str(xdg / "config"), "XDG_DATA_HOME": str(xdg / "data"),
            "XDG_CACHE_HOME": str(xdg / "cache"),
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        # Nothing of the caller's pylightnix set-up leaks into the debug sessions.
        for k in list(self.env):
            if k.startswith("PYLIGHTNIX_") or k in ("PYTHONPATH", "VSCODE_IPC_HOOK_CLI"):
                del self.env[k]
        self.env["IPYTHONDIR"] = str(root / "ipython")  # the console's IPython keeps its files here
        self.env[MARKER_VAR] = self.marker
        for d in (xdg / "config", xdg / "data", xdg / "cache", self.user_data / "User", self.extensions):
            d.mkdir(parents=True, exist_ok=True)
        (self.user_data / "User/settings.json").write_text(json.dumps({
            "workbench.startupEditor": "none",
            "security.workspace.trust.enabled": False,
            "workbench.tips.enabled": False,
            "extensions.ignoreRecommendations": True,
            "telemetry.telemetryLevel": "off",
            "update.mode": "none",
            "debug.console.closeOnEnd": False,
            "debug.openDebug": "openOnDebugBreak",
            "debug.internalConsoleOptions": "openOnSessionStart",
            "window.commandCenter": True,
            "debug.console.acceptSuggestionOnEnter": "off",
            "git.enabled": False,
            "git.openRepositoryInParentFolders": "never",
            "remote.autoForwardPorts": False,
            "workbench.enableExperiments": False,
            "pylightnix.adapterLog": str(adapter_log or root / "adapter.log"),
            "pylightnix.traceFile": str((adapter_log or root / "adapter.log").with_name("dap-trace.jsonl")),
        }, indent=2))

    def install(self, vsix: Path) -> None:
        proc = subprocess.run([str(self.bin), "--user-data-dir", str(self.user_data), "--extensions-dir",
                               str(self.extensions), "--install-extension", str(vsix)], env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        if proc.returncode != 0 or "successfully installed" not in proc.stdout:
            raise VSCodeTestError(f"installing {vsix.name} failed:\n{proc.stdout}")
        if not list(self.extensions.glob("pylightnix.pylightnix-debug-*")):
            raise VSCodeTestError(f"the extension is not in {self.extensions} after install:\n{proc.stdout}")

    def start(self) -> None:
        cmd = [str(self.bin), "--bind-addr", f"127.0.0.1:{self.port}", "--auth", "none", "--disable-telemetry",
               "--disable-update-check", "--disable-workspace-trust", "--user-data-dir", str(self.user_data),
               "--extensions-dir", str(self.extensions)]
        with open(self.log, "wb") as log:
            # start_new_session: setsid(), so the whole tree can be stopped by process group.
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True, cwd=str(self.root))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise VSCodeTestError(f"code-server exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise VSCodeTestError(f"code-server did not answer on port {self.port} within 60 s:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Stop the process group, then anything else that inherited this test's marker."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        # A debuggee that started its own session escapes the group; it still carries the marker.
        self.escaped = {pid: _cmdline(pid) for pid in _pids_with_marker(self.marker)}
        for pid in self.escaped:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while _pids_with_marker(self.marker) and time.monotonic() < deadline:
            time.sleep(0.1)

    def url(self, folder: Path) -> str:
        return f"http://127.0.0.1:{self.port}/?folder={folder}"


@pytest.fixture
def code_server(tools: Path, vsix: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[CodeServer]:
    shutil.rmtree(_artifacts(request), ignore_errors=True)
    (_artifacts(request) / "logs").mkdir(parents=True)
    cs = CodeServer(tools, tmp_path / "code-server", adapter_log=_artifacts(request) / "logs/adapter.log")
    try:
        cs.install(vsix)
        cs.start()
        yield cs
    finally:
        cs.stop()
        # Keep the workbench's and extension host's logs beside the screenshots.
        logs = _artifacts(request) / "logs"
        if (cs.user_data / "logs").is_dir():
            shutil.copytree(cs.user_data / "logs", logs, dirs_exist_ok=True)
        if cs.log.is_file():
            logs.mkdir(parents=True, exist_ok=True)
            shutil.copy(cs.log, logs / "code-server.log")
    leftovers = {pid: _cmdline(pid) for pid in _pids_with_marker(cs.marker)}
    assert not leftovers, f"processes survived SIGKILL after stopping code-server: {leftovers}"
    (_artifacts(request) / "logs/escaped-processes.json").write_text(json.dumps(cs.escaped, indent=2))


# --------------------------------------------------------------------------- workspace
def make_workspace(tmp_path: Path, bare_python: Optional[Path] = None) -> Dict[str, Path]:
    """A copy of examples/ plus a .vscode/launch.json of type pylightnix and a temp store."""
    examples = REPO / "examples"
    if not (examples / "demo.py").is_file() or not (examples / "broken_demo.py").is_file():
        raise VSCodeTestError(f"examples/demo.py and examples/broken_demo.py are needed in {examples}")
    ws = tmp_path / "workspace"
    shutil.copytree(examples, ws, ignore=shutil.ignore_patterns("__pycache__", "_pylightnix"))
    store = tmp_path / "store"
    store.mkdir()
    env = {"PYLIGHTNIX_ROOT": str(store), "PYTHONUNBUFFERED": "1"}
    launch = {
        "version": "0.2.0",
        "configurations": [
            {"type": "pylightnix", "request": "launch", "name": "Pylightnix: demo",
             "program": "${workspaceFolder}/demo.py", "cwd": "${workspaceFolder}", "python": sys.executable,
             "env": env, "console": "internalConsole", "justMyCode": True},
            {"type": "pylightnix", "request": "launch", "name": "Pylightnix: broken demo",
             "program": "${workspaceFolder}/broken_demo.py", "cwd": "${workspaceFolder}",
             "python": sys.executable, "env": env, "console": "internalConsole", "justMyCode": True,
             "stopOnEntry": True},
            {"type": "pylightnix", "request": "launch", "name": "Pylightnix: broken demo, breakOnFailedBuilds",
             "program": "${workspaceFolder}/broken_demo.py", "cwd": "${workspaceFolder}",
             "python": sys.executable, "env": env, "console": "internalConsole", "breakOnFailedBuilds": True},
        ],
    }
    if bare_python is not None:
        launch["configurations"].append(
            {"type": "pylightnix", "request": "launch", "name": "Pylightnix: without pylightnix",
             "program": "${workspaceFolder}/demo.py", "cwd": "${workspaceFolder}", "python": str(bare_python),
             "env": env})
    (ws / ".vscode").mkdir(exist_ok=True)
    (ws / ".vscode/launch.json").write_text(json.dumps(launch, indent=2))
    return {"workspace": ws, "store": store}


def add_launch_config(ws: Dict[str, Path], **fields: Any) -> None:
    """Append to the workspace's launch.json a copy of its first configuration ("Pylightnix: demo")
    with ``fields`` changed."""
    launch_file = ws["workspace"] / ".vscode/launch.json"
    launch = json.loads(launch_file.read_text())
    launch["configurations"].append(dict(launch["configurations"][0], **fields))
    launch_file.write_text(json.dumps(launch, indent=2))


def cli_ls(store: Path) -> List[Dict[str, Any]]:
    """``python -m pylightnix ls --json`` on ``store``."""
    env = dict(os.environ, PYLIGHTNIX_ROOT=str(store))
    proc = subprocess.run([sys.executable, "-m", "pylightnix", "ls", "--json"], env=env, capture_output=True,
                          text=True, timeout=60)
    if proc.returncode != 0:
        raise VSCodeTestError(f"pylightnix ls --json failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout)


def assert_one_realization(store: Path, name: str) -> Path:
    """Exactly one realization of ``name``, seen in the store folder and by the CLI; return its folder."""
    found = realizations(store, name)
    assert len(found) == 1, f"expected exactly one realization of {name}, found {found}"
    assert (found[0] / "context.json").is_file(), f"{found[0]} has no context.json"
    listed = [d for d in cli_ls(store) if d["name"] == name]
    assert [d["realizations"] for d in listed] == [1], f"pylightnix ls --json says {listed}"
    return found[0]


def rref_of(realization: Path) -> str:
    """``rref:<rhash>-<dhash>-<name>`` of a realization folder ``<dhash>-<name>/<rhash>``."""
    dhash, name = realization.parent.name.split("-", 1)
    return f"rref:{realization.name}-{dhash}-{name}"


def realizations(store: Path, name: str) -> List[Path]:
    """Realization folders ``store-v0/<dhash>-<name>/<rhash>/`` of derivation ``name``."""
    out = []
    for drv in sorted((store / "store-v0").glob(f"*-{name}")):
        out += [p for p in sorted(drv.iterdir()) if p.is_dir() and RHASH_DIR.match(p.name)]
    return out


# --------------------------------------------------------------------------- driving
def drive(tools: Path, scenario: str, artifacts: Path, **cfg: Any) -> List[Dict[str, Any]]:
    """Run one drive.js scenario; return its step records or fail with the reason and artifacts."""
    artifacts.mkdir(parents=True, exist_ok=True)
    cfg.update({"playwrightCore": str(tools / "tools/node_modules/playwright-core"), "chromium": CHROMIUM,
                "artifacts": str(artifacts), "timeoutMs": 60000})
    cfg_file = artifacts / f"{scenario}-config.json"
    cfg_file.write_text(json.dumps(cfg, indent=2))
    env = dict(os.environ, NODE_PATH=str(tools / "tools/node_modules"))
    try:
        proc = subprocess.run(["node", str(HERE / "drive.js"), scenario, str(cfg_file)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=420)
    except subprocess.TimeoutExpired as e:
        raise VSCodeTestError(f"drive.js {scenario} did not finish in 420 s; screenshots in {artifacts}") from e
    (artifacts / f"{scenario}-steps.jsonl").write_text(proc.stdout)
    steps = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0:
        raise VSCodeTestError(f"drive.js {scenario} failed: {proc.stderr.strip()[-3000:]}\n"
                              f"steps: {[s.get('step') for s in steps]}\nscreenshots in {artifacts}")
    return steps


def _artifacts(request: pytest.FixtureRequest) -> Path:
    return ARTIFACTS / request.node.name


def _code_server_log(cs: CodeServer) -> str:
    try:
        return cs.log.read_text()[-3000:]
    except OSError:
        return ""


DOCS_IMG = REPO / "docs/img"


def publish_screenshots(artifacts: Path, mapping: Dict[str, str]) -> None:
    """With PYLIGHTNIX_VSCODE_DOCS_IMG=1, copy a passing run's screenshots to docs/img for the README."""
    if os.environ.get("PYLIGHTNIX_VSCODE_DOCS_IMG", "") in ("", "0"):
        return
    DOCS_IMG.mkdir(parents=True, exist_ok=True)
    for src, dst in mapping.items():
        matches = sorted(artifacts.glob(f"*-{src}.png"))
        if len(matches) != 1:
            raise VSCodeTestError(f"expected one screenshot for step {src!r} in {artifacts}, found {matches}")
        shutil.copy(matches[0], DOCS_IMG / dst)


RREF_RE = r"re:rref:[0-9a-f]{32}-[0-9a-f]{32}-convnn_mnist"
#: the adapter's own files: none of them may ever open in the editor
ADAPTER_FILES = sorted({p.name for p in (REPO / "dap_adapter").rglob("*.py")})


def user_code(ws: Dict[str, Path], file: str, text: str) -> Dict[str, Any]:
    """Where the editor must show the user's code: ``file`` at the line containing ``text``."""
    lines = (ws["workspace"] / file).read_text().splitlines()
    return {"file": file, "line": next(i for i, line in enumerate(lines, 1) if text in line)}


# --------------------------------------------------------------------------- tests
def test_workbench_extension_and_function_breakpoint(code_server: CodeServer, tools: Path, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    """The workbench loads, the extension's command is there, a function breakpoint can be added."""
    ws = make_workspace(tmp_path)
    steps = drive(tools, "smoke", _artifacts(request), url=code_server.url(ws["workspace"]))
    assert [s["step"] for s in steps if "step" in s] == ["workbench", "run-view", "function-breakpoint"]


def test_build_breakpoint_commit_by_hand(code_server: CodeServer, tools: Path, tmp_path: Path,
                                         request: pytest.FixtureRequest) -> None:
    """Pause before convnn_mnist, build it by hand in the IPython Debug Console, continue.

    At the pause the editor switches from mnist.py to the stage that declared the
    derivation (demo.py's ``def convnn_mnist_fixed``); no adapter file is ever opened."""
    ws = make_workspace(tmp_path)
    art = _artifacts(request)
    started = time.monotonic()
    try:
        drive(tools, "buildBreakpoint", art, url=code_server.url(ws["workspace"]), configName="Pylightnix: demo",
              openFile="mnist.py", expectUserCode=user_code(ws, "demo.py", "def convnn_mnist_fixed(m)"),
              adapterFiles=ADAPTER_FILES,
              consoleLines=[
                  {"line": "b = Model(repl_buildargs())"},
                  {"line": "type(b).__name__", "expect": "Model"},
                  {"line": "mnist_train(b)", "expect": "train samples"},
                  {"line": "mnist_eval_correct(b)"},
                  {"line": "%timeit -n1 -r1 1+1", "expect": "per loop"},
                  # a cell that raises: a failed evaluate, its traceback shown in the console
                  {"line": "undefined_name + 1", "expect": "NameError: name 'undefined_name' is not defined"},
                  {"line": "repl_continueBuild(b)", "expect": RREF_RE},
              ],
              finalOutput=RREF_RE)
    except VSCodeTestError as e:
        raise VSCodeTestError(f"{e}\ncode-server log:\n{_code_server_log(code_server)}") from None
    took = time.monotonic() - started
    (art / "timing.json").write_text(json.dumps({"scenario_seconds": round(took, 1)}))
    rref = rref_of(assert_one_realization(ws["store"], "convnn_mnist"))
    # The realization committed from the console is the one the program went on with and printed.
    repl = (art / "buildBreakpoint-repl.txt").read_text()
    assert rref in repl, f"{rref} not in the Debug Console output:\n{repl}"
    publish_screenshots(art, {"function-breakpoint": "vscode-1-breakpoint.png", "variables": "vscode-2-paused.png",
                              "console-6": "vscode-3-console.png", "program-output": "vscode-4-done.png"})


def test_failed_build_fixed_in_console(code_server: CodeServer, tools: Path, tmp_path: Path,
                                       request: pytest.FixtureRequest) -> None:
    """"Failed builds" filter: stop on the AttributeError, fix and commit from the console, continue.

    At the failure the editor shows the line of mnist.py that raised; no adapter file is ever opened."""
    ws = make_workspace(tmp_path)
    art = _artifacts(request)
    started = time.monotonic()
    try:
        drive(tools, "failedBuild", art, url=code_server.url(ws["workspace"]), configName="Pylightnix: broken demo",
              openFile="broken_demo.py", expectUserCode=user_code(ws, "mnist.py", 'b.model.load(join(o, "checkpoint.ckpt"))'),
              adapterFiles=ADAPTER_FILES,
              expectStop="Build of convnn_mnist failed: AttributeError",
              consoleLines=[
                  {"line": "type(b).__name__", "expect": "Model"},
                  {"line": "mnist_eval_correct(b)"},
                  {"line": "repl_continueBuild(b)", "expect": RREF_RE},
              ],
              finalOutput=RREF_RE)
    except VSCodeTestError as e:
        raise VSCodeTestError(f"{e}\ncode-server log:\n{_code_server_log(code_server)}") from None
    took = time.monotonic() - started
    (art / "timing.json").write_text(json.dumps({"scenario_seconds": round(took, 1)}))
    rref = rref_of(assert_one_realization(ws["store"], "convnn_mnist"))
    repl = (art / "failedBuild-repl.txt").read_text()
    assert rref in repl, f"{rref} not in the Debug Console output:\n{repl}"
    # Trained once, by the failing realizer; the fix in the console did not retrain.
    assert repl.count("3000 train samples") == 1, f"training ran {repl.count('3000 train samples')} times"
    publish_screenshots(art, {"filter-enabled": "vscode-5-filter.png", "failed-locals": "vscode-6-failed.png",
                              "console-3": "vscode-7-fixed.png"})


def test_break_on_failed_builds_from_the_first_run(code_server: CodeServer, tools: Path, tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    """launch.json's ``breakOnFailedBuilds``: a fresh VS Code (the "Failed builds" filter not
    known yet), no stopOnEntry, and the first run stops on the failed build in mnist.py."""
    ws = make_workspace(tmp_path)
    try:
        drive(tools, "failedBuild", _artifacts(request), url=code_server.url(ws["workspace"]),
              configName="Pylightnix: broken demo, breakOnFailedBuilds", firstRun=True,
              expectStop="Build of convnn_mnist failed: AttributeError",
              expectUserCode=user_code(ws, "mnist.py", 'b.model.load(join(o, "checkpoint.ckpt"))'),
              adapterFiles=ADAPTER_FILES,
              consoleLines=[{"line": "mnist_eval_correct(b)"}, {"line": "repl_continueBuild(b)", "expect": RREF_RE}],
              finalOutput=RREF_RE)
    except VSCodeTestError as e:
        raise VSCodeTestError(f"{e}\ncode-server log:\n{_code_server_log(code_server)}") from None
    assert_one_realization(ws["store"], "convnn_mnist")


def test_add_build_breakpoint_command_lists_the_store(code_server: CodeServer, tools: Path, tmp_path: Path,
                                                     request: pytest.FixtureRequest) -> None:
    """"Pylightnix: Add Build Breakpoint" offers the store's derivations and adds a function breakpoint."""
    ws = make_workspace(tmp_path)
    env = dict(os.environ, PYLIGHTNIX_ROOT=str(ws["store"]))
    run = subprocess.run([sys.executable, str(ws["workspace"] / "demo.py")], env=env, capture_output=True,
                         text=True, timeout=120, cwd=str(ws["workspace"]))
    assert run.returncode == 0, run.stderr
    assert_one_realization(ws["store"], "convnn_mnist")
    drive(tools, "addBuildBreakpointCommand", _artifacts(request), url=code_server.url(ws["workspace"]),
          expectItems=[{"label": "convnn_mnist", "description": "1 realization"},
                       {"label": "mnist", "description": "1 realization"}], pick="convnn_mnist")
    publish_screenshots(_artifacts(request), {"store-listed": "vscode-add-build-breakpoint.png"})


def instantiate_demo(ws: Dict[str, Path]) -> None:
    """Instantiate examples/demo.py's pipeline into the workspace's store: its derivations are
    known to the store, none is realized yet."""
    code = ("import demo; from pylightnix import instantiate, store_initialize; "
            "store_initialize(); instantiate(demo.convnn_mnist_fixed)")
    env = dict(os.environ, PYLIGHTNIX_ROOT=str(ws["store"]))
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                         cwd=str(ws["workspace"]))
    assert run.returncode == 0, run.stderr
    assert sorted((d["name"], d["realizations"]) for d in cli_ls(ws["store"])) == [("convnn_mnist", 0), ("mnist", 0)]


def test_view_lists_the_store_and_breaks_before_building(code_server: CodeServer, tools: Path, tmp_path: Path,
                                                         request: pytest.FixtureRequest) -> None:
    """The "Pylightnix" view in Run and Debug, no session yet: the Running group says "No running
    realization"; "Derivations in the store" lists the store's derivations (instantiated, none
    realized); the inline action "Break before building" on convnn_mnist adds that build
    breakpoint; "Pylightnix: demo" stops before building it; after the session the group lists
    the new realization."""
    ws = make_workspace(tmp_path)
    instantiate_demo(ws)
    art = _artifacts(request)
    drive(tools, "storeView", art, url=code_server.url(ws["workspace"]), configName="Pylightnix: demo",
          expectItems=[{"label": "convnn_mnist", "description": "0 realizations"},
                       {"label": "mnist", "description": "0 realizations"}],
          pick="convnn_mnist", expectAfter="1 realization")
    assert_one_realization(ws["store"], "convnn_mnist")
    # The breakpoint came from the inline action: the extension logged it as a build breakpoint.
    channel_logs = list((code_server.user_data / "logs").glob("*/exthost*/output_logging_*/*Pylightnix.log"))
    assert any("build breakpoint: convnn_mnist" in p.read_text() for p in channel_logs), channel_logs
    trace = [json.loads(line) for line in (art / "logs/dap-trace.jsonl").read_text().splitlines()]
    bps = [m["msg"]["arguments"]["breakpoints"] for m in trace
           if m["dir"] == "to-adapter" and m["msg"].get("command") == "setFunctionBreakpoints"]
    assert bps and bps[-1] == [{"name": "convnn_mnist"}], bps
    publish_screenshots(art, {"store-selected": "vscode-8-view-store.png"})




def test_view_shows_a_build_paused_in_the_driver(code_server: CodeServer, tools: Path, tmp_path: Path,
                                                 request: pytest.FixtureRequest) -> None:
    """No scale-out: at the build breakpoint on convnn_mnist the Running group (fed by the
    adapter's ``pylightnixBuilds`` event) shows convnn_mnist "paused in the driver" and mnist
    "done"; clicking the paused build selects its session, away from a second session (the
    broken demo, stopped on entry, not realizing anything) that had the focus; after the runs the
    group says "No running realization" again."""
    ws = make_workspace(tmp_path)
    art = _artifacts(request)
    drive(tools, "runningViewDriver", art, url=code_server.url(ws["workspace"]), configName="Pylightnix: demo",
          otherConfig="Pylightnix: broken demo", pick="convnn_mnist",
          expectRunning=[{"label": "mnist", "description": "done"}])
    assert_one_realization(ws["store"], "convnn_mnist")
    events = [m["msg"] for m in (json.loads(line) for line in (art / "logs/dap-trace.jsonl").read_text().splitlines())
              if m["dir"] == "from-adapter" and m["msg"].get("event") == "pylightnixBuilds"]
    paused = [b for e in events for b in e["body"]["builds"] if b["state"] == "paused"]
    assert paused and all(b["name"] == "convnn_mnist" and b["where"] == "driver" and b["pauseId"] is None
                          for b in paused), paused
    publish_screenshots(art, {"running-paused": "vscode-9-view-running.png"})


WORKERS_PROGRAM = """\
\"\"\"examples/demo.py's pipeline, built on 2 local worker processes.\"\"\"
import sys
from os.path import dirname, join

sys.path.insert(0, dirname(__file__))

from demo import convnn_mnist_fixed  # noqa: E402
from pylightnix import instantiate, realize, store_initialize  # noqa: E402
from pylightnix.scale.executors import Processes  # noqa: E402

if __name__ == "__main__":
    store_initialize()
    rref = realize(instantiate(convnn_mnist_fixed), executor=Processes(2))
    with open(join(dirname(__file__), "rref.txt"), "w") as f:
        f.write(rref)
    print(rref)
"""


def test_child_session_for_a_build_paused_on_a_worker(code_server: CodeServer, tools: Path, tmp_path: Path,
                                                      request: pytest.FixtureRequest) -> None:
    """``executor=Processes(2)`` and a build breakpoint on convnn_mnist: the build pauses on its
    worker; the adapter's ``startDebugging`` makes a child session nested under the parent in
    the Call Stack; the Pylightnix view shows "paused on …"; clicking it selects the child
    session; its Debug Console builds and commits by hand; Continue finishes the run, and the
    store holds exactly that realization (the one the program printed)."""
    ws = make_workspace(tmp_path)
    (ws["workspace"] / "demo_workers.py").write_text(WORKERS_PROGRAM)
    add_launch_config(ws, name="Pylightnix: demo on 2 workers", program="${workspaceFolder}/demo_workers.py")
    art = _artifacts(request)
    try:
        drive(tools, "childSession", art, url=code_server.url(ws["workspace"]), configName="Pylightnix: demo on 2 workers",
              pick="convnn_mnist",
              consoleLines=[
                  {"line": "import os; os.getpid()"},
                  {"line": "b = Model(repl_buildargs())"},
                  {"line": "mnist_train(b)", "expect": "train samples"},
                  {"line": "mnist_eval_correct(b)"},
                  {"line": "repl_continueBuild(b)", "expect": RREF_RE},
              ])
    except VSCodeTestError as e:
        raise VSCodeTestError(f"{e}\ncode-server log:\n{_code_server_log(code_server)}") from None
    rref = rref_of(assert_one_realization(ws["store"], "convnn_mnist"))
    assert (ws["workspace"] / "rref.txt").read_text() == rref
    child_repl = (art / "childSession-child-repl.txt").read_text()
    assert rref in child_repl, f"{rref} not in the child session's Debug Console:\n{child_repl}"
    # The child session is the adapter's startDebugging, attached to the pause through the hub.
    trace = [json.loads(line)["msg"] for line in (art / "logs/dap-trace.jsonl").read_text().splitlines()]
    starts = [m for m in trace if isinstance(m, dict) and m.get("type") == "request"
              and m.get("command") == "startDebugging"]
    assert len(starts) == 1, starts
    config = starts[0]["arguments"]["configuration"]
    assert config["type"] == "pylightnix" and config["request"] == "attach", config
    assert config["pylightnixPause"]["name"] == "convnn_mnist" and config["connect"]["host"] == "127.0.0.1", config
    # the worker's pid, as the Debug Console saw it, is the one the child session names
    assert f"pid {config['pylightnixPause']['pid']}" in config["name"], config
    assert str(config["pylightnixPause"]["pid"]) in child_repl, child_repl
    # Trained once, by hand on the worker: Continue did not run the realizer again.
    assert child_repl.count("3000 train samples") == 1, child_repl
    publish_screenshots(art, {"child-session": "vscode-10-child-session.png", "running-paused": "vscode-11-view-worker.png",
                              "console-5": "vscode-12-child-console.png"})


@pytest.fixture
def adapter_server(tmp_path: Path) -> Iterator[int]:
    """``python -m dap_adapter --port N`` in its own process group, as launch.json's debugServer expects."""
    port = _free_port()
    log = tmp_path / "dap-server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "dap_adapter", "--port", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise VSCodeTestError(f"dap_adapter --port {port} did not come up:\n{log.read_text()}")
                time.sleep(0.1)
        yield port
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def test_debug_server_with_build_breakpoints_in_launch_json(code_server: CodeServer, adapter_server: int,
                                                             tools: Path, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    """launch.json's ``debugServer`` route to ``dap_adapter --port``, with ``buildBreakpoints`` in the
    configuration; Continue at the pause runs the stage's own realizer."""
    ws = make_workspace(tmp_path)
    add_launch_config(ws, name="Pylightnix: demo via debugServer", debugServer=adapter_server, buildBreakpoints=["convnn_*"])
    drive(tools, "continueAtPause", _artifacts(request), url=code_server.url(ws["workspace"]),
          configName="Pylightnix: demo via debugServer", finalOutput=RREF_RE)
    rref = rref_of(assert_one_realization(ws["store"], "convnn_mnist"))
    repl = (_artifacts(request) / "continueAtPause-repl.txt").read_text()
    assert rref in repl, f"{rref} not in the Debug Console output:\n{repl}"
    # The realizer ran after Continue (its training output), and the extension did not start an
    # adapter of its own: the debugServer took precedence.
    assert "train samples" in repl
    assert '"command":"launch"' in (_artifacts(request) / "logs/dap-trace.jsonl").read_text()
    channel_logs = list((code_server.user_data / "logs").glob("*/exthost*/output_logging_*/*Pylightnix.log"))
    assert channel_logs, "the extension's output channel log is missing"
    assert all("starting adapter" not in p.read_text() for p in channel_logs), channel_logs


def test_attach_to_pylightnix_debug_listen(code_server: CodeServer, tools: Path, tmp_path: Path,
                                           request: pytest.FixtureRequest) -> None:
    """Attach (``connect``) to ``python -m pylightnix debug --listen``: the build breakpoint from the
    Breakpoints view pauses the running job; Continue lets it finish."""
    ws = make_workspace(tmp_path)
    port = _free_port()
    debug_dir = tmp_path / "debug-dir"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYLIGHTNIX_")}
    env.update({"PYLIGHTNIX_ROOT": str(ws["store"]), "PYLIGHTNIX_DEBUG_DIR": str(debug_dir),
                "PYLIGHTNIX_DEBUG_WAIT": "1", "IPYTHONDIR": str(tmp_path / "ipython")})
    err_path = tmp_path / "job.err"
    with open(tmp_path / "job.out", "w") as out, open(err_path, "w") as err:
        # files, not pipes: debugpy's adapter process inherits them; its own group, stopped below
        job = subprocess.Popen([sys.executable, "-m", "pylightnix", "debug", "--listen", f"127.0.0.1:{port}",
                                str(ws["workspace"] / "demo.py")], env=env, stdout=out, stderr=err,
                               stdin=subprocess.DEVNULL, start_new_session=True, cwd=str(ws["workspace"]))
    try:
        deadline = time.monotonic() + 60
        while "waiting for a debugger" not in err_path.read_text():
            if job.poll() is not None or time.monotonic() > deadline:
                raise VSCodeTestError(f"pylightnix debug --listen did not come up:\n{err_path.read_text()}")
            time.sleep(0.1)
        launch_file = ws["workspace"] / ".vscode/launch.json"
        launch = json.loads(launch_file.read_text())
        launch["configurations"].append({
            "type": "pylightnix", "request": "attach", "name": "Pylightnix: attach",
            "connect": {"host": "127.0.0.1", "port": port}, "python": sys.executable,
            "pylightnixAttachFile": str(debug_dir / f"attach-{port}.json")})
        launch_file.write_text(json.dumps(launch, indent=2))
        drive(tools, "continueAtPause", _artifacts(request), url=code_server.url(ws["workspace"]),
              configName="Pylightnix: attach", functionBreakpoint="convnn_mnist")
        assert job.wait(timeout=60) == 0, err_path.read_text()
    finally:
        try:
            os.killpg(job.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        job.wait(timeout=10)
    out_text = (tmp_path / "job.out").read_text()
    rref = rref_of(assert_one_realization(ws["store"], "convnn_mnist"))
    assert rref in out_text, f"the job printed {out_text!r}, not {rref}"


# --------------------------------------------------------------------------- install story
@pytest.fixture(scope="session")
def bundled_wheel(vsix: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pylightnix wheel inside the packaged .vsix (what the extension's install hint names)."""
    out = tmp_path_factory.mktemp("vsix-unpacked")
    with zipfile.ZipFile(vsix) as z:
        z.extractall(out)
    wheels = sorted((out / "extension/bundled/wheels").glob("pylightnix_breakpoints-*-py3-none-any.whl"))
    if len(wheels) != 1:
        raise VSCodeTestError(f"expected one pylightnix wheel in the .vsix, found {wheels}")
    return wheels[0]


def clean_env(**extra: str) -> Dict[str, str]:
    """The environment without this test run's Python set-up (PYTHONPATH, PYLIGHTNIX_*)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("PYLIGHTNIX_")}
    env.update(extra)
    return env


def make_venv(where: Path, base: str = sys.executable, with_pip: bool = True) -> Path:
    """A fresh virtual environment of ``base``; returns its python."""
    args = [base, "-m", "venv", str(where)] + ([] if with_pip else ["--without-pip"])
    subprocess.run(args, check=True, timeout=300, env=clean_env())
    return where / "bin/python"


def can_import(python: Path, module: str) -> bool:
    return subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, timeout=60,
                          env=clean_env(), cwd=str(python.parent)).returncode == 0


def run_hint(command: str) -> None:
    """Run an install hint exactly as shown to the user, in a shell."""
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=600, env=clean_env())
    assert proc.returncode == 0, f"the hint `{command}` failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


def adapter_initialize_error(python: Path, cwd: Path) -> str:
    """The message of a failed ``initialize`` to ``python -m dap_adapter`` (stdio)."""
    from dap_adapter.common.messaging import Endpoint
    from dap_adapter.testing import Client
    proc = subprocess.Popen([str(python), "-m", "dap_adapter"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=clean_env(), cwd=str(cwd), bufsize=0)
    assert proc.stdin is not None and proc.stdout is not None
    client = Client(Endpoint.from_streams(proc.stdout, proc.stdin), None, proc)
    try:
        resp = client.request("initialize", {"adapterID": "pylightnix"}, timeout=60, ok=False)
    finally:
        client.close()
        proc.kill()
        proc.wait(timeout=10)
    assert not resp["success"], resp
    return str(resp.get("message"))


def test_listen_install_hints_work(bundled_wheel: Path, tmp_path: Path) -> None:
    """``pylightnix debug --listen`` without dap_adapter, then without debugpy (and ``python -m
    dap_adapter`` without debugpy): each error names a command; running it makes --listen work."""
    python = make_venv(tmp_path / "venv")
    run_hint(f"{python} -m pip install -q --no-deps {bundled_wheel}")
    site = Path(subprocess.run([str(python), "-c", "import pylightnix, os; print(os.path.dirname(os.path.dirname("
                                "pylightnix.__file__)))"], capture_output=True, text=True, check=True,
                               env=clean_env(), timeout=60, cwd=str(tmp_path)).stdout.strip())
    assert site.is_relative_to(tmp_path / "venv"), site  # never delete anything outside the venv
    shutil.rmtree(site / "dap_adapter")
    script = tmp_path / "job.py"
    script.write_text("print('the job ran')\n")
    env = clean_env(PYLIGHTNIX_DEBUG_DIR=str(tmp_path / "debug"), PYLIGHTNIX_ROOT=str(tmp_path / "store"))

    def listen() -> subprocess.CompletedProcess:
        return subprocess.run([str(python), "-m", "pylightnix", "debug", "--listen", f"127.0.0.1:{_free_port()}",
                               str(script)], capture_output=True, text=True, timeout=120, env=env, cwd=str(tmp_path))

    for missing in ("dap_adapter", "debugpy"):
        proc = listen()
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        match = re.search(rf"--listen needs {missing}, .*; install it with: (.*)$", proc.stderr.strip())
        assert match, proc.stderr
        if missing == "debugpy":  # `python -m dap_adapter` (debugServer) names the same command
            assert match.group(1) in adapter_initialize_error(python, cwd=tmp_path)
        run_hint(match.group(1))
    assert can_import(python, "dap_adapter.debuggee.agent") and can_import(python, "debugpy")
    proc = listen()
    assert proc.returncode == 0, proc.stderr
    assert "waiting for a debugger to attach" in proc.stderr and "the job ran" in proc.stdout


def _dialog(steps: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The modal's texts, buttons sorted (their order depends on the platform)."""
    found = [s["dialog"] for s in steps if "dialog" in s]
    assert len(found) == 1, steps
    return dict(found[0], buttons=sorted(found[0]["buttons"]))


def test_error_dialogs_name_the_cause_and_open_it(code_server: CodeServer, tools: Path, tmp_path: Path,
                                                  request: pytest.FixtureRequest) -> None:
    """The pre-flight modal: a missing launch.json ``python`` offers "Open 'launch.json'", a missing
    ``pylightnix.python`` "Open Settings", a Python without pylightnix (or with the unrelated
    "pylightnix" from the index) the command that installs ours (run here: afterwards
    pylightnix.engine.breakpoints imports). Exact texts; no session starts."""
    bare = make_venv(tmp_path / "bare-venv")
    assert not can_import(bare, "pylightnix")
    ws = make_workspace(tmp_path, bare_python=bare)
    add_launch_config(ws, name="Pylightnix: no such python", python="/nonexistent/launch-python")
    art = _artifacts(request)

    steps = drive(tools, "errorDialog", art / "launch-json", url=code_server.url(ws["workspace"]),
                  configName="Pylightnix: no such python", click="Open 'launch.json'", expectTab="launch.json",
                  expectStatus="(8 selected)")  # "python" of that configuration
    assert _dialog(steps) == {
        "message": 'Pylightnix cannot start debugging: the Python interpreter "/nonexistent/launch-python" was not found.',
        "detail": 'It comes from "python" in the launch configuration "Pylightnix: no such python". '
                  'Choose a Python 3.10 or newer.',
        "buttons": ["Cancel", "Open 'launch.json'"]}

    steps = drive(tools, "errorDialog", art / "install", url=code_server.url(ws["workspace"]),
                  configName="Pylightnix: without pylightnix", click="Copy Install Command")
    dialog = _dialog(steps)
    wheel = next(code_server.extensions.glob("pylightnix.pylightnix-debug-*/bundled/wheels/*.whl"))
    command = f"{bare} -m pip install {wheel}"
    assert dialog == {
        "message": f'Pylightnix cannot start debugging: pylightnix is not installed for "{bare}".',
        "detail": f'It comes from "python" in the launch configuration "Pylightnix: without pylightnix". '
                  f'Install it with: {command}',
        "buttons": ["Cancel", "Copy Install Command", "Open 'launch.json'"]}

    # The unrelated "pylightnix" from the package index has the same import name.
    run_hint(f"{bare} -m pip install -q pylightnix==0.3.0")
    assert can_import(bare, "pylightnix") and not can_import(bare, "pylightnix.engine.breakpoints")
    steps = drive(tools, "errorDialog", art / "unrelated", url=code_server.url(ws["workspace"]),
                  configName="Pylightnix: without pylightnix", click="Copy Install Command")
    dialog = _dialog(steps)
    replace = f"{bare} -m pip uninstall -y pylightnix && {command}"
    assert dialog["message"] == f'Pylightnix cannot start debugging: the pylightnix installed for "{bare}" has no build breakpoints.'
    assert dialog["detail"].startswith('It is probably the unrelated "pylightnix" from PyPI '
                                       "(ModuleNotFoundError: No module named 'pylightnix.engine')"), dialog
    assert dialog["detail"].endswith('). It comes from "python" in the launch configuration "Pylightnix: without pylightnix". '
                                     f'Replace it with: {replace}'), dialog
    assert dialog["buttons"] == ["Cancel", "Copy Install Command", "Open 'launch.json'"]
    run_hint(replace)  # it runs `command`, the hint of the dialog before
    assert can_import(bare, "pylightnix.engine.breakpoints")

    (ws["workspace"] / ".vscode/settings.json").write_text(json.dumps({"pylightnix.python": "/nonexistent/setting-python"}))
    steps = drive(tools, "errorDialog", art / "settings", url=code_server.url(ws["workspace"]),
                  configName="Pylightnix: demo", click="Open Settings",
                  expectSetting="Python interpreter (3.10 or newer) that runs the debug adapter",
                  expectSettingsScope="Workspace")  # where the bad value is
    assert _dialog(steps) == {
        "message": 'Pylightnix cannot start debugging: the Python interpreter "/nonexistent/setting-python" was not found.',
        "detail": 'It comes from the "pylightnix.python" setting. Choose a Python 3.10 or newer.',
        "buttons": ["Cancel", "Open Settings"]}


PY310 = Path.home() / ".pyenv/versions/3.10.13/bin/python"


def test_bundle_serves_an_interpreter_with_only_pylightnix(code_server: CodeServer, tools: Path, tmp_path: Path,
                                                           bundled_wheel: Path, request: pytest.FixtureRequest) -> None:
    """A Python 3.10 with pylightnix (--no-deps) and numpy but neither debugpy nor IPython: the
    extension's bundled debugpy and IPython pause the build and run the Debug Console."""
    base = str(PY310) if PY310.is_file() else sys.executable
    python = make_venv(tmp_path / "only-pylightnix", base=base, with_pip=False)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    str(bundled_wheel), "numpy"], check=True, timeout=600, env=clean_env())
    assert can_import(python, "pylightnix.engine.breakpoints") and can_import(python, "numpy")
    assert not can_import(python, "debugpy") and not can_import(python, "IPython")
    ws = make_workspace(tmp_path)
    add_launch_config(ws, name="Pylightnix: demo, only pylightnix", python=str(python))
    art = _artifacts(request)
    bundled = r"pylightnix\.pylightnix-debug-[^/]+/bundled/libs"
    drive(tools, "buildBreakpoint", art, url=code_server.url(ws["workspace"]),
          configName="Pylightnix: demo, only pylightnix",
          consoleLines=[
              {"line": "import os, sys, IPython, debugpy; print(sys.version_info[:2], os.path.realpath(IPython.__file__), "
                       "os.path.realpath(debugpy.__file__))",
               "expect": f"re:{bundled}/IPython/__init__\\.py .*{bundled}/debugpy/__init__\\.py"},
              {"line": "b = Model(repl_buildargs())"},
              {"line": "%timeit -n1 -r1 1+1", "expect": "per loop"},
              {"line": "mnist_train(b)", "expect": "train samples"},
              {"line": "mnist_eval_correct(b)"},
              {"line": "repl_continueBuild(b)", "expect": RREF_RE},
          ],
          finalOutput=RREF_RE)
    rref = rref_of(assert_one_realization(ws["store"], "convnn_mnist"))
    repl = (art / "buildBreakpoint-repl.txt").read_text()
    assert rref in repl, f"{rref} not in the Debug Console output:\n{repl}"
    if base == str(PY310):
        assert "(3, 10)" in repl, repl


def test_bundle_prefers_the_interpreters_own_compatible_packages(bundled_wheel: Path, tmp_path: Path) -> None:
    """``dap_adapter.bundle.use()`` from the .vsix: the interpreter's own IPython (new enough) wins over
    the bundled one; a debugpy older than 1.8.0 on the path is passed over for the bundled one;
    pylightnix never comes from the bundle."""
    bundled = bundled_wheel.parents[1]
    old = tmp_path / "old-site"
    (old / "debugpy").mkdir(parents=True)
    (old / "debugpy/__init__.py").write_text("raise ImportError('the old debugpy was imported')\n")
    (old / "debugpy-1.0.0.dist-info").mkdir()
    (old / "debugpy-1.0.0.dist-info/METADATA").write_text("Metadata-Version: 2.1\nName: debugpy\nVersion: 1.0.0\n")
    code = ("import json, dap_adapter.bundle as b; libs = b.use(); import IPython, debugpy, pylightnix;"
            "print(json.dumps([libs, IPython.__file__, debugpy.__file__, pylightnix.__file__]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                          env=clean_env(PYTHONPATH=os.pathsep.join([str(bundled / "adapter"), str(old)])))
    assert proc.returncode == 0, proc.stderr
    libs, ipython, debugpy, pylightnix = json.loads(proc.stdout)
    assert libs == str(bundled / "libs")
    import IPython
    assert ipython == IPython.__file__  # this interpreter's IPython >= 8.12, not the bundled one
    assert debugpy == str(bundled / "libs/debugpy/__init__.py")
    assert not pylightnix.startswith(str(bundled))
