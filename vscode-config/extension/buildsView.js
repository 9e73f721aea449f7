// The "Pylightnix" tree view in the Run and Debug side bar: the running realization
// (from the adapter's custom DAP event `pylightnixBuilds`) and the derivations in the
// store (with the inline action "Break before building").
'use strict';

const vscode = require('vscode');

const DEBUG_TYPE = 'pylightnix';
const VIEW_ID = 'pylightnix.builds';
const BUILDS_EVENT = 'pylightnixBuilds';

/** `pylightnixPause` of a child session's configuration (the adapter's `startDebugging` for a
 *  build paused on a worker), else undefined. */
function pauseOf(configuration) {
  const pause = configuration && configuration.pylightnixPause;
  return pause && typeof pause === 'object' ? pause : undefined;
}

/** The session that runs the realization: `session` itself, or the parent of a child session. */
function parentOf(session) {
  let s = session;
  while (s && pauseOf(s.configuration) && s.parentSession) s = s.parentSession;
  return s;
}

/** What the Running group says about one build: description and icon per state. */
function describeBuild(build) {
  const where = typeof build.where === 'string' && build.where ? build.where : undefined;
  const inDriver = !where || where === 'driver';
  const at = inDriver ? 'in the driver' : `on ${where}`;
  switch (build.state) {
    case 'paused':
      return { description: `paused ${at}`, icon: new vscode.ThemeIcon('debug-pause', new vscode.ThemeColor('debugIcon.pauseForeground')) };
    case 'building':
      return { description: `building ${at}`, icon: new vscode.ThemeIcon('sync~spin') };
    case 'cached':
      return { description: 'cached', icon: new vscode.ThemeIcon('database') };
    case 'done':
      return { description: 'done', icon: new vscode.ThemeIcon('pass', new vscode.ThemeColor('testing.iconPassed')) };
    case 'failed':
      return { description: 'failed', icon: new vscode.ThemeIcon('error', new vscode.ThemeColor('errorForeground')) };
    case 'cancelled':
      return { description: 'cancelled', icon: new vscode.ThemeIcon('circle-slash') };
    default:
      return { description: String(build.state || ''), icon: new vscode.ThemeIcon('circle-outline') };
  }
}

const RUNNING = { kind: 'group', id: 'running', label: 'Running' };
const STORE = { kind: 'group', id: 'store', label: 'Derivations in the store' };

class BuildsView {
  /** @param listDerivations async () => [{ name, drefs, realizations }] (what Add Build Breakpoint lists) */
  constructor(listDerivations) {
    this.listDerivations = listDerivations;
    this.changed = new vscode.EventEmitter();
    this.onDidChangeTreeData = this.changed.event;
    /** parent session id -> { session, builds, at } */
    this.snapshots = new Map();
    /** pause id -> child session */
    this.children = new Map();
    this.store = undefined;  // undefined: not listed yet; else { items } or { error }
  }

  register(context) {
    trackSessions(context);
    const tree = vscode.window.createTreeView(VIEW_ID, { treeDataProvider: this, showCollapseAll: false });
    context.subscriptions.push(
      tree, this.changed,
      vscode.debug.onDidReceiveDebugSessionCustomEvent((e) => this.onCustomEvent(e)),
      vscode.debug.onDidStartDebugSession((s) => this.onStart(s)),
      vscode.debug.onDidTerminateDebugSession((s) => this.onTerminate(s)),
      vscode.debug.onDidChangeActiveDebugSession(() => this.changed.fire(RUNNING)),
      vscode.commands.registerCommand('pylightnix.refreshView', () => this.refresh()),
      vscode.commands.registerCommand('pylightnix.breakBeforeBuilding', (node) => {
        const name = node && node.kind === 'derivation' ? node.name : undefined;
        return vscode.commands.executeCommand('pylightnix.addBuildBreakpoint', name);
      }),
      vscode.commands.registerCommand('pylightnix.focusBuild', (node) => this.focusBuild(node)),
    );
    return tree;
  }

