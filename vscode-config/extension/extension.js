// Pylightnix debugger extension: starts `python -m dap_adapter` (from the
// bundled/ folder that package.sh fills) for the `pylightnix` debug type,
// offers "Pylightnix: Add Build Breakpoint" and the "Pylightnix" view (buildsView.js).
// Plain JavaScript, no build step.
'use strict';

const vscode = require('vscode');
const cp = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { BuildsView, pauseOf } = require('./buildsView');

const DEBUG_TYPE = 'pylightnix';
const CHECK_TIMEOUT_MS = 30000;

/** Run `file args` and collect its output; never rejects. */
function run(file, args, options) {
  return new Promise((resolve) => {
    cp.execFile(file, args, { timeout: CHECK_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024, ...options },
      (error, stdout, stderr) => resolve({ error, stdout: String(stdout || ''), stderr: String(stderr || '') }));
  });
}

/** Substitute the few variables a setting or raw launch.json value may hold. */
function expandVariables(value, folder) {
  if (typeof value !== 'string') return value;
  const ws = folder ? folder.uri.fsPath : '';
  return value
    .replace(/\$\{workspaceFolder\}/g, ws)
    .replace(/\$\{userHome\}/g, os.homedir())
    .replace(/\$\{env:([^}]+)\}/g, (_, name) => process.env[name] || '');
}

/** The Python extension's selected interpreter for `folder`, if it is installed. */
async function pythonExtensionInterpreter(folder) {
  const ext = vscode.extensions.getExtension('ms-python.python');
  if (!ext) return undefined;
  try {
    const api = ext.isActive ? ext.exports : await ext.activate();
    const resource = folder ? folder.uri : undefined;
    if (api && api.environments && api.environments.getActiveEnvironmentPath) {
      const env = api.environments.getActiveEnvironmentPath(resource);
      if (env && env.path) return env.path;
    }
    if (api && api.settings && api.settings.getExecutionDetails) {
      const details = api.settings.getExecutionDetails(resource);
      if (details && details.execCommand && details.execCommand[0]) return details.execCommand[0];
    }
  } catch (e) {
    console.log(`pylightnix: could not ask the Python extension for its interpreter: ${e}`);
  }
  return undefined;
}

/**
 * The interpreter that runs the adapter and the CLI: the `pylightnix.python`
 * setting, else the launch configuration's `python` (it must have pylightnix
 * anyway), else the Python extension's interpreter, else `python3`.
 */
async function choosePython(folder, configuration) {
  const setting = vscode.workspace.getConfiguration('pylightnix', folder ? folder.uri : undefined).get('python');
  if (setting) return { python: expandVariables(setting, folder), source: 'setting' };
  if (configuration && typeof configuration.python === 'string' && configuration.python) {
    return { python: configuration.python, source: 'launch' };
  }
  const fromExt = await pythonExtensionInterpreter(folder);
  if (fromExt) return { python: fromExt, source: 'pythonExtension' };
  return { python: 'python3', source: 'default' };
}

/** The extension's bundled/ folder (dap_adapter, debugpy, IPython, a wheel of pylightnix), if packaged. */
let bundleRoot;
let bundleInfo;

function loadBundle(extensionPath) {
  const root = path.join(extensionPath, 'bundled');
  try {
    bundleInfo = JSON.parse(fs.readFileSync(path.join(root, 'bundle.json'), 'utf8'));
    bundleRoot = root;
  } catch (e) {
    bundleRoot = undefined;
    bundleInfo = undefined;
  }
}

/** A command-line word, quoted only when it needs to be. */
function shellWord(word) {
  return /^[A-Za-z0-9_\/.:=+@%,-]+$/.test(word) ? word : `"${word.replace(/(["\\$`])/g, '\\$1')}"`;
}

/** The command that installs pylightnix into `python`: the wheel this extension ships. */
function installCommand(python) {
  if (!bundleInfo) return undefined;
  return `${shellWord(python)} -m pip install ${shellWord(path.join(bundleRoot, bundleInfo.wheel))}`;
}

function installHint(python) {
  const cmd = installCommand(python);
  return cmd ? `Install it with: ${cmd}` : 'Install pylightnix-breakpoints there (see docs/vscode-install.md).';
}

