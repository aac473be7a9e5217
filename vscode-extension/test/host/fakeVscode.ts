/**
 * A miniature extension host: just enough of the `vscode` API, implemented for real, to run
 * `src/extension.ts` and the real vscode-languageclient under plain Node against the real server
 * (VS Code itself cannot be downloaded here). Members the code under test touches only in passing
 * (providers it never calls, events that never fire) fall back to an inert stand-in.
 *
 * `install()` makes `require('vscode')` return this API; `host` lets a test drive and inspect it:
 * settings, open documents, the status bar item, messages, commands and registered providers.
 */

import Module from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

// --- an inert stand-in for everything not implemented ----------------------------------------------
export function inert(name: string): unknown {
  const fn = function () {
    return inert(`${name}()`);
  };
  return new Proxy(fn, {
    get(_t, p) {
      if (p === Symbol.toPrimitive) return () => name;
      if (p === Symbol.iterator) return function* () {};
      if (p === 'then') return undefined;
      if (p === 'dispose') return () => undefined;
      return inert(`${name}.${String(p)}`);
    },
    apply: () => inert(`${name}()`),
    construct: () => inert(`new ${name}`) as object,
  });
}

function withFallback<T extends object>(name: string, impl: T): T {
  return new Proxy(impl, {
    get(t, p, r) {
      if (p in t) return Reflect.get(t, p, r) as unknown;
      return inert(`${name}.${String(p)}`);
    },
  });
}

// --- basic types ---------------------------------------------------------------------------------------
type Listener<T> = (e: T) => unknown;

export class Disposable {
  constructor(private readonly fn: () => unknown = () => undefined) {}
  static from(...items: { dispose(): unknown }[]): Disposable {
    return new Disposable(() => items.forEach((d) => d.dispose()));
  }
  dispose(): void {
    this.fn();
  }
}

