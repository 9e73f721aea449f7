// Drive a code-server workbench in headless Chromium through one scenario.
//
//   node drive.js SCENARIO CONFIG.json
//
// CONFIG: { url, playwrightCore, chromium, artifacts, timeoutMs, ... }.
// Prints one JSON line per step on stdout ({"step":..., "ms":...}) and exits
// non-zero with the reason on stderr when a step fails. A screenshot is taken
// after every step and on failure, into CONFIG.artifacts.
'use strict';

const fs = require('fs');
const path = require('path');

const [scenario, configPath] = process.argv.slice(2);
const cfg = JSON.parse(fs.readFileSync(configPath, 'utf8'));
const { chromium } = require(cfg.playwrightCore);

const WAIT = cfg.timeoutMs || 60000;          // one UI wait
const SHORT = Math.min(WAIT, 15000);
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let page;
let shot = 0;
const t0 = Date.now();

function log(obj) { process.stdout.write(JSON.stringify({ ...obj, ms: Date.now() - t0 }) + '\n'); }

async function screenshot(name) {
  shot += 1;
  // Park the mouse on an empty spot so no hover tooltip covers the picture.
  await page.mouse.move(1000, 60).catch(() => {});
  const file = path.join(cfg.artifacts, `${scenario}-${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

async function step(name, fn) {
  const started = Date.now();
  try {
    const result = await fn();
    const file = await screenshot(name);
    log({ step: name, ok: true, took: Date.now() - started, screenshot: path.basename(file) });
    return result;
  } catch (e) {
    try { await screenshot(`FAILED-${name}`); } catch (_) { /* page may be gone */ }
    try { await dumpText(`FAILED-${name}`); } catch (_) { /* best effort */ }
    try { await saveRepl(); } catch (_) { /* best effort */ }
    throw new Error(`step "${name}" failed: ${e && e.message ? e.message : e}`);
  }
}

/** Save the visible text of the panels that explain a failure. */
async function dumpText(name) {
  const parts = {};
  for (const [key, sel] of Object.entries({
    notifications: '.notifications-toasts, .notifications-center',
    callStack: '.pane:has(.debug-call-stack)',
    breakpoints: '.debug-breakpoints',
    repl: '.repl',
  })) {
    parts[key] = await page.locator(sel).allInnerTexts().catch(() => []);
  }
  fs.writeFileSync(path.join(cfg.artifacts, `${scenario}-${name}.json`), JSON.stringify(parts, null, 2));
}

/** Run a command from the palette by its exact label. */
async function runCommand(label, attempts = 3) {
  // Some commands (e.g. "Debug: Select and Start Debugging") are only listed once the
  // workbench has read the workspace's launch.json: reopen the palette a few times.
  for (let i = 1; ; i++) {
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: SHORT });
    await input.fill(`>${label}`);
    const row = page.locator('.quick-input-list .monaco-list-row', {
      has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRe(label)}$`) }),
    }).first();
    try {
      await row.waitFor({ state: 'visible', timeout: SHORT });
    } catch (e) {
      if (i >= attempts) throw e;
      continue;
    }
    await row.click();
    return;
  }
}