const MIN_PYTHON = [3, 10];
/** Prints what the pre-flight check needs to know about an interpreter, as JSON. */
const PROBE = [
  'import json, sys',
  'r = {"version": "%d.%d" % sys.version_info[:2]}',
  'try:',
  '    from pylightnix.engine import breakpoints, events',
  '    r["pylightnix"] = "ok"',
  'except ImportError as e:',
  '    missing = type(e).__name__ == "ModuleNotFoundError" and e.name == "pylightnix"',
  '    r["pylightnix"] = "missing" if missing else "%s: %s" % (type(e).__name__, e)',
  'print(json.dumps(r))',
].join('\n');

/** Where an interpreter came from, for the message, and the button that changes it. */
function describeSource(source, configuration) {
  switch (source) {
    case 'setting':
      return { text: 'It comes from the "pylightnix.python" setting.', action: OPEN_SETTINGS };
    case 'launch':
      return { text: `It comes from "python" in the launch configuration "${configuration.name}".`, action: OPEN_LAUNCH_JSON };
    case 'pythonExtension':
      return { text: 'It is the Python extension\'s selected interpreter; the "pylightnix.python" setting overrides it.', action: OPEN_SETTINGS };
    default:
      return { text: 'It is the default: neither the "pylightnix.python" setting nor "python" in the launch configuration is set.', action: OPEN_SETTINGS };
  }
}

const OPEN_SETTINGS = 'Open Settings';
const OPEN_LAUNCH_JSON = 'Open \'launch.json\'';
const COPY_COMMAND = 'Copy Install Command';

/** Run PROBE with `python`: { version, pylightnix } or { notFound } or { failed: reason }. */
async function probe(python, cwd) {
  const r = await run(python, ['-c', PROBE], { cwd });
  if (r.error && r.error.code === 'ENOENT') return { notFound: true };
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop());
  } catch (e) {
    const lines = (r.stderr || String(r.error && r.error.message) || '').trim().split('\n');
    return { failed: lines[lines.length - 1] || `exit code ${r.error && r.error.code}` };
  }
}

function tooOld(version) {
  const [major, minor] = String(version).split('.').map(Number);
  return major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1]);
}

/**
 * Why this configuration cannot start, or undefined. The adapter's interpreter needs
 * Python >= 3.10 (the extension brings dap_adapter, debugpy and IPython); for launch,
 * the program's interpreter also needs pylightnix, which the program imports anyway.
 * Returns { message, detail, actions: [button...], python, command }.
 */
async function preflight(folder, configuration) {
  const cwd = folder ? folder.uri.fsPath : undefined;
  const adapter = await choosePython(folder, configuration);
  const checks = [{ ...adapter, needsPylightnix: false }];
  if (configuration.request !== 'attach') {
    const program = typeof configuration.python === 'string' && configuration.python
      ? { python: configuration.python, source: 'launch' } : adapter;
    if (program.python === adapter.python) checks[0].needsPylightnix = true;
    else checks.push({ ...program, needsPylightnix: true });
  }
  for (const { python, source, needsPylightnix } of checks) {
    const where = describeSource(source, configuration);
    const info = await probe(python, cwd);
    const fail = (message, detail, extra = []) => ({ message: `Pylightnix cannot start debugging: ${message}`, detail, actions: [...extra, where.action], python });
    if (info.notFound) {
      return fail(`the Python interpreter "${python}" was not found.`, `${where.text} Choose a Python ${MIN_PYTHON.join('.')} or newer.`);
    }
    if (info.failed) return fail(`"${python}" did not run: ${info.failed}.`, where.text);
    if (tooOld(info.version)) {
      return fail(`"${python}" is Python ${info.version}; the debugger needs Python ${MIN_PYTHON.join('.')} or newer.`, where.text);
    }
    if (!needsPylightnix || info.pylightnix === 'ok') continue;
    const command = installCommand(python);
    const copy = command ? [COPY_COMMAND] : [];
    if (info.pylightnix === 'missing') {
      return { ...fail(`pylightnix is not installed for "${python}".`, `${where.text} ${installHint(python)}`, copy), command };
    }
    // the unrelated "pylightnix" from PyPI provides the same import name: replace it
    const replace = command && `${shellWord(python)} -m pip uninstall -y pylightnix && ${command}`;
    return {
      ...fail(`the pylightnix installed for "${python}" has no build breakpoints.`,
        `It is probably the unrelated "pylightnix" from PyPI (${info.pylightnix}). ${where.text} ` +
        (replace ? `Replace it with: ${replace}` : installHint(python)), copy),
      command: replace,
    };
  }
  return undefined;
}

