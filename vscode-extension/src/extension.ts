/**
 * The VS Code side: starts `starcoder-lsp serve`, drives the status bar from `starcoder/status`,
 * and adds the commands. Everything decidable without VS Code lives in the pure modules beside this
 * one (settings, serverCommand, status, models, languages, edits) and is unit-tested there; a
 * feature with UI of its own drives VS Code from src/editor/ (Edit Selection).
 */

import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  ExecuteCommandRequest,
  DidChangeConfigurationNotification,
  LanguageClient,
  type LanguageClientOptions,
  type Middleware,
  ResponseError,
  RevealOutputChannelOn,
  type ServerOptions,
  State,
  type StaticFeature,
  type WorkDoneProgressBegin,
  type WorkDoneProgressEnd,
  type WorkDoneProgressReport,
} from 'vscode-languageclient/node';
import { TypingPace, sleep } from './debounce';
import { EDIT_COMMAND, EDIT_SELECTION_COMMAND, EditFlow } from './editor/editSelection';
import { ServerInstaller } from './editor/install';
import { COMPILE_NOTE, modelToPull, type Installed } from './install';
import { isLanguageEnabled, withLanguage } from './languages';
import { parseModelsTable, lastPercent, type ModelEntry } from './models';
import { commandLine, resolveServerCommand, type Launcher, type Resolution } from './serverCommand';
import { SECTION, cliFlags, looksLikePath, toServerSettings, userScopedGetter, type ConfigGet, type PathContext, type ServerSettings } from './settings';
import { INITIAL, fixes, reduce, view, type StatusEvent, type StatusParams, type StatusState } from './status';
import { StatsView } from './editor/stats';
import { MIN_SERVER_VERSION, checkServerVersion } from './version';
import { VirtualDocuments } from './editor/virtualDocs';

/** Contract names (DESIGN.md). */
export const STATUS_NOTIFICATION = 'starcoder/status';
export const EXPLAIN_COMMAND = 'starcoder.explain';
const CLIENT_ID = 'starcoder';
const DOCUMENT_SELECTOR = [
  { scheme: 'file' },
  { scheme: 'untitled' },
  { scheme: 'vscode-notebook-cell' },
];

/**
 * Tells the server (`capabilities.experimental.starcoder`) what this client does itself: it shows
 * the markdown `starcoder.explain` returns in its own preview (`explainPreview`, so the server need
 * not show it as well), and it asks for an edit's instruction (`editInput`: the server may offer
 * "Edit … with StarCoder…", which runs `starcoder.editSelection` here).
 */
const CLIENT_FEATURES: StaticFeature = {
  fillClientCapabilities(capabilities) {
    const experimental = (capabilities.experimental ?? {}) as Record<string, unknown>;
    capabilities.experimental = { ...experimental, starcoder: { explainPreview: true, editInput: true } };
  },
  initialize() {},
  getState: () => ({ kind: 'static' }),
  clear() {},
};

let controller: Controller | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  controller = new Controller(context);
  await controller.activate();
}

export async function deactivate(): Promise<void> {
  await controller?.stopClient();
  controller = undefined;
}