export class EventEmitter<T> {
  private listeners = new Set<Listener<T>>();
  event = (listener: Listener<T>, thisArg?: unknown, disposables?: Disposable[]): Disposable => {
    const bound: Listener<T> = (e) => listener.call(thisArg, e);
    this.listeners.add(bound);
    const d = new Disposable(() => this.listeners.delete(bound));
    disposables?.push(d);
    return d;
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  dispose(): void {
    this.listeners.clear();
  }
}

export class Uri {
  private constructor(
    readonly scheme: string,
    readonly authority: string,
    readonly path: string,
    readonly query: string,
    readonly fragment: string,
  ) {}
  static file(p: string): Uri {
    return new Uri('file', '', pathToFileURL(p).pathname, '', '');
  }
  static parse(value: string): Uri {
    const m = /^([a-zA-Z][\w+.-]*):(?:\/\/([^/?#]*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/.exec(value);
    if (!m) throw new Error(`bad uri ${value}`);
    return new Uri(m[1], m[2] ?? '', decodeURIComponent(m[3] ?? ''), m[4] ?? '', m[5] ?? '');
  }
  static from(c: { scheme: string; authority?: string; path?: string; query?: string; fragment?: string }): Uri {
    return new Uri(c.scheme, c.authority ?? '', c.path ?? '', c.query ?? '', c.fragment ?? '');
  }
  static joinPath(base: Uri, ...parts: string[]): Uri {
    return base.with({ path: path.posix.join(base.path, ...parts) });
  }
  with(c: Partial<{ scheme: string; authority: string; path: string; query: string; fragment: string }>): Uri {
    return new Uri(c.scheme ?? this.scheme, c.authority ?? this.authority, c.path ?? this.path, c.query ?? this.query, c.fragment ?? this.fragment);
  }
  get fsPath(): string {
    return this.scheme === 'file' ? fileURLToPath(`file://${this.path}`) : this.path;
  }
  toString(): string {
    if (this.scheme === 'file') return pathToFileURL(this.fsPath).toString();
    const enc = this.path.split('/').map(encodeURIComponent).join('/');
    return `${this.scheme}:${this.authority ? `//${this.authority}` : ''}${enc}${this.query ? `?${this.query}` : ''}${this.fragment ? `#${this.fragment}` : ''}`;
  }
  toJSON(): unknown {
    return { scheme: this.scheme, path: this.path };
  }
}

export class Position {
  constructor(readonly line: number, readonly character: number) {}
  isEqual(o: Position): boolean {
    return o.line === this.line && o.character === this.character;
  }
}

export class Range {
  readonly start: Position;
  readonly end: Position;
  constructor(a: Position | number, b: Position | number, c?: number, d?: number) {
    if (typeof a === 'number') {
      this.start = new Position(a, b as number);
      this.end = new Position(c as number, d as number);
    } else {
      this.start = a;
      this.end = b as Position;
    }
  }
  get isEmpty(): boolean {
    return this.start.isEqual(this.end);
  }
}

export class Selection extends Range {
  constructor(readonly anchor: Position, readonly active: Position) {
    super(anchor, active);
  }
}

export class InlineCompletionItem {
  filterText?: string;
  constructor(readonly insertText: string | { value: string }, readonly range?: Range, readonly command?: unknown) {}
}
export class InlineCompletionList {
  constructor(readonly items: InlineCompletionItem[]) {}
}
export class SnippetString {
  constructor(readonly value: string) {}
}
export class MarkdownString {
  constructor(public value = '') {}
}
export class ThemeColor {
  constructor(readonly id: string) {}
}
export class CancellationTokenSource {
  private emitter = new EventEmitter<void>();
  token = {
    isCancellationRequested: false,
    onCancellationRequested: this.emitter.event,
  };
  cancel(): void {
    if (!this.token.isCancellationRequested) {
      this.token.isCancellationRequested = true;
      this.emitter.fire();
    }
  }
  dispose(): void {
    this.emitter.dispose();
  }
}

export const StatusBarAlignment = { Left: 1, Right: 2 };
export const ConfigurationTarget = { Global: 1, Workspace: 2, WorkspaceFolder: 3 };
export const ProgressLocation = { SourceControl: 1, Window: 10, Notification: 15 };
export const QuickPickItemKind = { Separator: -1, Default: 0 };
export const ViewColumn = { Active: -1, Beside: -2, One: 1 };
export const InlineCompletionTriggerKind = { Invoke: 0, Automatic: 1 };
export const LogLevel = { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 };
export const EndOfLine = { LF: 1, CRLF: 2 };

// --- documents -----------------------------------------------------------------------------------------
export class TextDocument {
  version = 1;
  readonly isClosed = false;
  readonly isUntitled = false;
  readonly eol = EndOfLine.LF;
  constructor(readonly uri: Uri, readonly languageId: string, private text: string) {}
  get fileName(): string {
    return this.uri.fsPath;
  }
  getText(range?: Range): string {
    if (!range) return this.text;
    return this.text.slice(this.offsetAt(range.start), this.offsetAt(range.end));
  }
  get lineCount(): number {
    return this.text.split('\n').length;
  }
  lineAt(line: number): { text: string; range: Range } {
    const text = this.text.split('\n')[line] ?? '';
    return { text, range: new Range(line, 0, line, text.length) };
  }
  offsetAt(p: Position): number {
    const lines = this.text.split('\n');
    let off = 0;
    for (let i = 0; i < p.line && i < lines.length; i++) off += lines[i].length + 1;
    return off + p.character;
  }
  positionAt(offset: number): Position {
    const before = this.text.slice(0, offset).split('\n');
    return new Position(before.length - 1, before[before.length - 1].length);
  }
  /** Apply an edit the way typing does; returns the change event VS Code would fire. */
  insert(at: Position, text: string): unknown {
    const off = this.offsetAt(at);
    this.text = this.text.slice(0, off) + text + this.text.slice(off);
    this.version++;
    return {
      document: this,
      contentChanges: [{ range: new Range(at, at), rangeOffset: off, rangeLength: 0, text }],
      reason: undefined,
    };
  }
}

// --- the host's state ------------------------------------------------------------------------------------
export interface StatusItem {
  text: string;
  tooltip?: string;
  backgroundColor?: ThemeColor;
  command?: string;
  name?: string;
  visible: boolean;
}

export interface Message { severity: 'info' | 'warning' | 'error'; text: string; items: string[] }

export interface QuickPickItem { label: string; description?: string; detail?: string; kind?: number; [k: string]: unknown }

/** A `window.createQuickPick()` the test can look at and answer. */
export class FakeQuickPick {
  items: QuickPickItem[] = [];
  selectedItems: QuickPickItem[] = [];
  busy = false;
  title?: string;
  placeholder?: string;
  visible = false;
  private readonly accept = new EventEmitter<void>();
  private readonly hidden = new EventEmitter<void>();
  onDidAccept = this.accept.event;
  onDidHide = this.hidden.event;
  show(): void {
    this.visible = true;
  }
  hide(): void {
    if (this.visible) {
      this.visible = false;
      this.hidden.fire();
    }
  }
  dispose(): void {
    this.hide();
  }
  /** The user picks `item` and presses Enter. */
  choose(item: QuickPickItem): void {
    this.selectedItems = [item];
    this.accept.fire();
  }
}

type ConfigChange = { affectsConfiguration(section: string): boolean };

class Host {
  settings = new Map<string, unknown>(); // full keys, e.g. "starcoder.enable"
  readonly defaults = new Map<string, unknown>();
  readonly statusItems: StatusItem[] = [];
  readonly messages: Message[] = [];
  readonly log: string[] = [];
  readonly commands = new Map<string, (...args: unknown[]) => unknown>();
  readonly executed: { command: string; args: unknown[] }[] = [];
  readonly inlineProviders: { selector: unknown; provider: { provideInlineCompletionItems: (...a: unknown[]) => unknown } }[] = [];
  readonly contentProviders = new Map<string, { provideTextDocumentContent(uri: Uri): string }>();
  documents: TextDocument[] = [];
  activeEditor: { document: TextDocument; selection: Selection } | undefined;
  workspaceFolders: { uri: Uri; name: string; index: number }[] = [];
  isTrusted = true;
  /** Answers for showXMessage: the text of the button to "click", or undefined. */
  answer: (m: Message) => string | undefined = () => undefined;
  /** Answers for showQuickPick: the item to pick, or undefined (Escape). */
  pick: (items: QuickPickItem[]) => QuickPickItem | undefined = () => undefined;
  readonly quickPicks: FakeQuickPick[] = [];
  readonly shownPicks: QuickPickItem[][] = [];
  readonly onDidChangeConfiguration = new EventEmitter<ConfigChange>();
  readonly onDidOpenTextDocument = new EventEmitter<TextDocument>();
  readonly onDidChangeTextDocument = new EventEmitter<unknown>();
  readonly onDidCloseTextDocument = new EventEmitter<TextDocument>();
  readonly onDidChangeActiveTextEditor = new EventEmitter<unknown>();

  get status(): StatusItem {
    return this.statusItems[0];
  }

  setSetting(key: string, value: unknown): void {
    if (value === undefined) this.settings.delete(key);
    else this.settings.set(key, value);
    this.onDidChangeConfiguration.fire({
      affectsConfiguration: (section) => key === section || key.startsWith(`${section}.`) || section.startsWith(`${key}.`),
    });
  }

  openDocument(file: string, languageId: string, text: string): TextDocument {
    const doc = new TextDocument(Uri.file(file), languageId, text);
    this.documents.push(doc);
    this.onDidOpenTextDocument.fire(doc);
    this.activeEditor = { document: doc, selection: new Selection(new Position(0, 0), new Position(0, 0)) };
    this.onDidChangeActiveTextEditor.fire(this.activeEditor);
    return doc;
  }

  type(doc: TextDocument, at: Position, text: string): void {
    this.onDidChangeTextDocument.fire(doc.insert(at, text));
  }

  async executeCommand(command: string, ...args: unknown[]): Promise<unknown> {
    this.executed.push({ command, args });
    const fn = this.commands.get(command);
    return fn ? await fn(...args) : undefined;
  }

  /** What VS Code does when the user pauses typing: ask every matching inline provider. */
  async requestInline(doc: TextDocument, pos: Position, token = new CancellationTokenSource().token): Promise<InlineCompletionItem[]> {
    const out: InlineCompletionItem[] = [];
    for (const { provider } of this.inlineProviders) {
      const r = (await provider.provideInlineCompletionItems(doc, pos, { triggerKind: InlineCompletionTriggerKind.Automatic, selectedCompletionInfo: undefined }, token)) as
        | InlineCompletionList | InlineCompletionItem[] | null | undefined;
      if (!r) continue;
      out.push(...(Array.isArray(r) ? r : r.items));
    }
    return out;
  }
}

export const host = new Host();

function configuration(section?: string) {
  const full = (key: string) => (section ? `${section}.${key}` : key);
  const value = (k: string): unknown => {
    if (host.settings.has(k)) return host.settings.get(k);
    if (host.defaults.has(k)) return host.defaults.get(k);
    // A parent object (e.g. get('trace') → { server: ... }).
    const prefix = `${k}.`;
    const keys = [...new Set([...host.defaults.keys(), ...host.settings.keys()])].filter((x) => x.startsWith(prefix));
    if (keys.length === 0) return undefined;
    const obj: Record<string, unknown> = {};
    for (const key of keys) obj[key.slice(prefix.length)] = value(key);
    return obj;
  };
  return {
    get<T>(key: string, fallback?: T): T | undefined {
      const v = value(full(key));
      return (v === undefined ? fallback : v) as T | undefined;
    },
    has(key: string): boolean {
      return value(full(key)) !== undefined;
    },
    inspect(key: string) {
      const k = full(key);
      return { key: k, defaultValue: host.defaults.get(k), globalValue: host.settings.get(k) };
    },
    async update(key: string, v: unknown): Promise<void> {
      host.setSetting(full(key), v);
    },
  };
}

function message(severity: Message['severity']) {
  return (text: string, ...rest: unknown[]): Promise<string | undefined> => {
    const items = rest.filter((x): x is string => typeof x === 'string');
    const m = { severity, text, items };
    host.messages.push(m);
    return Promise.resolve(host.answer(m));
  };
}

function outputChannel(name: string) {
  const line = (level: string) => (msg: unknown, ...args: unknown[]) => {
    host.log.push(`[${name}] ${level} ${String(msg instanceof Error ? msg.message : msg)}${args.length ? ' ' + args.map(String).join(' ') : ''}`);
  };
  return withFallback(`OutputChannel(${name})`, {
    name,
    logLevel: LogLevel.Info,
    onDidChangeLogLevel: new EventEmitter<number>().event,
    append: (s: string) => host.log.push(s),
    appendLine: (s: string) => host.log.push(s),
    replace: () => undefined,
    clear: () => undefined,
    show: () => undefined,
    hide: () => undefined,
    dispose: () => undefined,
    trace: line('trace'),
    debug: line('debug'),
    info: line('info'),
    warn: line('warn'),
    error: line('error'),
  });
}

function matches(selector: unknown, doc: TextDocument): number {
  const filters = Array.isArray(selector) ? selector : [selector];
  for (const f of filters) {
    if (typeof f === 'string') {
      if (f === '*' || f === doc.languageId) return 10;
      continue;
    }
    const filter = f as { scheme?: string; language?: string; pattern?: unknown };
    if (filter.scheme && filter.scheme !== doc.uri.scheme) continue;
    if (filter.language && filter.language !== doc.languageId) continue;
    return 5;
  }
  return 0;
}

export const api = {
  Disposable, EventEmitter, Uri, Position, Range, Selection, InlineCompletionItem, InlineCompletionList,
  SnippetString, MarkdownString, ThemeColor, CancellationTokenSource, StatusBarAlignment, ConfigurationTarget,
  ProgressLocation, QuickPickItemKind, ViewColumn, InlineCompletionTriggerKind, LogLevel, EndOfLine,
  version: '1.95.0',
  env: withFallback('env', { appName: 'Visual Studio Code', language: 'en', machineId: 'test', sessionId: 'test', uriScheme: 'vscode' }),
  window: withFallback('window', {
    createOutputChannel: (name: string) => outputChannel(name),
    createStatusBarItem: (): StatusItem => {
      const item: StatusItem & { show(): void; hide(): void; dispose(): void } = {
        text: '', visible: false,
        show() { this.visible = true; },
        hide() { this.visible = false; },
        dispose() { this.visible = false; },
      };
      host.statusItems.push(item);
      return item;
    },
    showInformationMessage: message('info'),
    showWarningMessage: message('warning'),
    showErrorMessage: message('error'),
    setStatusBarMessage: () => new Disposable(),
    showQuickPick: async (items: QuickPickItem[] | Promise<QuickPickItem[]>) => {
      const list = await items;
      host.shownPicks.push(list);
      return host.pick(list);
    },
    createQuickPick: () => {
      const qp = new FakeQuickPick();
      host.quickPicks.push(qp);
      return qp;
    },
    withProgress: async <R>(_o: unknown, task: (p: { report(v: unknown): void }, t: unknown) => Promise<R>): Promise<R> =>
      task({ report: () => undefined }, new CancellationTokenSource().token),
    get activeTextEditor() { return host.activeEditor; },
    get visibleTextEditors() { return host.activeEditor ? [host.activeEditor] : []; },
    onDidChangeActiveTextEditor: host.onDidChangeActiveTextEditor.event,
    onDidChangeVisibleTextEditors: new EventEmitter<unknown>().event,
    tabGroups: withFallback('tabGroups', { all: [], onDidChangeTabs: new EventEmitter<unknown>().event, onDidChangeTabGroups: new EventEmitter<unknown>().event }),
    showTextDocument: async () => undefined,
  }),
  workspace: withFallback('workspace', {
    getConfiguration: (section?: string) => configuration(section),
    get workspaceFolders() { return host.workspaceFolders.length ? host.workspaceFolders : undefined; },
    get textDocuments() { return host.documents; },
    get isTrusted() { return host.isTrusted; },
    notebookDocuments: [],
    onDidChangeConfiguration: host.onDidChangeConfiguration.event,
    onDidOpenTextDocument: host.onDidOpenTextDocument.event,
    onDidChangeTextDocument: host.onDidChangeTextDocument.event,
    onDidCloseTextDocument: host.onDidCloseTextDocument.event,
    onDidSaveTextDocument: new EventEmitter<unknown>().event,
    onWillSaveTextDocument: new EventEmitter<unknown>().event,
    onDidGrantWorkspaceTrust: new EventEmitter<void>().event,
    onDidChangeWorkspaceFolders: new EventEmitter<unknown>().event,
    registerTextDocumentContentProvider: (scheme: string, p: { provideTextDocumentContent(uri: Uri): string }) => {
      host.contentProviders.set(scheme, p);
      return new Disposable(() => host.contentProviders.delete(scheme));
    },
    openTextDocument: async (uri: Uri) => {
      const p = host.contentProviders.get(uri.scheme);
      return new TextDocument(uri, 'markdown', p ? p.provideTextDocumentContent(uri) : '');
    },
  }),
  commands: withFallback('commands', {
    registerCommand: (id: string, fn: (...a: unknown[]) => unknown) => {
      if (host.commands.has(id)) throw new Error(`command '${id}' already exists`);
      host.commands.set(id, fn);
      return new Disposable(() => host.commands.delete(id));
    },
    executeCommand: (id: string, ...args: unknown[]) => host.executeCommand(id, ...args),
  }),
  languages: withFallback('languages', {
    match: (selector: unknown, doc: TextDocument) => matches(selector, doc),
    registerInlineCompletionItemProvider: (selector: unknown, provider: { provideInlineCompletionItems: (...a: unknown[]) => unknown }) => {
      const entry = { selector, provider };
      host.inlineProviders.push(entry);
      return new Disposable(() => host.inlineProviders.splice(host.inlineProviders.indexOf(entry), 1));
    },
    createDiagnosticCollection: () => withFallback('DiagnosticCollection', { set: () => undefined, clear: () => undefined, dispose: () => undefined, delete: () => undefined }),
  }),
};

/** Make `require('vscode')` return the fake API (idempotent). */
export function install(): void {
  const mod = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown; __fakeVscode?: boolean };
  if (mod.__fakeVscode) return;
  const original = mod._load;
  mod._load = function (request: string, ...rest: unknown[]) {
    if (request === 'vscode') return withFallback('vscode', api);
    return original.call(this, request, ...rest);
  };
  mod.__fakeVscode = true;
}

/** Load package.json's setting defaults, as VS Code does from `contributes.configuration`. */
export function loadDefaults(packageJson: { contributes: { configuration: { properties: Record<string, { default?: unknown }> } } }): void {
  for (const [k, p] of Object.entries(packageJson.contributes.configuration.properties)) host.defaults.set(k, p.default);
}