/** Open .vscode/launch.json at the "python" of the configuration named `name`. */
async function openLaunchJson(folder, name) {
  const file = folder ? vscode.Uri.joinPath(folder.uri, '.vscode', 'launch.json') : undefined;
  if (!file || !fs.existsSync(file.fsPath)) {
    await vscode.commands.executeCommand('workbench.action.debug.configure');
    return;
  }
  const doc = await vscode.workspace.openTextDocument(file);
  const text = doc.getText();
  const at = text.indexOf(JSON.stringify(name));
  const py = at >= 0 ? text.indexOf('"python"', at) : -1;
  const editor = await vscode.window.showTextDocument(doc);
  if (py >= 0) {
    const pos = doc.positionAt(py);
    editor.selection = new vscode.Selection(pos, doc.positionAt(py + '"python"'.length));
    editor.revealRange(new vscode.Range(pos, pos));
  }
}

/** Show `problem` as a modal error and do what the chosen button says. */
async function reportProblem(problem, folder, configuration, output) {
  output.appendLine(`${problem.message} ${problem.detail}`);
  const choice = await vscode.window.showErrorMessage(problem.message, { modal: true, detail: problem.detail }, ...problem.actions);
  if (choice === OPEN_SETTINGS) {
    // the scope that holds the value: the workspace's settings.json or the user's
    const where = vscode.workspace.getConfiguration('pylightnix', folder ? folder.uri : undefined).inspect('python') || {};
    const inWorkspace = where.workspaceFolderValue !== undefined || where.workspaceValue !== undefined;
    await vscode.commands.executeCommand(inWorkspace ? 'workbench.action.openWorkspaceSettings' : 'workbench.action.openSettings',
      { query: 'pylightnix.python' });
  } else if (choice === OPEN_LAUNCH_JSON) {
    await openLaunchJson(folder, configuration.name);
  } else if (choice === COPY_COMMAND && problem.command) {
    await vscode.env.clipboard.writeText(problem.command);
  }
}

class AdapterFactory {
  constructor(output) { this.output = output; }

  async createDebugAdapterDescriptor(session) {
    // A child session (a build paused on a worker) runs its adapter with the parent's interpreter.
    const owner = pauseOf(session.configuration) && session.parentSession ? session.parentSession : session;
    const folder = session.workspaceFolder || owner.workspaceFolder;
    const { python, source } = await choosePython(folder, owner.configuration);
    const cwd = folder ? folder.uri.fsPath : undefined;
    const args = ['-m', 'dap_adapter'];
    const logFile = vscode.workspace.getConfiguration('pylightnix', folder ? folder.uri : undefined).get('adapterLog');
    if (logFile) args.push('--log', expandVariables(logFile, folder));
    // The bundled dap_adapter comes first; it appends the bundled debugpy and IPython
    // after the interpreter's own packages (dap_adapter/bundle.py).
    const env = {};
    if (bundleRoot) {
      env.PYTHONPATH = [path.join(bundleRoot, 'adapter'), process.env.PYTHONPATH].filter(Boolean).join(path.delimiter);
    }
    this.output.appendLine(`starting adapter: ${python} ${args.join(' ')} (interpreter from ${source}` +
      `${env.PYTHONPATH ? `, PYTHONPATH=${env.PYTHONPATH}` : ''})`);
    return new vscode.DebugAdapterExecutable(python, args, { cwd, env });
  }
}

class ConfigurationProvider {
  constructor(output) { this.output = output; }