function escapeRe(s) { return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'); }

/** Pick a row of an open quick pick by its exact label. */
async function pickQuickItem(label, timeout = SHORT) {
  const row = page.locator('.quick-input-list .monaco-list-row', {
    has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRe(label)}$`) }),
  }).first();
  await row.waitFor({ state: 'visible', timeout });
  await row.click();
}

async function openWorkbench() {
  await page.goto(cfg.url);
  await page.locator('.monaco-workbench').waitFor({ timeout: WAIT });
  // The extension is active once its command is in the palette.
  await page.locator('.statusbar').waitFor({ timeout: WAIT });
  await waitForCommand('Pylightnix: Add Build Breakpoint');
}

async function waitForCommand(label) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    await page.keyboard.press('Escape');
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible', timeout: SHORT });
    await input.fill(`>${label}`);
    const row = page.locator('.quick-input-list .label-name', { hasText: new RegExp(`^${escapeRe(label)}$`) });
    try {
      await row.first().waitFor({ state: 'visible', timeout: 3000 });
      await page.keyboard.press('Escape');
      return;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`command "${label}" never appeared in the palette`);
    }
  }
}

async function addFunctionBreakpoint(name) {
  await runCommand('Add Function Breakpoint');
  const input = page.locator('.debug-breakpoints .monaco-inputbox input').first();
  await input.waitFor({ state: 'visible', timeout: SHORT });
  await input.fill(name);
  await input.press('Enter');
  await page.locator('.debug-breakpoints .monaco-list-row', { hasText: name }).first()
    .waitFor({ state: 'visible', timeout: SHORT });
}

/** Show the Run and Debug view with the Watch pane collapsed, so Breakpoints has room. */
async function showRunView() {
  await runCommand('View: Show Run and Debug');
  const watch = page.locator('.pane-header[aria-expanded="true"]', { hasText: /^\s*Watch/i }).first();
  if (await watch.count()) await watch.click();
}

/** Open a workspace file in the editor through Quick Open. */
async function openFile(name) {
  await runCommand('Go to File...');
  const input = page.locator('.quick-input-widget .quick-input-box input');
  await input.fill(name);
  await pickQuickItem(name, WAIT);
  await page.locator('.tabs-container .tab', { hasText: name }).first().waitFor({ state: 'visible', timeout: WAIT });
}

async function startConfiguration(name) {
  await runCommand('Debug: Select and Start Debugging');
  await pickQuickItem(name);
}

/** A string, or "re:PATTERN" for a regular expression. */
function textMatcher(text) {
  return typeof text === 'string' && text.startsWith('re:') ? new RegExp(text.slice(3)) : text;
}

async function waitForText(selector, text, timeout = WAIT) {
  await page.locator(selector, { hasText: textMatcher(text) }).first().waitFor({ state: 'visible', timeout });
}

/** Save the Debug Console's text for the test to check (to SCENARIO-NAME.txt). */
async function saveRepl(name = 'repl') {
  // The console list is virtualized: maximize the panel so that all rows are rendered.
  try {
    await runCommand('View: Toggle Maximized Panel');
    await page.waitForTimeout(500);
  } catch (e) { /* the text of the visible rows is still useful */ }
  const text = await page.locator('.repl .monaco-list-rows').allInnerTexts().catch(() => []);
  fs.writeFileSync(path.join(cfg.artifacts, `${scenario}-${name}.txt`), text.join('\n'));
  try {
    await runCommand('View: Toggle Maximized Panel');
  } catch (e) { /* only the layout of later screenshots */ }
}

/** Type one line into the Debug Console and wait until `expect` shows up in its output. */
async function consoleEval(line, expect, timeout = WAIT) {
  const input = page.locator('.repl .repl-input-wrapper .monaco-editor textarea');
  await input.waitFor({ state: 'attached', timeout: SHORT });
  await page.locator('.repl .repl-input-wrapper').click();
  await page.keyboard.type(line, { delay: 5 });
  await page.keyboard.press('Enter');
  // The console takes the line (and clears its input) once it sent the evaluate request.
  await page.locator('.repl .monaco-list-rows', { hasText: line }).first().waitFor({ state: 'visible', timeout: SHORT });
  if (expect) await waitForText('.repl .monaco-list-rows', expect, timeout);
}

async function openDebugConsole() {
  await runCommand('Debug Console: Focus on Debug Console View');
  await page.locator('.repl .repl-input-wrapper').waitFor({ state: 'visible', timeout: SHORT });
}

async function continueAndWaitForEnd() {
  await runCommand('Debug: Continue');
  // The debug toolbar goes away when the last session has ended.
  await page.locator('.debug-toolbar').waitFor({ state: 'hidden', timeout: WAIT });
}

async function enableExceptionFilter(label) {
  const row = page.locator('.debug-breakpoints .monaco-list-row', { hasText: label }).first();
  await row.waitFor({ state: 'visible', timeout: WAIT });
  const box = row.locator('input[type=checkbox]');
  if (!(await box.isChecked())) await box.click();
  if (!(await box.isChecked())) throw new Error(`exception filter "${label}" did not get checked`);
}

/** Labels of the editor tabs that are open. */
async function openTabs() {
  return page.locator('.tabs-container .tab .label-name').allInnerTexts();
}

/** No editor tab shows one of the adapter's own files (cfg.adapterFiles). */
async function assertNoAdapterFileOpen() {
  const tabs = await openTabs();
  const internal = tabs.filter((t) => (cfg.adapterFiles || []).includes(t.trim()));
  log({ tabs });
  if (internal.length) throw new Error(`the adapter's own file(s) opened in the editor: ${internal.join(', ')}`);
}

/** At a stop, the editor shows the user's code: the active tab is `where.file`, the cursor
 *  is on `where.line`, the top frame of the Call Stack names that file, no adapter file is open. */
async function assertUserCodeShown(where) {
  await page.locator('.tabs-container .tab.active .label-name', { hasText: new RegExp(`^${escapeRe(where.file)}$`) })
    .first().waitFor({ state: 'visible', timeout: SHORT });
  await waitForText('.statusbar', new RegExp(`Ln ${where.line}, Col \\d+`), SHORT);
  await waitForText('.debug-call-stack .monaco-list-row', where.file, SHORT);
  await assertNoAdapterFileOpen();
}

// The "Pylightnix" view in the Run and Debug side bar.
const VIEW = '.pane:has(.pane-header[aria-label*="Pylightnix"])';

/** Expand the Pylightnix view (and collapse Variables and Watch, so that it has room). */
async function showPylightnixView() {
  for (const name of ['Variables', 'Watch']) {
    const pane = page.locator(`.pane-header[aria-label="${name} Section"]`).first();
    await pane.waitFor({ state: 'visible', timeout: WAIT });
    if ((await pane.getAttribute('aria-expanded')) === 'true') await pane.click();
  }
  const header = page.locator(`${VIEW} .pane-header`).first();
  await header.waitFor({ state: 'visible', timeout: WAIT });
  if ((await header.getAttribute('aria-expanded')) !== 'true') await header.click();
  await page.locator(`${VIEW} .monaco-list-row`).first().waitFor({ state: 'visible', timeout: WAIT });
}

/** The view's row whose label is exactly `label`. */
function viewRow(label) {
  return page.locator(`${VIEW} .monaco-list-row`, {
    has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRe(label)}$`) }),
  }).first();
}

/** Wait until the view's row `label` has the description `description` (string or "re:..."). */
async function waitForViewItem(label, description, timeout = WAIT) {
  const row = page.locator(`${VIEW} .monaco-list-row`, {
    has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRe(label)}$`) }),
  }).filter({ has: page.locator('.label-description', { hasText: textMatcher(description) }) }).first();
  await row.waitFor({ state: 'visible', timeout });
}