  // ------------------------------------------------------------------ debug events
  onCustomEvent(e) {
    const session = e.session;
    if (e.event !== BUILDS_EVENT || !session || session.type !== DEBUG_TYPE || pauseOf(session.configuration)) return;
    const listed = e.body && Array.isArray(e.body.builds) ? e.body.builds : [];
    // one row per derivation (a tree rejects two items with the same id)
    const byKey = new Map();
    for (const b of listed) if (b && typeof b.name === 'string') byKey.set(`${b.dref}:${b.name}`, b);
    this.snapshots.set(session.id, { session, builds: [...byKey.values()], at: Date.now() });
    this.changed.fire(RUNNING);
  }

  onStart(session) {
    const pause = pauseOf(session.configuration);
    if (session.type === DEBUG_TYPE && pause && typeof pause.id === 'string') {
      this.children.set(pause.id, session);
      this.changed.fire(RUNNING);
    }
  }

  onTerminate(session) {
    const pause = pauseOf(session.configuration);
    if (pause && this.children.has(pause.id) && this.children.get(pause.id).id === session.id) this.children.delete(pause.id);
    if (this.snapshots.delete(session.id) || (session.type === DEBUG_TYPE && !pause)) {
      this.store = undefined;  // a run may have added realizations: list the store again
      this.changed.fire(undefined);
    } else {
      this.changed.fire(RUNNING);
    }
  }

  refresh() {
    this.store = undefined;
    this.changed.fire(undefined);
  }

  /** The snapshot of the active session's realization, else the one updated last. */
  current() {
    const active = parentOf(vscode.debug.activeDebugSession);
    if (active && this.snapshots.has(active.id)) return this.snapshots.get(active.id);
    let last;
    for (const snap of this.snapshots.values()) if (!last || snap.at > last.at) last = snap;
    return last;
  }

  // ------------------------------------------------------------------ focus
  /** Select the session of a paused build in the Call Stack (its child session, or the driver's). */
  async focusBuild(node) {
    if (!node || node.kind !== 'build') return;
    const session = node.build.pauseId ? this.children.get(node.build.pauseId) : node.session;
    if (!session) {
      vscode.window.showInformationMessage(`Pylightnix: ${node.build.name} has no debug session (yet).`);
      return;
    }
    await focusSession(session);
  }

  // ------------------------------------------------------------------ TreeDataProvider
  getTreeItem(node) {
    switch (node.kind) {
      case 'group': {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Expanded);
        item.id = `group:${node.id}`;
        item.contextValue = `pylightnix.${node.id}`;
        return item;
      }
      case 'build': {
        const { description, icon } = describeBuild(node.build);
        const item = new vscode.TreeItem(node.build.name, vscode.TreeItemCollapsibleState.None);
        item.id = `build:${node.session.id}:${node.build.dref}:${node.build.name}`;
        item.description = description;
        item.iconPath = icon;
        item.tooltip = [node.build.dref, description].filter(Boolean).join('\n');
        item.contextValue = `pylightnix.build.${node.build.state}`;
        if (node.build.state === 'paused') {
          item.command = { command: 'pylightnix.focusBuild', title: 'Show in Call Stack', arguments: [node] };
        }
        return item;
      }
      case 'derivation': {
        const d = node.derivation;
        const item = new vscode.TreeItem(d.name, vscode.TreeItemCollapsibleState.None);
        item.id = `derivation:${d.name}`;
        item.description = `${d.realizations} realization${d.realizations === 1 ? '' : 's'}`;
        item.tooltip = d.drefs.join('\n');
        item.iconPath = new vscode.ThemeIcon('package');
        item.contextValue = 'pylightnix.derivation';
        return item;
      }
      default: {
        const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.None);
        item.iconPath = node.icon ? new vscode.ThemeIcon(node.icon) : undefined;
        item.tooltip = node.tooltip;
        item.contextValue = 'pylightnix.message';
        return item;
      }
    }
  }

  async getChildren(node) {
    if (!node) return [RUNNING, STORE];
    if (node === RUNNING || (node.kind === 'group' && node.id === 'running')) return this.runningChildren();
    if (node === STORE || (node.kind === 'group' && node.id === 'store')) return this.storeChildren();
    return [];
  }

  runningChildren() {
    const snap = this.current();
    if (!snap) return [{ kind: 'message', label: 'No running realization', icon: 'info' }];
    if (!snap.builds.length) return [{ kind: 'message', label: 'Nothing to build yet', icon: 'info' }];
    return snap.builds.map((build) => ({ kind: 'build', build, session: snap.session }));
  }

  async storeChildren() {
    if (!this.store) {
      try {
        this.store = { items: await this.listDerivations() };
      } catch (e) {
        this.store = { error: String(e && e.message ? e.message : e) };
      }
    }
    if (this.store.error) return [{ kind: 'message', label: 'Could not list the store', icon: 'warning', tooltip: this.store.error }];
    if (!this.store.items.length) return [{ kind: 'message', label: 'The store has no derivations yet', icon: 'info' }];
    return this.store.items.map((derivation) => ({ kind: 'derivation', name: derivation.name, derivation }));
  }
}