function isExecutable(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    if (process.platform !== 'win32') fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function errorText(err: unknown): string {
  if (err instanceof ResponseError) return `${err.message} (code ${err.code})`;
  return err instanceof Error ? err.message : String(err);
}

/** Where a setting currently lives, so writing it changes the value that is in force. */
function targetFor(config: vscode.WorkspaceConfiguration, key: string): vscode.ConfigurationTarget {
  const info = config.inspect(key);
  if (info?.workspaceFolderValue !== undefined) return vscode.ConfigurationTarget.WorkspaceFolder;
  if (info?.workspaceValue !== undefined) return vscode.ConfigurationTarget.Workspace;
  return vscode.ConfigurationTarget.Global;
}

class Controller {
  private client: LanguageClient | undefined;
  private launcher: Launcher | undefined;
  private state: StatusState = INITIAL;
  private readonly log: vscode.LogOutputChannel;
  private readonly pace = new TypingPace(); // the adaptive debounce (src/debounce.ts)
  private lastWait = 0;
  private asked = false; // VS Code asked this server for an inline suggestion (logged once)
  private readonly item: vscode.StatusBarItem;
  private readonly explanations = new VirtualDocuments('starcoder-explanation');
  private readonly stats: StatsView;
  private readonly edits: EditFlow;
  private readonly installer: ServerInstaller;
  private starting: Promise<void> | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel('StarCoder', { log: true });
    this.item = vscode.window.createStatusBarItem('starcoder.status', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'StarCoder';
    this.item.command = 'starcoder.showMenu';
    this.edits = new EditFlow(context.globalState, this.log);
    this.stats = new StatsView(this.explanations, this.log, () => this.render());
    this.installer = new ServerInstaller(context.globalStorageUri.fsPath, this.log);
  }

  async activate(): Promise<void> {
    const c = this.context;
    c.subscriptions.push(
      this.log,
      this.item,
      this.explanations.register(),
      this.edits.proposals.register(),
      vscode.commands.registerCommand('starcoder.explainSelection', () => this.explainSelection()),
      vscode.commands.registerCommand(EDIT_SELECTION_COMMAND, (uri?: unknown, range?: unknown) => {
        const client = this.runningClient();
        return client && this.edits.editSelection(client, uri, range);
      }),
      vscode.commands.registerCommand('starcoder.toggle', () => this.toggle()),
      vscode.commands.registerCommand('starcoder.toggleLanguage', () => this.toggleLanguage()),
      vscode.commands.registerCommand('starcoder.selectModel', () => this.selectModel()),
      vscode.commands.registerCommand('starcoder.restartServer', () => this.restart()),
      vscode.commands.registerCommand('starcoder.showLog', () => this.log.show(true)),
      vscode.commands.registerCommand('starcoder.showStats', () => {
        const client = this.runningClient();
        return client && this.stats.show(client);
      }),
      vscode.commands.registerCommand('starcoder.showMenu', () => this.showMenu()),
      vscode.commands.registerCommand('starcoder.doctor', () => this.runDoctor()),
      vscode.commands.registerCommand('starcoder.installServer', () => this.installServer('install')),
      vscode.commands.registerCommand('starcoder.reinstallServer', () => this.installServer('reinstall')),
      vscode.window.onDidChangeActiveTextEditor(() => this.render()),
      vscode.workspace.onDidChangeConfiguration((e) => this.onConfigurationChanged(e)),
      vscode.workspace.onDidGrantWorkspaceTrust(() => void this.restart()),
      vscode.workspace.onDidChangeWorkspaceFolders(() => {
        if (this.state.phase === 'missing') void this.restart();
      }),
    );
    this.render();
    this.item.show();
    await this.startClient();
  }

  // --- settings ---------------------------------------------------------------------------------
  private config(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration(SECTION);
  }

  private pathContext(): PathContext {
    return { home: os.homedir(), workspaceFolder: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath };
  }

  /** Settings as the server may see them: the user's own values for what a repository must not choose. */
  private userScoped(): ConfigGet {
    const c = this.config();
    return userScopedGetter((key) => c.inspect(key));
  }

  private serverSettings(): ServerSettings {
    return toServerSettings(this.userScoped(), this.pathContext());
  }

  private resolve(): Resolution {
    const get = this.userScoped();
    const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    return resolveServerCommand({
      serverPath: text(get('server.path')),
      pythonPath: text(get('server.pythonPath')),
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).map((f) => f.uri.fsPath),
      envPath: process.env.PATH,
      platform: process.platform,
      trusted: vscode.workspace.isTrusted,
      home: os.homedir(),
      managedServer: this.installer.executable(),
      isExecutable,
    });
  }

  private onConfigurationChanged(e: vscode.ConfigurationChangeEvent): void {
    if (e.affectsConfiguration(`${SECTION}.server`)) {
      void this.restart();
      return;
    }
    if (!e.affectsConfiguration(SECTION)) return;
    this.render();
    const client = this.client;
    if (client?.state === State.Running) {
      void client
        .sendNotification(DidChangeConfigurationNotification.type, { settings: { [SECTION]: this.serverSettings() } })
        .catch((err: unknown) => this.log.error(`didChangeConfiguration failed: ${errorText(err)}`));
    }
  }

  // --- status -----------------------------------------------------------------------------------
  private dispatch(e: StatusEvent): void {
    this.state = reduce(this.state, e);
    this.render();
  }

  private render(): void {
    const doc = vscode.window.activeTextEditor?.document;
    const languageId = doc?.languageId;
    const languageEnabled = doc ? isLanguageEnabled(this.config().get('enableLanguages'), doc.languageId) : undefined;
    const v = view(this.state, { languageId, languageEnabled, usage: this.stats.summary });
    this.item.text = v.text;
    this.item.tooltip = v.tooltip;
    this.item.backgroundColor = v.background ? new vscode.ThemeColor(`statusBarItem.${v.background}Background`) : undefined;
  }

  // --- client lifecycle -------------------------------------------------------------------------
  private middleware(): Middleware {
    return {
      provideInlineCompletionItems: async (document, position, context, token, next) => {
        const config = vscode.workspace.getConfiguration(SECTION, document);
        const enabled = isLanguageEnabled(config.get('enableLanguages'), document.languageId);
        if (!this.asked) { // once per server start: whether VS Code asks at all, in the log
          this.asked = true;
          this.log.info(`VS Code asks for inline suggestions (first: ${document.languageId}, ${enabled ? 'on' : 'off by starcoder.enableLanguages'})`);
        }
        if (!enabled) return null;
        if (context.triggerKind === vscode.InlineCompletionTriggerKind.Automatic) {
          const wait = this.pace.wait(Date.now(), config.get<number | null>('debounceMs'));
          if (wait !== this.lastWait) {
            this.log.debug(`waiting ${wait} ms before asking (${this.pace.describe()})`);
            this.lastWait = wait;
          }
          if (wait > 0 && !(await sleep(wait, token))) return null; // a newer key came: never sent
        }
        this.dispatch({ type: 'request', delta: 1 });
        const sent = Date.now();
        try {
          const items = await next(document, position, context, token);
          if (!token.isCancellationRequested) this.pace.answered(Date.now() - sent);
          return items;
        } finally {
          this.dispatch({ type: 'request', delta: -1 });
          if (this.client?.isRunning()) this.stats.refresh(this.client);
        }
      },
      // VS Code has inline completion: keep the server's suggest-widget fallback from running the
      // model a second time on every keystroke.
      provideCompletionItem: () => undefined,
      handleWorkDoneProgress: (token, params, next) => {
        const p = params as WorkDoneProgressBegin | WorkDoneProgressReport | WorkDoneProgressEnd;
        this.dispatch({
          type: 'progress',
          kind: p.kind,
          percentage: 'percentage' in p ? p.percentage : undefined,
          message: p.message ?? ('title' in p ? p.title : undefined),
        });
        next(token, params);
      },
      workspace: {
        // Answer the server's pull for `starcoder` with the same object initializationOptions had.
        configuration: async (params, token, next) => {
          const result = await next(params, token);
          if (!Array.isArray(result)) return result;
          return params.items.map((item, i): unknown => (item.section === SECTION ? this.serverSettings() : result[i]));
        },
      },
      // Also covers the server's "Explain…" code action: show the markdown it returns. The preset
      // "Edit: …" actions are proposed and shown as a diff here, applied only on Accept.
      executeCommand: async (command, args, next) => {
        const client = this.client;
        if (command === EDIT_COMMAND && args.length === 3 && client) return this.edits.fromArguments(client, args);
        const result: unknown = await next(command, args);
        if (command === EXPLAIN_COMMAND) await this.showExplanation(result, args);
        return result;
      },
    };
  }

  private startClient(): Promise<void> {
    this.starting ??= this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.dispatch({ type: 'starting' });
    const resolution = this.resolve();
    if (!resolution.ok) {
      this.launcher = undefined;
      this.log.warn(`${resolution.message} Tried: ${resolution.tried.join(', ')}`);
      this.dispatch({ type: 'missing', message: resolution.message });
      if (!this.installer.installing) void this.offerServerFix(resolution.message, resolution.reason);
      return;
    }
    this.launcher = resolution.launcher;
    const extra = this.userScoped()('server.args');
    const { command, args } = commandLine(resolution.launcher, ['serve'], (Array.isArray(extra) ? extra : []).filter((a): a is string => typeof a === 'string'));
    this.log.info(`starting ${command} ${args.join(' ')} (found via ${resolution.launcher.source})`);
    const serverOptions: ServerOptions = { command, args, options: { env: { ...process.env } } };
    const clientOptions: LanguageClientOptions = {
      documentSelector: DOCUMENT_SELECTOR,
      outputChannel: this.log,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      initializationOptions: () => this.serverSettings(),
      middleware: this.middleware(),
    };
    const client = new LanguageClient(CLIENT_ID, 'StarCoder', serverOptions, clientOptions);
    this.asked = false;
    client.registerFeature(CLIENT_FEATURES);
    this.client = client;
    client.onDidChangeState(({ newState }) => {
      if (this.client !== client) return;
      if (newState === State.Running) this.dispatch({ type: 'started' });
      else if (newState === State.Stopped && this.state.phase !== 'error') this.dispatch({ type: 'stopped' });
    });
    client.onNotification(STATUS_NOTIFICATION, (params: StatusParams) => {
      if (this.client === client) this.dispatch({ type: 'server', params });
    });
    try {
      await client.start();
      await this.checkVersion(client);
    } catch (err) {
      const message = `starcoder-lsp failed to start: ${errorText(err)}`;
      this.log.error(message);
      this.dispatch({ type: 'failed', message });
      void vscode.window.showErrorMessage(message, 'Show Log', 'Choose Executable…').then((pick) => {
        if (pick === 'Show Log') this.log.show(true);
        else if (pick === 'Choose Executable…') void this.chooseServer();
      });
    }
  }

  /** Refuse a server older than this extension needs (src/version.ts): stop it, say how to update. */
  private async checkVersion(client: LanguageClient): Promise<void> {
    const check = checkServerVersion(client.initializeResult?.serverInfo);
    if (check.ok) {
      const note = check.note ? ` (${check.note})` : '';
      this.log.info(`server version ${check.version ?? 'unknown'}; this extension needs ${MIN_SERVER_VERSION} or newer${note}`);
      return;
    }
    this.log.error(check.message);
    this.dispatch({ type: 'outdated', message: check.message }); // sticky: a late status cannot hide it
    await this.stopClient();
    void vscode.window.showErrorMessage(`StarCoder: ${check.message}`, 'Update Server', 'Choose Executable…', 'Show Log').then((pick) => {
      if (pick === 'Update Server') void this.installServer('update');
      else if (pick === 'Show Log') this.log.show(true);
      else if (pick === 'Choose Executable…') void this.chooseServer();
    });
  }

  async stopClient(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    try {
      await client.dispose(3000);
    } catch (err) {
      this.log.warn(`stopping the server: ${errorText(err)}`);
    }
  }

  private async restart(): Promise<void> {
    await this.starting;
    await this.stopClient();
    this.dispatch({ type: 'stopped', message: 'restarting' });
    await this.startClient();
  }

  private runningClient(): LanguageClient | undefined {
    if (this.client?.state === State.Running) return this.client;
    void vscode.window.showWarningMessage(`StarCoder: the server is not running (${this.state.message || this.state.phase}).`, 'Show Log', 'Restart').then((pick) => {
      if (pick === 'Show Log') this.log.show(true);
      else if (pick === 'Restart') void this.restart();
    });
    return undefined;
  }

  // --- fix-its ----------------------------------------------------------------------------------
  private async offerServerFix(message: string, reason: 'not-found' | 'bad-setting' = 'not-found'): Promise<void> {
    if (reason === 'not-found') {
      const install = 'Install the Server';
      const pick = await vscode.window.showWarningMessage(
        'StarCoder needs its language server, starcoder-lsp, and none was found. Install it into a private environment ' +
        `in VS Code's storage? The first install is mostly ${COMPILE_NOTE}.`,
        install, 'Choose Executable…', 'Setup Guide');
      if (pick === install) await this.installServer('install');
      else if (pick === 'Choose Executable…') await this.chooseServer();
      else if (pick === 'Setup Guide') await this.openReadme();
      return;
    }
    const pick = await vscode.window.showErrorMessage(`StarCoder: ${message}`, 'Choose Executable…', 'Open Settings', 'Setup Guide');
    if (pick === 'Choose Executable…') await this.chooseServer();
    else if (pick === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', `${SECTION}.server`);
    else if (pick === 'Setup Guide') await this.openReadme();
  }

  private async chooseServer(): Promise<void> {
    const picked = await vscode.window.showOpenDialog({
      canSelectMany: false,
      openLabel: 'Use this starcoder-lsp',
      title: 'Choose the starcoder-lsp executable (e.g. .venv/bin/starcoder-lsp)',
    });
    if (!picked?.[0]) return;
    const c = this.config();
    await c.update('server.path', picked[0].fsPath, vscode.ConfigurationTarget.Global);
    // onDidChangeConfiguration restarts the server.
  }

  private async openReadme(): Promise<void> {
    const readme = vscode.Uri.joinPath(this.context.extensionUri, 'README.md');
    await vscode.commands.executeCommand('markdown.showPreview', readme);
  }

  // --- commands ---------------------------------------------------------------------------------
  private async toggle(): Promise<void> {
    const c = this.config();
    const enable = c.get('enable') === false;
    await c.update('enable', enable, targetFor(c, 'enable'));
    vscode.window.setStatusBarMessage(`StarCoder completions ${enable ? 'on' : 'off'}`, 3000);
  }

  private async toggleLanguage(): Promise<void> {
    const doc = vscode.window.activeTextEditor?.document;
    if (!doc) return;
    const c = this.config();
    const current = c.get('enableLanguages');
    const enabled = !isLanguageEnabled(current, doc.languageId);
    await c.update('enableLanguages', withLanguage(current, doc.languageId, enabled), targetFor(c, 'enableLanguages'));
    vscode.window.setStatusBarMessage(`StarCoder completions ${enabled ? 'on' : 'off'} for ${doc.languageId}`, 3000);
  }

  private async showMenu(): Promise<void> {
    type Item = vscode.QuickPickItem & { run?: () => unknown };
    const c = this.config();
    const enabled = c.get('enable') !== false;
    const doc = vscode.window.activeTextEditor?.document;
    const items: Item[] = [];
    for (const fix of fixes(this.state)) {
      if (fix.kind === 'pull-model') items.push({ label: `$(cloud-download) Download model ${fix.model}`, run: () => this.pullThenUse(fix.model) });
      if (fix.kind === 'install-server') {
        items.push({ label: fix.update ? '$(cloud-download) Update the server (install a current one)' : '$(cloud-download) Install the server', run: () => this.installServer(fix.update ? 'update' : 'install') });
      }
      if (fix.kind === 'choose-server') {
        items.push({ label: '$(file-binary) Choose the starcoder-lsp executable…', run: () => this.chooseServer() });
        items.push({ label: '$(book) Setup guide', run: () => this.openReadme() });
      }
    }
    if (this.state.message) items.unshift({ label: this.state.message, kind: vscode.QuickPickItemKind.Separator });
    items.push(
      { label: enabled ? '$(circle-slash) Disable completions' : '$(check) Enable completions', run: () => this.toggle() },
    );
    if (doc) {
      const on = isLanguageEnabled(c.get('enableLanguages'), doc.languageId);
      items.push({ label: `${on ? '$(circle-slash) Disable' : '$(check) Enable'} completions for ${doc.languageId}`, run: () => this.toggleLanguage() });
    }
    items.push(
      { label: '$(symbol-misc) Select model…', description: this.state.model || undefined, run: () => this.selectModel() },
      { label: '$(graph) Show stats', run: () => vscode.commands.executeCommand('starcoder.showStats') },
      { label: '$(output) Show log', run: () => this.log.show(true) },
      { label: '$(pulse) Run doctor (check the install, measure speed)', run: () => this.runDoctor() },
      { label: '$(debug-restart) Restart server', run: () => this.restart() },
      { label: '$(package) Reinstall server', description: this.installer.installed()?.version, run: () => this.installServer('reinstall') },
      { label: '$(settings-gear) Open settings', run: () => vscode.commands.executeCommand('workbench.action.openSettings', SECTION) },
    );
    const pick = await vscode.window.showQuickPick(items, { title: 'StarCoder', placeHolder: view(this.state).tooltip.split('\n')[0] });
    await pick?.run?.();
  }

  private listModels(launcher: Launcher): Promise<ModelEntry[]> {
    const modelsFile = this.serverSettings().modelsFile;
    const { command, args } = commandLine(launcher, ['models', 'list'], modelsFile ? ['--models-file', modelsFile] : []);
    return new Promise((resolve, reject) => {
      execFile(command, args, { timeout: 60_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || err.message}`));
          return;
        }
        try {
          resolve(parseModelsTable(stdout));
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      });
    });
  }

  /** `starcoder-lsp doctor` with this editor's settings, its report shown as a document. */
  private async runDoctor(): Promise<void> {
    const launcher = this.launcherOr('The starcoder-lsp server was not found, so it cannot be checked.');
    if (!launcher) return;
    const { command, args } = commandLine(launcher, ['doctor'], cliFlags(this.serverSettings()));
    this.log.info(`running ${command} ${args.join(' ')}`);
    const { code, stdout, stderr } = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'StarCoder: checking the install and measuring speed (~10 s)…' },
      () => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(command, args, { timeout: 180_000, maxBuffer: 4 << 20 }, (err, out, errText) => {
          const status = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
          resolve({ code: status, stdout: String(out), stderr: String(errText) });
        });
      }),
    );
    if (!stdout.trim()) {
      void vscode.window.showErrorMessage(`StarCoder: doctor failed (exit ${code}): ${stderr.trim().split('\n').pop() ?? ''}`);
      return;
    }
    const note = 'Settings marked "CLI" are this editor\'s starcoder.* settings, passed as flags.\n\n';
    const uri = this.explanations.add('StarCoder Doctor', note + stdout, '.txt');
    await vscode.window.showTextDocument(await vscode.workspace.openTextDocument(uri), { preview: true });
    if (code === 2) void vscode.window.showWarningMessage('StarCoder: doctor found something to fix (see the report).');
  }

  /** The server's launcher (found anew when it is not running), or undefined after offering the fix. */
  private launcherOr(whyNeeded: string): Launcher | undefined {
    const r = this.launcher ? undefined : this.resolve();
    const launcher = this.launcher ?? (r?.ok ? r.launcher : undefined);
    if (!launcher) void this.offerServerFix(whyNeeded, r && !r.ok ? r.reason : 'not-found');
    return launcher;
  }

  private async selectModel(): Promise<void> {
    const launcher = this.launcherOr('The starcoder-lsp server was not found, so its model list is not available.');
    if (!launcher) return;
    type Item = vscode.QuickPickItem & { entry?: ModelEntry; browse?: boolean };
    const qp = vscode.window.createQuickPick<Item>();
    qp.title = 'StarCoder: select model';
    qp.placeholder = 'Loading the model catalogue…';
    qp.busy = true;
    qp.show();
    const current = this.serverSettings().model;
    try {
      const entries = await this.listModels(launcher);
      const active = current ?? entries.find((e) => e.isDefault)?.name;
      const items: Item[] = entries
        .filter((e) => e.fim)
        .map((e) => ({
          label: `${e.name === active ? '$(check) ' : ''}${e.name}`,
          description: [e.family, e.params, e.size, e.isDefault ? 'default' : ''].filter(Boolean).join(' · '),
          detail: e.downloaded ? '$(pass) downloaded' : `$(cloud-download) not downloaded — ${e.source}`,
          entry: e,
        }));
      items.push({ label: '', kind: vscode.QuickPickItemKind.Separator }, { label: '$(folder-opened) Browse for a .gguf file…', browse: true });
      qp.items = items;
      qp.placeholder = active ? `Current: ${active}` : 'Pick a model';
    } catch (err) {
      qp.hide();
      this.log.error(errorText(err));
      void vscode.window.showErrorMessage(`StarCoder: could not list models: ${errorText(err)}`, 'Show Log').then((p) => {
        if (p) this.log.show(true);
      });
      return;
    } finally {
      qp.busy = false;
    }
    const picked = await new Promise<Item | undefined>((resolve) => {
      qp.onDidAccept(() => resolve(qp.selectedItems[0]));
      qp.onDidHide(() => resolve(undefined));
    });
    qp.dispose();
    if (!picked) return;
    if (picked.browse) {
      const file = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { 'GGUF model': ['gguf'] }, openLabel: 'Use this model' });
      if (file?.[0]) await this.setModel(file[0].fsPath);
      return;
    }
    const entry = picked.entry;
    if (!entry) return;
    if (!entry.downloaded) {
      const choice = await vscode.window.showInformationMessage(
        `${entry.name} (${entry.size}) is not downloaded yet.`, 'Download and Use', 'Use Anyway');
      if (choice === 'Download and Use') await this.pullThenUse(entry.name);
      else if (choice === 'Use Anyway') await this.setModel(entry.name);
      return;
    }
    await this.setModel(entry.name);
  }

  private async setModel(model: string): Promise<void> {
    const c = this.config();
    await c.update('model', model, targetFor(c, 'model'));
    vscode.window.setStatusBarMessage(`StarCoder model: ${model}`, 3000);
  }

  private async pullThenUse(model: string): Promise<void> {
    const launcher = this.launcher;
    if (!launcher) return;
    if (!(await this.pullModel(launcher, model))) return;
    const current = this.serverSettings().model;
    if (current === model) await this.restart(); // same setting: make the server load it now
    else await this.setModel(model);
  }

  /** `models pull NAME` with a cancellable progress notification; true when the model is there. */
  private pullModel(launcher: Launcher, model: string, size?: string): Thenable<boolean> {
    const { command, args } = commandLine(launcher, ['models', 'pull', model]);
    this.log.info(`running ${command} ${args.join(' ')}`);
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `StarCoder: downloading ${model}${size ? ` (${size}, once)` : ''}`, cancellable: true },
      (progress, token) => new Promise<boolean>((resolve) => {
        const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let last = 0;
        let tail = '';
        token.onCancellationRequested(() => child.kill());
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
          tail = (tail + chunk).slice(-2000);
          const pct = lastPercent(chunk);
          if (pct !== undefined && pct > last) {
            progress.report({ increment: pct - last, message: `${pct}%` });
            last = pct;
          }
        });
        child.on('error', (err) => {
          this.log.error(`models pull: ${err.message}`);
          resolve(false);
        });
        child.on('close', (code) => {
          if (code !== 0 && !token.isCancellationRequested) {
            const line = tail.split(/[\r\n]+/).map((l) => l.trim()).filter(Boolean).pop() ?? `exit code ${code}`;
            this.log.error(`models pull ${model}: ${tail}`);
            void vscode.window.showErrorMessage(`StarCoder: downloading ${model} failed: ${line}`);
          }
          resolve(code === 0);
        });
      }),
    );
  }

  // --- installing the server --------------------------------------------------------------------
  /**
   * Install starcoder-lsp into the extension's own venv (src/editor/install.ts), pull the model
   * when it is not on disk, then start it. What is installed comes from the user's own
   * `starcoder.server.installFrom` only; nothing runs without this command being chosen.
   */
  private async installServer(why: 'install' | 'reinstall' | 'update'): Promise<void> {
    if (this.installer.installing) {
      void vscode.window.showInformationMessage('StarCoder: the server is being installed already (see the notification).');
      return;
    }
    const found = this.resolve();
    if (why === 'install' && found.ok && found.launcher.source !== 'managed') {
      const pick = await vscode.window.showInformationMessage(
        `StarCoder already uses ${found.launcher.command} (found via ${found.launcher.source}). Install the extension's own server anyway?`,
        'Install', 'Cancel');
      if (pick !== 'Install') return;
    }
    const running = this.client?.state === State.Running;
    const before = this.state;
    const installed = await this.installer.install({
      installFrom: this.userScoped()('server.installFrom'),
      verb: why === 'install' ? 'installing' : why === 'update' ? 'updating' : 'reinstalling',
      onStep: running ? undefined : (message) => this.dispatch({ type: 'installing', message }),
    });
    if (!installed) {
      if (!running) {
        this.state = before;
        this.render();
      }
      return;
    }
    await this.afterInstall(installed);
  }

  private async afterInstall(installed: Installed): Promise<void> {
    const exe = this.installer.executable();
    if (!exe) return;
    const launcher: Launcher = { command: exe, prefixArgs: [], source: 'managed' };
    await this.ensureModel(launcher);
    // A server.path that pointed at an older install of ours follows it to the new venv.
    const c = this.config();
    const configured = c.inspect<string>('server.path')?.globalValue;
    if (configured && configured.startsWith(this.installer.dir) && configured !== exe) {
      await c.update('server.path', exe, vscode.ConfigurationTarget.Global); // restarts the server
    }
    const found = this.resolve();
    if (found.ok && found.launcher.command !== exe) {
      const use = 'Use the Installed Server';
      void vscode.window.showWarningMessage(
        `StarCoder: starcoder-lsp ${installed.version} is installed, but ${found.launcher.command} (found via ${found.launcher.source}) comes first.`,
        use).then(async (pick) => {
        if (pick === use) await c.update('server.path', exe, vscode.ConfigurationTarget.Global);
      });
    }
    await this.restart();
    this.installer.removeOldVenvs();
    vscode.window.setStatusBarMessage(`StarCoder: starcoder-lsp ${installed.version} installed`, 5000);
  }

  /** Pull the configured (or default) catalogue model if it is not on disk (src/install.ts modelToPull). */
  private async ensureModel(launcher: Launcher): Promise<void> {
    const model = this.serverSettings().model;
    if (model && looksLikePath(model)) return;
    try {
      const entry = modelToPull(model, await this.listModels(launcher));
      if (entry) await this.pullModel(launcher, entry.name, entry.size);
      else this.log.info(`after the install: model ${model ?? '(default)'} needs no download`);
    } catch (err) {
      this.log.warn(`after the install, the model catalogue could not be read: ${errorText(err)}`);
    }
  }


  private async explainSelection(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage('StarCoder: open a file and select the code to explain.');
      return;
    }
    const client = this.runningClient();
    if (!client) return;
    const range = editor.selection.isEmpty ? editor.document.lineAt(editor.selection.active.line).range : editor.selection;
    const args = [client.code2ProtocolConverter.asUri(editor.document.uri), client.code2ProtocolConverter.asRange(range)];
    let result: unknown;
    try {
      result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: 'StarCoder: explaining…', cancellable: true },
        (_, token) => client.sendRequest(ExecuteCommandRequest.type, { command: EXPLAIN_COMMAND, arguments: args }, token),
      );
    } catch (err) {
      if (err instanceof ResponseError && err.code === -32800) return; // cancelled by the user
      const text = errorText(err);
      const hint = /unknown command|not (found|defined)|-32601/i.test(text) ? ' (this starcoder-lsp has no explain command; update it)' : '';
      void vscode.window.showErrorMessage(`StarCoder: explain failed: ${text}${hint}`);
      return;
    }
    await this.showExplanation(result, args);
  }

  private async showExplanation(result: unknown, args: unknown[]): Promise<void> {
    if (typeof result !== 'string' || !result.trim()) {
      void vscode.window.showInformationMessage('StarCoder: no explanation was produced.');
      return;
    }
    const uriArg = typeof args[0] === 'string' ? args[0] : '';
    const range = args[1] as { start?: { line?: number }; end?: { line?: number } } | undefined;
    const base = uriArg ? path.basename(vscode.Uri.parse(uriArg).path) : 'selection';
    const lines = range?.start?.line !== undefined && range.end?.line !== undefined
      ? ` lines ${range.start.line + 1}-${range.end.line + 1}` : '';
    const uri = this.explanations.add(`Explanation of ${base}${lines}`, result, '.md');
    try {
      await vscode.commands.executeCommand('markdown.showPreviewToSide', uri);
    } catch {
      const doc = await vscode.workspace.openTextDocument(uri);
      await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true });
    }
  }
}
