// Pylightnix debugger extension: starts `python -m dap_adapter` for the
// `pylightnix` debug type and offers "Pylightnix: Add Build Breakpoint".
// Plain JavaScript, no build step.
'use strict';

const vscode = require('vscode');
const cp = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

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
  if (setting) return { python: expandVariables(setting, folder), source: 'the "pylightnix.python" setting' };
  if (configuration && typeof configuration.python === 'string' && configuration.python) {
    return { python: configuration.python, source: 'the launch configuration\'s "python"' };
  }
  const fromExt = await pythonExtensionInterpreter(folder);
  if (fromExt) return { python: fromExt, source: 'the Python extension\'s selected interpreter' };
  return { python: 'python3', source: 'the default' };
}

function installHint(python, source) {
  return `Install it into that interpreter with \`${python} -m pip install pylightnix\` ` +
    `(it brings debugpy and ipython), or set "pylightnix.python" to an interpreter that has it ` +
    `(now using ${python}, from ${source}).`;
}

/** Check that `python` can start the adapter; resolves to an error message or undefined. */
async function checkAdapter(python, source, cwd) {
  // First the packages (a clean "install pylightnix" message), then the adapter's own start-up.
  const checks = [['-c', 'import pylightnix, debugpy, IPython'], ['-m', 'dap_adapter', '--help']];
  for (const args of checks) {
    const r = await run(python, args, { cwd });
    if (!r.error) continue;
    if (r.error.code === 'ENOENT') {
      return `Pylightnix: cannot start the debug adapter: the Python interpreter "${python}" was not found. ` +
        `Set "pylightnix.python" to a Python that has pylightnix installed (now using ${source}).`;
    }
    const lines = r.stderr.trim().split('\n');
    const last = lines[lines.length - 1] || String(r.error.message);
    const missing = /No module named '?([^'\s]+)'?/.exec(last);
    const what = missing ? `the module "${missing[1]}" is missing` : last;
    return `Pylightnix: cannot start the debug adapter with ${python}: ${what}. ` + installHint(python, source);
  }
  return undefined;
}

class AdapterFactory {
  constructor(output) { this.output = output; }

  async createDebugAdapterDescriptor(session) {
    const folder = session.workspaceFolder;
    const { python, source } = await choosePython(folder, session.configuration);
    const cwd = folder ? folder.uri.fsPath : undefined;
    this.output.appendLine(`starting adapter: ${python} -m dap_adapter (interpreter from ${source})`);
    const problem = await checkAdapter(python, source, cwd);
    if (problem) {
      this.output.appendLine(problem);
      // VS Code shows a thrown error as the reason the session could not start.
      throw new Error(problem);
    }
    const args = ['-m', 'dap_adapter'];
    const logFile = vscode.workspace.getConfiguration('pylightnix', folder ? folder.uri : undefined).get('adapterLog');
    if (logFile) args.push('--log', expandVariables(logFile, folder));
    return new vscode.DebugAdapterExecutable(python, args, { cwd });
  }
}

class ConfigurationProvider {
  /** F5 without a launch.json: debug the active Python file. */
  resolveDebugConfiguration(folder, config) {
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
            'Run `python -m dap_adapter --help` with the same interpreter to see why (see the "Pylightnix" output).';
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
  const { python, source } = await choosePython(folder, { python: expandVariables(first.python, folder) });
  const env = { ...process.env };
  const root = storeRoot(folder);
  if (root) env.PYLIGHTNIX_ROOT = root;
  const cwd = folder ? folder.uri.fsPath : undefined;
  output.appendLine(`listing derivations: ${python} -m pylightnix ls --json (PYLIGHTNIX_ROOT=${env.PYLIGHTNIX_ROOT || 'default'})`);
  const r = await run(python, ['-m', 'pylightnix', 'ls', '--json'], { env, cwd });
  if (r.error) {
    const last = (r.stderr.trim().split('\n').pop() || String(r.error.message));
    throw new Error(`Pylightnix: could not list the store with ${python}: ${last}. ` + installHint(python, source));
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
  output.appendLine(`Pylightnix debugger ${context.extension ? context.extension.packageJSON.version : ''} active`);
  context.subscriptions.push(
    output,
    vscode.debug.registerDebugAdapterDescriptorFactory(DEBUG_TYPE, new AdapterFactory(output)),
    vscode.debug.registerDebugConfigurationProvider(DEBUG_TYPE, new ConfigurationProvider()),
    vscode.debug.registerDebugAdapterTrackerFactory(DEBUG_TYPE, new TrackerFactory(output)),
    vscode.commands.registerCommand('pylightnix.addBuildBreakpoint', (name) => addBuildBreakpoint(output, name)),
  );
}

function deactivate() {}

module.exports = { activate, deactivate };