/** Sessions in the order they started (the order of VS Code's session pickers); ended ones drop out. */
const sessionOrder = [];

function trackSessions(context) {
  context.subscriptions.push(
    vscode.debug.onDidStartDebugSession((s) => sessionOrder.push(s)),
    vscode.debug.onDidTerminateDebugSession((s) => {
      const i = sessionOrder.findIndex((t) => t.id === s.id);
      if (i >= 0) sessionOrder.splice(i, 1);
    }),
  );
}

/** VS Code's quick-access filter: `query` matches `label` if it is a subsequence of it, ignoring case. */
function subsequence(query, label) {
  const q = query.toLowerCase();
  const l = label.toLowerCase();
  let i = 0;
  for (let j = 0; i < q.length && j < l.length; j++) if (q[i] === l[j]) i++;
  return i === q.length;
}

/** Resolve true once `session` is the active (focused) debug session, false after `ms`. */
function becomesActive(session, ms) {
  const isActive = () => !!vscode.debug.activeDebugSession && vscode.debug.activeDebugSession.id === session.id;
  if (isActive()) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (v) => { clearTimeout(timer); sub.dispose(); resolve(v); };
    const sub = vscode.debug.onDidChangeActiveDebugSession(() => { if (isActive()) done(true); });
    const timer = setTimeout(() => done(isActive()), ms);
  });
}

/**
 * Select `session` in the Call Stack and the Debug Console.
 *
 * VS Code 1.100 offers extensions no direct way: `vscode.debug.activeStackItem` has no
 * setter, and `workbench.action.debug.focusProcess` wants the workbench's own session
 * object. The Debug Console's session picker (Quick Open with the prefix "debug consoles ")
 * focuses the session it accepts (explicitly, its top stack frame), so: open it filtered by
 * the session's name, move to the session among the matches (the picker lists sessions in
 * the order they started, and shows a session if the filter is a subsequence of its name),
 * accept, and check `activeDebugSession`; then reveal the Call Stack.
 */
async function focusSession(session) {
  const query = session.name.replace(/\*/g, '');
  const matches = sessionOrder.filter((s) => subsequence(query, s.name));
  const guess = Math.max(0, matches.findIndex((s) => s.id === session.id));
  for (let attempt = 0; attempt < Math.max(1, matches.length) && !(await becomesActive(session, 0)); attempt++) {
    const index = (guess + attempt) % Math.max(1, matches.length);
    await vscode.commands.executeCommand('workbench.action.quickOpen', `debug consoles ${query}`);
    for (let i = 0; i < index; i++) await vscode.commands.executeCommand('workbench.action.quickOpenSelectNext');
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    if (await becomesActive(session, 1000)) break;
  }
  await vscode.commands.executeCommand('workbench.debug.action.focusCallStackView');
}

module.exports = { BuildsView, describeBuild, pauseOf };