  /** F5 without a launch.json: debug the active Python file. */
  resolveDebugConfiguration(folder, config) {
    if (pauseOf(config)) return config;  // a child session from the adapter's startDebugging: as it is
    if (!config.type && !config.request && !config.name) {
      const editor = vscode.window.activeTextEditor;
      if (editor && editor.document.languageId === 'python') {
        return {
          type: DEBUG_TYPE, request: 'launch', name: 'Pylightnix: debug current file',
          program: editor.document.fileName, cwd: folder ? folder.uri.fsPath : path.dirname(editor.document.fileName),
          console: 'internalConsole',
        };
      }
      return vscode.window.showInformationMessage('Pylightnix: open a Python file to debug, or add a launch configuration.')
        .then(() => undefined);
    }
    if (config.request === 'launch' && !config.program && !config.module) {
      return vscode.window.showErrorMessage('Pylightnix: the launch configuration needs "program" or "module".')
        .then(() => undefined);
    }
    return config;
  }

  /** Check the interpreters before the session starts; on a problem, say which setting fixes it. */
  async resolveDebugConfigurationWithSubstitutedVariables(folder, config) {
    if (config.debugServer) return config;  // the user runs the adapter
    if (pauseOf(config)) return config;  // a child session: its parent passed the checks
    const problem = await preflight(folder, config);
    if (!problem) return config;
    await reportProblem(problem, folder, config, this.output);
    return undefined;  // undefined: VS Code aborts the start without a dialog of its own
  }
}

/** Appends the DAP traffic to the `pylightnix.traceFile` setting; reports an adapter that dies early. */
class TrackerFactory {
  constructor(output) { this.output = output; }

  createDebugAdapterTracker(session) {
    const folder = session.workspaceFolder;
    const traceFile = vscode.workspace.getConfiguration('pylightnix', folder ? folder.uri : undefined).get('traceFile');
    const file = traceFile ? expandVariables(traceFile, folder) : undefined;
    const output = this.output;
    let initialized = false;
    const write = (dir, msg) => {
      if (!file) return;
      try { fs.appendFileSync(file, JSON.stringify({ t: Date.now(), dir, msg }) + '\n'); } catch (e) { /* tracing is best effort */ }
    };
    return {
      onWillReceiveMessage: (m) => write('to-adapter', m),
      onDidSendMessage: (m) => {
        if (m && m.type === 'response' && m.command === 'initialize' && m.success) initialized = true;
        write('from-adapter', m);
      },
      onError: (e) => { write('error', String(e)); output.appendLine(`adapter error: ${e}`); },
      onExit: (code, signal) => {
        write('exit', { code, signal });
        if (!initialized && code) {
          const msg = `Pylightnix: the debug adapter exited with code ${code} before it started. ` +
            'The "Pylightnix" output shows the command that started it; run it with --help to see why.';
          output.appendLine(msg);
          vscode.window.showErrorMessage(msg);
        }
      },
    };
  }
}

/** The store root for the CLI: setting, a pylightnix launch config's env, else inherited. */
function storeRoot(folder) {
  const setting = vscode.workspace.getConfiguration('pylightnix', folder ? folder.uri : undefined).get('root');
  if (setting) return expandVariables(setting, folder);
  const configs = vscode.workspace.getConfiguration('launch', folder ? folder.uri : undefined).get('configurations') || [];
  for (const c of configs) {
    if (c && c.type === DEBUG_TYPE && c.env && typeof c.env.PYLIGHTNIX_ROOT === 'string') {
      return expandVariables(c.env.PYLIGHTNIX_ROOT, folder);
    }
  }
  return undefined;
}