/** The inline action `title` of the view's row `label` (shown on hover). */
async function clickInlineAction(label, title) {
  const row = viewRow(label);
  await row.waitFor({ state: 'visible', timeout: WAIT });
  await row.hover();
  await row.locator(`.action-label[aria-label="${title}"]`).click();
}

/** Texts of the selected options of the focused-session pickers (debug toolbar, Debug Console); they
 *  show once more than one session runs. */
async function selectedSessions() {
  return page.locator('.debug-toolbar select.monaco-select-box, .part.panel select.monaco-select-box').evaluateAll(
    // a child session's option is indented with no-break spaces
    (els) => els.map((el) => (el.selectedIndex >= 0 ? el.options[el.selectedIndex].text.trim() : '')));
}

async function waitForFocusedSession(pattern, timeout = WAIT) {
  const re = textMatcher(pattern);
  const deadline = Date.now() + timeout;
  for (;;) {
    const texts = await selectedSessions();
    if (texts.some((t) => (re instanceof RegExp ? re.test(t) : t.includes(re)))) return texts;
    if (Date.now() > deadline) throw new Error(`no session picker shows ${pattern}; they show ${JSON.stringify(texts)}`);
    await page.waitForTimeout(200);
  }
}

// The Call Stack pane, header included: with one thread the stop reason is shown in the header.
const CALL_STACK = '.pane:has(.debug-call-stack)';