/** Derivations known to the store, via `python -m pylightnix ls --json`. */
async function listDerivations(folder, output) {
  const launchConfigs = vscode.workspace.getConfiguration('launch', folder ? folder.uri : undefined).get('configurations') || [];
  const first = launchConfigs.find((c) => c && c.type === DEBUG_TYPE) || {};
  const { python } = await choosePython(folder, { python: expandVariables(first.python, folder) });
  const env = { ...process.env };
  const root = storeRoot(folder);
  if (root) env.PYLIGHTNIX_ROOT = root;
  const cwd = folder ? folder.uri.fsPath : undefined;
  output.appendLine(`listing derivations: ${python} -m pylightnix ls --json (PYLIGHTNIX_ROOT=${env.PYLIGHTNIX_ROOT || 'default'})`);
  const r = await run(python, ['-m', 'pylightnix', 'ls', '--json'], { env, cwd });
  if (r.error) {
    const last = (r.stderr.trim().split('\n').pop() || String(r.error.message));
    throw new Error(`Pylightnix: could not list the store with ${python}: ${last}. ` + installHint(python));
  }
  let items;
  try {
    items = JSON.parse(r.stdout);
  } catch (e) {
    throw new Error(`Pylightnix: \`pylightnix ls --json\` printed something that is not JSON: ${r.stdout.slice(0, 200)}`);
  }
  const byName = new Map();
  for (const d of Array.isArray(items) ? items : []) {
    if (!d || typeof d.name !== 'string') continue;
    const n = Array.isArray(d.realizations) ? d.realizations.length : Number(d.realizations || 0);
    const prev = byName.get(d.name) || { name: d.name, drefs: [], realizations: 0 };
    prev.drefs.push(String(d.dref || ''));
    prev.realizations += n;
    byName.set(d.name, prev);
  }
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** "Pylightnix: Add Build Breakpoint": pick a derivation name, add a function breakpoint. */
async function addBuildBreakpoint(output, nameArg) {
  let name = typeof nameArg === 'string' ? nameArg : undefined;
  if (!name) {
    const folder = vscode.workspace.workspaceFolders ? vscode.workspace.workspaceFolders[0] : undefined;
    let derivations = [];
    try {
      derivations = await listDerivations(folder, output);
    } catch (e) {
      vscode.window.showWarningMessage(String(e.message || e));
    }
    const OTHER = 'Other name or glob…';
    const picks = derivations.map((d) => ({
      label: d.name,
      description: `${d.realizations} realization${d.realizations === 1 ? '' : 's'}`,
      detail: d.drefs.join(', '),
    }));
    picks.push({ label: OTHER, description: 'type a derivation name or a glob such as convnn_*' });
    const chosen = await vscode.window.showQuickPick(picks, {
      title: 'Pylightnix: Add Build Breakpoint',
      placeHolder: derivations.length ? 'Pause before building this derivation' : 'The store has no derivations yet',
      matchOnDetail: true,
    });
    if (!chosen) return undefined;
    name = chosen.label;
    if (chosen.label === OTHER) {
      name = await vscode.window.showInputBox({
        title: 'Pylightnix: Add Build Breakpoint',
        prompt: 'Derivation name or glob',
        validateInput: (v) => (/^[A-Za-z0-9_*?[\]!-]+$/.test(v) ? undefined : 'Names use letters, digits, _ and -; globs add * ? [ ]'),
      });
      if (!name) return undefined;
    }
  }
  const exists = vscode.debug.breakpoints.some((bp) => bp instanceof vscode.FunctionBreakpoint && bp.functionName === name);
  if (!exists) vscode.debug.addBreakpoints([new vscode.FunctionBreakpoint(name)]);
  output.appendLine(`build breakpoint: ${name}`);
  return name;
}

function activate(context) {
  const output = vscode.window.createOutputChannel('Pylightnix');
  loadBundle(context.extensionPath);
  output.appendLine(`Pylightnix debugger ${context.extension ? context.extension.packageJSON.version : ''} active; ` +
    (bundleRoot ? `bundled libraries in ${bundleRoot}` : 'no bundled/ folder: the interpreter must have pylightnix-breakpoints[dap]'));
  context.subscriptions.push(
    output,
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, new AdapterFactory(output)),
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new ConfigurationProvider(output)),
    vscode.debug.registerDebugAdapterTrackerFactory(DEBUG_TYPE, new TrackerFactory(output)),
    vscode.commands.registerCommand('pylightnix.addBuildBreakpoint', (name) => addBuildBreakpoint(output, name)),
  );
  const firstFolder = () => (vscode.workspace.workspaceFolders ? vscode.workspace.workspaceFolders[0] : undefined);
  new BuildsView(() => listDerivations(firstFolder(), output)).register(context);
}

function deactivate() {}

module.exports = { activate, deactivate };