const SCENARIOS = {
  // Smoke: workbench, extension active, a function breakpoint added through the UI.
  async smoke() {
    await step('workbench', openWorkbench);
    await step('run-view', showRunView);
    await step('function-breakpoint', () => addFunctionBreakpoint('convnn_mnist'));
  },

  // Build breakpoint on convnn_mnist, commit by hand in the IPython Debug Console.
  async buildBreakpoint() {
    await step('workbench', openWorkbench);
    await step('run-view', showRunView);
    if (cfg.openFile) await step('open-file', () => openFile(cfg.openFile));
    await step('function-breakpoint', () => addFunctionBreakpoint('convnn_mnist'));
    await step('start', () => startConfiguration(cfg.configName));
    await step('paused', () => waitForText(CALL_STACK, 'Paused before building convnn_mnist'));
    if (cfg.expectUserCode) await step('user-code', () => assertUserCodeShown(cfg.expectUserCode));
    await step('variables', () => waitForText('.debug-variables', 'buildargs'));
    await step('console', openDebugConsole);
    for (const [i, item] of cfg.consoleLines.entries()) {
      await step(`console-${i + 1}`, () => consoleEval(item.line, item.expect));
    }
    await step('continue-ended', continueAndWaitForEnd);
    if (cfg.finalOutput) await step('program-output', () => waitForText('.repl .monaco-list-rows', cfg.finalOutput));
    await step('no-adapter-file', assertNoAdapterFileOpen);
  },

  // Pause at a build breakpoint (from the configuration or cfg.functionBreakpoint); Continue at once
  // runs the stage's own realizer.
  async continueAtPause() {
    await step('workbench', openWorkbench);
    await step('run-view', showRunView);
    if (cfg.functionBreakpoint) await step('function-breakpoint', () => addFunctionBreakpoint(cfg.functionBreakpoint));
    await step('start', () => startConfiguration(cfg.configName));
    await step('paused', () => waitForText(CALL_STACK, 'Paused before building convnn_mnist'));
    await step('continue-ended', continueAndWaitForEnd);
    if (cfg.finalOutput) await step('program-output', () => waitForText('.repl .monaco-list-rows', cfg.finalOutput));
  },

  // "Failed builds" filter (or, with cfg.firstRun, the launch attribute breakOnFailedBuilds):
  // stop on the failed stage, fix it in the console, commit, continue.
  async failedBuild() {
    await step('workbench', openWorkbench);
    await step('run-view', showRunView);
    if (cfg.openFile) await step('open-file', () => openFile(cfg.openFile));
    if (cfg.firstRun) {
      // launch.json's "breakOnFailedBuilds": true: no stop on entry, no filter to tick
      await step('start', () => startConfiguration(cfg.configName));
    } else {
      await step('start-stop-on-entry', () => startConfiguration(cfg.configName));
      await step('entry', () => page.locator('.debug-toolbar').waitFor({ state: 'visible', timeout: WAIT })
        .then(() => waitForText(CALL_STACK, /paused/i)));
      await step('filter-enabled', () => enableExceptionFilter('Failed builds'));
      await step('continue-to-failure', () => runCommand('Debug: Continue'));
    }
    await step('failed-stop', () => waitForText(CALL_STACK, cfg.expectStop));
    if (cfg.expectUserCode) await step('user-code', () => assertUserCodeShown(cfg.expectUserCode));
    // The failed Build `b` and the exception are locals of the top frame.
    await step('failed-locals', () => waitForText('.debug-variables', '<Model')
      .then(() => waitForText('.debug-variables', 'AttributeError')));
    await step('console', openDebugConsole);
    for (const [i, item] of cfg.consoleLines.entries()) {
      await step(`console-${i + 1}`, () => consoleEval(item.line, item.expect));
    }
    await step('continue-ended', continueAndWaitForEnd);
    if (cfg.finalOutput) await step('program-output', () => waitForText('.repl .monaco-list-rows', cfg.finalOutput));
    await step('no-adapter-file', assertNoAdapterFileOpen);
  },

  // The extension's pre-flight check refuses to start: record the modal's exact text and
  // buttons, click cfg.click and wait for what it opens (cfg.expectTab, cfg.expectStatus, cfg.expectSetting).
  async errorDialog() {
    await step('workbench', openWorkbench);
    await step('start', () => startConfiguration(cfg.configName));
    const dialog = page.locator('.monaco-dialog-box');
    await step('dialog', () => dialog.waitFor({ state: 'visible', timeout: WAIT }));
    log({ dialog: {
      message: await dialog.locator('.dialog-message-text').innerText(),
      detail: await dialog.locator('.dialog-message-detail').innerText(),
      buttons: await dialog.locator('.dialog-buttons .monaco-button').allInnerTexts(),
    } });
    await step('click', () => dialog.locator('.dialog-buttons .monaco-button', { hasText: cfg.click }).first().click());
    if (cfg.expectTab) await step('opened', () => waitForText('.tabs-container .tab.active', cfg.expectTab));
    if (cfg.expectStatus) await step('selected', () => waitForText('.statusbar', cfg.expectStatus));
    if (cfg.expectSetting) await step('opened', () => waitForText('.settings-editor .setting-item-contents', cfg.expectSetting));
    if (cfg.expectSettingsScope) await step('scope', () => waitForText('.settings-editor .settings-tabs-widget .checked', cfg.expectSettingsScope));
    if (await page.locator('.debug-toolbar').isVisible()) throw new Error('a debug session started anyway');
  },

  // The Pylightnix view without a session: the store's derivations; the inline action
  // "Break before building" adds the build breakpoint; a launch stops there; the store group
  // lists the new realization once the session has ended.
  async storeView() {
    await step('workbench', openWorkbench);
    await step('run-view', showRunView);
    await step('view', showPylightnixView);
    await step('no-running', () => viewRow('No running realization').waitFor({ state: 'visible', timeout: WAIT }));
    await step('store-listed', async () => {
      for (const item of cfg.expectItems) await waitForViewItem(item.label, item.description);
    });
    // a selected row shows its inline action
    await step('store-selected', () => viewRow(cfg.pick).click()
      .then(() => viewRow(cfg.pick).locator('.action-label[aria-label="Break before building"]').waitFor({ state: 'visible', timeout: SHORT })));
    await step('break-before-building', () => clickInlineAction(cfg.pick, 'Break before building'));
    await step('breakpoint-listed', () => waitForText('.debug-breakpoints .monaco-list-row', cfg.pick, SHORT));
    await step('start', () => startConfiguration(cfg.configName));
    await step('paused', () => waitForText(CALL_STACK, `Paused before building ${cfg.pick}`));
    await step('continue-ended', continueAndWaitForEnd);
    await step('store-relisted', () => waitForViewItem(cfg.pick, cfg.expectAfter));
  },

  // The Running group of the Pylightnix view during a build pause in the driver (no scale-out):
  // the derivation is "paused in the driver"; clicking it selects that session, also while
  // another session (cfg.otherConfig, stopped on entry) has the focus.
  async runningViewDriver() {
    await step('workbench', openWorkbench);
    await step('run-view', showRunView);
    await step('view', showPylightnixView);
    await step('no-running', () => viewRow('No running realization').waitFor({ state: 'visible', timeout: WAIT }));
    await step('function-breakpoint', () => addFunctionBreakpoint(cfg.pick));
    await step('start-other', () => startConfiguration(cfg.otherConfig));
    await step('other-entry', () => waitForText(CALL_STACK, /paused on entry/i));
    await step('start', () => startConfiguration(cfg.configName));
    await step('paused', () => waitForText('.debug-call-stack .monaco-list-row', `Paused before building ${cfg.pick}`));
    await step('running-paused', async () => {
      await waitForViewItem(cfg.pick, 'paused in the driver');
      for (const item of cfg.expectRunning || []) await waitForViewItem(item.label, item.description);
    });
    await step('focus-other', async () => {
      await page.locator('.debug-call-stack .monaco-list-row[aria-level="1"]', { hasText: cfg.otherConfig }).first().click();
      await waitForFocusedSession(`re:^${escapeRe(cfg.otherConfig)}$`);
    });
    await step('click-paused', () => viewRow(cfg.pick).click());
    await step('focused', () => waitForFocusedSession(`re:^${escapeRe(cfg.configName)}$`));
    await step('continue-ended', async () => {
      await runCommand('Debug: Continue');
      await page.locator('.debug-call-stack .monaco-list-row[aria-level="1"]', { hasText: cfg.configName })
        .first().waitFor({ state: 'hidden', timeout: WAIT });
    });
    await step('stop-other', async () => {
      await runCommand('Debug: Stop');
      await page.locator('.debug-toolbar').waitFor({ state: 'hidden', timeout: WAIT });
    });
    await step('no-running-again', () => viewRow('No running realization').waitFor({ state: 'visible', timeout: WAIT }));
  },

  // A build paused on a worker process: a child session under the parent in the Call Stack,
  // "paused on …" in the Pylightnix view; clicking it selects the child session; the child's
  // Debug Console commits the build; Continue finishes the run.
  async childSession() {
    await step('workbench', openWorkbench);
    await step('run-view', showRunView);
    await step('view', showPylightnixView);
    await step('function-breakpoint', () => addFunctionBreakpoint(cfg.pick));
    await step('start', () => startConfiguration(cfg.configName));
    const child = `Paused before building ${cfg.pick} (worker`;
    await step('child-session', async () => {
      // the parent session at level 1 of the Call Stack tree, the child nested under it
      await page.locator('.debug-call-stack .monaco-list-row[aria-level="1"]', { hasText: cfg.configName }).first()
        .waitFor({ state: 'visible', timeout: WAIT });
      await page.locator('.debug-call-stack .monaco-list-row[aria-level="2"]', { hasText: child }).first()
        .waitFor({ state: 'visible', timeout: WAIT });
    });
    await step('running-paused', () => waitForViewItem(cfg.pick, 're:^paused on \\S+'));
    // Select the parent first, so that the click below has something to change.
    await step('focus-parent', async () => {
      await page.locator('.debug-call-stack .monaco-list-row[aria-level="1"]', { hasText: cfg.configName }).first().click();
      await waitForFocusedSession(`re:^${escapeRe(cfg.configName)}$`);
    });
    await step('click-paused', () => viewRow(cfg.pick).click());
    await step('child-focused', () => waitForFocusedSession(`re:^${escapeRe(child)}`));
    await step('console', openDebugConsole);
    for (const [i, item] of cfg.consoleLines.entries()) {
      await step(`console-${i + 1}`, () => consoleEval(item.line, item.expect));
    }
    await step('child-repl', () => saveRepl('child-repl'));
    await step('continue-ended', continueAndWaitForEnd);
  },

  // "Pylightnix: Add Build Breakpoint" lists the store's derivations and adds the chosen one.
  async addBuildBreakpointCommand() {
    await step('workbench', openWorkbench);
    await step('run-view', showRunView);
    await step('command', () => runCommand('Pylightnix: Add Build Breakpoint'));
    await step('store-listed', async () => {
      for (const item of cfg.expectItems) {
        await page.locator('.quick-input-list .monaco-list-row', {
          has: page.locator('.label-name', { hasText: new RegExp(`^${escapeRe(item.label)}$`) }),
        }).filter({ hasText: item.description }).first().waitFor({ state: 'visible', timeout: WAIT });
      }
    });
    await step('pick', () => pickQuickItem(cfg.pick, WAIT));
    await step('breakpoint-listed', () => waitForText('.debug-breakpoints .monaco-list-row', cfg.pick));
  },
};

(async () => {
  const fn = SCENARIOS[scenario];
  if (!fn) throw new Error(`unknown scenario ${scenario}`);
  fs.mkdirSync(cfg.artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: cfg.chromium, args: CHROMIUM_FLAGS, headless: true });
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (e) => log({ pageerror: String(e).slice(0, 300) }));
    await fn();
    await saveRepl();
    log({ done: scenario });
  } finally {
    await browser.close();
  }
})().catch((e) => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
