/**
 * The playground page: Monaco + monaco-languageclient, a real LSP client of starcoder-lsp over the
 * `--ws` transport of the same origin that served this page.
 *
 * Versions, and why: monaco-languageclient 1.1.0 (vscode-languageclient 8 on its own shim of the
 * `vscode` API, plain `monaco-editor` 0.34, `vscode-ws-jsonrpc` for the socket). Its current majors
 * (9–10) need @codingame/monaco-vscode-api's ~40 service packages and a bundler that understands
 * their asset imports; and no version's client sends LSP 3.18 `textDocument/inlineCompletion`
 * (vscode-languageclient 8 predates it). So the language client does the session (initialize with
 * the token, document sync, code actions and their commands, configuration, applyEdit), and this
 * module registers Monaco's own `registerInlineCompletionsProvider` on the client's connection
 * (`sendRequest('textDocument/inlineCompletion')`), running each item's `command`
 * (`starcoder.accepted`) with `workspace/executeCommand` on accept, as VS Code does.
 *
 * The token: the URL's fragment (`#token=…`, never sent to a server, unreadable by other origins)
 * carries it; it is moved to sessionStorage (this origin only) and removed from the address bar.
 */
import 'monaco-editor/esm/vs/editor/edcore.main';
import * as monaco from 'monaco-editor/esm/vs/editor/editor.api';
import 'monaco-editor/esm/vs/basic-languages/python/python.contribution';
import 'monaco-editor/esm/vs/basic-languages/javascript/javascript.contribution';
import 'monaco-editor/esm/vs/basic-languages/typescript/typescript.contribution';
import 'monaco-editor/esm/vs/basic-languages/rust/rust.contribution';
import 'monaco-editor/esm/vs/basic-languages/go/go.contribution';
import { CloseAction, ErrorAction, MonacoLanguageClient, MonacoServices, Services } from 'monaco-languageclient';
import { toSocket, WebSocketMessageReader, WebSocketMessageWriter } from 'vscode-ws-jsonrpc';
import './style.css';

import pySample from '../samples/stats.py';
import tsSample from '../samples/cart.ts.txt';
import jsSample from '../samples/debounce.js.txt';
import rsSample from '../samples/words.rs';
import goSample from '../samples/server.go';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Config {
  models: { name: string; local: boolean; description: string }[];
  settings: Record<string, Json>;
}

const SAMPLES: { name: string; language: string; text: string }[] = [
  { name: 'stats.py', language: 'python', text: pySample },
  { name: 'cart.ts', language: 'typescript', text: tsSample },
  { name: 'debounce.js', language: 'javascript', text: jsSample },
  { name: 'words.rs', language: 'rust', text: rsSample },
  { name: 'server.go', language: 'go', text: goSample },
];
const LANGUAGES = [...new Set(SAMPLES.map((s) => s.language))];
const ACCEPTED = 'playground.accepted'; // ours: runs the item's server command on accept

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

// What the Playwright test and a curious user can read back.
const page = ((window as Json).playground = {
  status: [] as Json[],
  suggestions: [] as { latencyMs: number; text: string }[],
  accepted: 0,
  explanations: [] as string[],
  edits: [] as Json[],
  messages: [] as string[],
});

function takeToken(): string | null {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    sessionStorage.setItem('starcoder-token', fromHash);
    history.replaceState(null, '', location.pathname);
    return fromHash;
  }
  return sessionStorage.getItem('starcoder-token');
}

function message(text: string): void {
  page.messages.push(text);
  const li = document.createElement('li');
  li.textContent = text;
  $('messages').prepend(li);
}

function setStatus(state: string, text: string): void {
  const el = $('status');
  el.dataset.state = state;
  el.textContent = text;
}

(self as Json).MonacoEnvironment = { getWorkerUrl: () => './editor.worker.js' };

async function main(): Promise<void> {
  const token = takeToken();
  const config: Config = await (await fetch('config.json')).json();
  const settings: Record<string, Json> = { ...config.settings };

  const models = SAMPLES.map((s) =>
    monaco.editor.createModel(s.text, s.language, monaco.Uri.parse(`file:///playground/${s.name}`)));
  const editor = monaco.editor.create($('editor'), {
    model: models[0],
    theme: 'vs-dark',
    automaticLayout: true,
    minimap: { enabled: false },
    fontSize: 14,
    inlineSuggest: { enabled: true },
    quickSuggestions: false, // the word-based list would hide ghost text
    wordBasedSuggestions: false,
  });
  (window as Json).playgroundEditor = editor;
  const sample = $<HTMLSelectElement>('sample');
  SAMPLES.forEach((s, i) => sample.add(new Option(s.name, String(i))));
  sample.onchange = () => {
    editor.setModel(models[Number(sample.value)]);
    editor.focus();
  };
  // Start where there is something to complete: the sample's first empty indented line.
  const goToHole = () => {
    const model = editor.getModel()!;
    for (let line = model.getLineCount(); line >= 1; line--) {
      const text = model.getLineContent(line);
      if (text.trim() === '' && text.length > 0) {
        editor.setPosition({ lineNumber: line, column: text.length + 1 });
        break;
      }
    }
  };
  goToHole();
  editor.onDidChangeModel(goToHole);

  if (!token) {
    setStatus('error', 'no token');
    message('Open the address `starcoder-lsp playground` printed (it carries the token).');
    return;
  }

  // --- the settings form: sent as workspace/didChangeConfiguration, answered on pull --------------
  const modelSelect = $<HTMLSelectElement>('model');
  const names = config.models.map((m) => m.name);
  if (settings.model && !names.includes(settings.model)) {
    config.models.unshift({ name: settings.model, local: true, description: 'from the command line' });
  }
  for (const m of config.models) {
    const option = new Option(m.name + (m.local ? '' : ' (not pulled)'), m.name);
    option.title = m.description;
    modelSelect.add(option);
  }
  modelSelect.value = settings.model ?? '';
  const fields: [string, HTMLInputElement, (el: HTMLInputElement) => Json][] = [
    ['maxTokens', $('maxTokens'), (el) => (el.value ? Number(el.value) : undefined)],
    ['temperature', $('temperature'), (el) => (el.value ? Number(el.value) : undefined)],
    ['contextTokens', $('contextTokens'), (el) => (el.value ? Number(el.value) : undefined)],
    ['enable', $('enable'), (el) => el.checked],
  ];
  for (const [key, el] of fields) {
    if (el.type === 'checkbox') el.checked = settings[key] !== false;
    else if (settings[key] !== undefined && settings[key] !== null) el.value = String(settings[key]);
  }

  // --- the language client ------------------------------------------------------------------------
  const services = MonacoServices.create(monaco as Json);
  const progress = { explaining: false };
  services.window = {
    showMessage: (_type: Json, text: string) => {
      message(text);
      return Promise.resolve(undefined);
    },
    // Explanations and edits stream their text as $/progress: shown as it comes.
    withProgress: (_options: Json, task: Json) =>
      task({
        report: (value: { message?: string }) => {
          if (progress.explaining && value.message) $('explanation').textContent = value.message;
        },
      }, { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) }),
  } as Json;
  Services.install(services);

  const socket = new WebSocket(`ws://${location.host}/lsp`);
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error('the WebSocket was refused'));
  });
  const wrapped = toSocket(socket);
  const reader = new WebSocketMessageReader(wrapped);
  const writer = new WebSocketMessageWriter(wrapped);
  socket.addEventListener('close', () => setStatus('closed', 'disconnected'));

  const client: MonacoLanguageClient = new MonacoLanguageClient({
    name: 'starcoder-lsp',
    clientOptions: {
      documentSelector: LANGUAGES,
      initializationOptions: { token, ...settings },
      errorHandler: {
        error: () => ({ action: ErrorAction.Continue }),
        closed: () => ({ action: CloseAction.DoNotRestart }),
      },
      middleware: {
        // A command the lightbulb (Ctrl+.) runs: its answer goes to the side panel.
        executeCommand: async (command: string, args: Json[], next: Json) => runCommand(command, args, next),
        workspace: {
          configuration: (params: Json) => params.items.map((item: Json) =>
            item.section === 'starcoder' ? current() : null),
        },
      },
    },
    connectionProvider: { get: () => Promise.resolve({ reader, writer }) },
  });
  // What this client can do beyond vscode-languageclient 8: LSP 3.18 inline completion, and the
  // starcoder extras (it shows explanations itself, asks for edit instructions).
  client.registerFeature({
    fillClientCapabilities(caps: Json) {
      caps.textDocument = caps.textDocument ?? {};
      caps.textDocument.inlineCompletion = { dynamicRegistration: false };
      caps.experimental = { ...(caps.experimental ?? {}), starcoder: { explainPreview: true, editInput: true } };
    },
    initialize() {},
    getState: () => ({ kind: 'static' }),
    dispose() {},
  } as Json);

  function current(): Record<string, Json> {
    const out: Record<string, Json> = { ...settings, model: modelSelect.value };
    for (const [key, el, read] of fields) {
      const value = read(el);
      if (value === undefined) delete out[key];
      else out[key] = value;
    }
    return out;
  }
  const pushSettings = () =>
    client.sendNotification('workspace/didChangeConfiguration', { settings: { starcoder: current() } });
  modelSelect.onchange = pushSettings;
  for (const [, el] of fields) el.onchange = pushSettings;

  async function runCommand(command: string, args: Json[], next?: Json): Promise<Json> {
    const explain = command === 'starcoder.explain';
    if (explain) {
      progress.explaining = true;
      $('explanation').textContent = 'Explaining…';
    }
    try {
      const result = next ? await next(command, args)
        : await client.sendRequest('workspace/executeCommand', { command, arguments: args });
      if (explain) {
        $('explanation').textContent = String(result ?? '');
        page.explanations.push(String(result ?? ''));
      } else if (command === 'starcoder.edit') {
        page.edits.push(result);
        message(result?.applied ? 'Edit applied' : `Edit not applied: ${result?.reason ?? ''}`);
      }
      return result;
    } catch (err) {
      message(`${command} failed: ${err}`);
      return undefined;
    } finally {
      if (explain) progress.explaining = false;
    }
  }

  client.onNotification('starcoder/status', (status: Json) => {
    page.status.push(status);
    const extra = status.errors ? ` (${status.errors} errors)` : '';
    const model = String(status.model ?? '').split('/').pop();
    setStatus(status.state, `${status.state}: ${model}${extra}`);
    $('status').title = status.message ?? '';
  });

  client.start();
  await client.onReady?.();

  // --- ghost text ---------------------------------------------------------------------------------
  monaco.editor.registerCommand(ACCEPTED, (_accessor: Json, command: Json) => {
    page.accepted += 1;
    if (command?.command) {
      void client.sendRequest('workspace/executeCommand', { command: command.command, arguments: command.arguments ?? [] });
    }
  });
  monaco.languages.registerInlineCompletionsProvider(LANGUAGES, {
    async provideInlineCompletions(model, position, context, cancel) {
      const started = performance.now();
      const result: Json = await client.sendRequest('textDocument/inlineCompletion', {
        textDocument: { uri: model.uri.toString() },
        position: { line: position.lineNumber - 1, character: position.column - 1 },
        context: { triggerKind: context.triggerKind === monaco.languages.InlineCompletionTriggerKind.Automatic ? 2 : 1 },
      }, cancel as Json).catch(() => null);
      const items: Json[] = Array.isArray(result) ? result : result?.items ?? [];
      const latencyMs = Math.round(performance.now() - started);
      const shown = items.map((item) => {
        const text = typeof item.insertText === 'string' ? item.insertText : item.insertText.value;
        const r = item.range;
        return {
          insertText: text,
          range: r ? new monaco.Range(r.start.line + 1, r.start.character + 1, r.end.line + 1, r.end.character + 1)
            : undefined,
          command: { id: ACCEPTED, title: 'accepted', arguments: [item.command] },
        };
      });
      if (shown.length) {
        recordSuggestion(latencyMs, shown[0].insertText);
        void refreshStats();
      }
      return { items: shown };
    },
    freeInlineCompletions() {},
  });

  function recordSuggestion(latencyMs: number, text: string): void {
    page.suggestions.push({ latencyMs, text });
    const row = document.createElement('tr');
    for (const cell of [`${latencyMs} ms`, String(text.length), text.replace(/\n/g, '⏎')]) {
      const td = document.createElement('td');
      td.textContent = cell.length > 60 ? cell.slice(0, 60) + '…' : cell;
      row.append(td);
    }
    $('suggestions').querySelector('tbody')!.prepend(row);
  }

  async function refreshStats(): Promise<void> {
    const stats: Json = await client.sendRequest('starcoder/stats', {}).catch(() => null);
    if (!stats) return;
    const pick = ['state', 'model', 'evaluated', 'summary'];
    const lines = pick.filter((k) => stats[k] !== undefined).map((k) => `${k}: ${typeof stats[k] === 'object' ? JSON.stringify(stats[k]) : stats[k]}`);
    $('stats').textContent = lines.join('\n');
    (page as Json).stats = stats;
  }
  setInterval(() => void refreshStats(), 5000);
  void refreshStats();

  // --- Explain and Edit from the side panel (the same code actions the lightbulb lists) ------------
  async function actionsHere(): Promise<Json[]> {
    const model = editor.getModel()!;
    const sel = editor.getSelection()!;
    const range = {
      start: { line: sel.startLineNumber - 1, character: sel.startColumn - 1 },
      end: { line: sel.endLineNumber - 1, character: sel.endColumn - 1 },
    };
    const actions: Json = await client.sendRequest('textDocument/codeAction', {
      textDocument: { uri: model.uri.toString() }, range, context: { diagnostics: [] },
    });
    return actions ?? [];
  }
  $('explain').onclick = async () => {
    const action = (await actionsHere()).find((a) => a.title.startsWith('Explain'));
    if (!action?.command) return message('Nothing to explain here: select code or put the cursor in a block.');
    await runCommand(action.command.command, action.command.arguments);
  };
  $('edit').onclick = async () => {
    const instruction = $<HTMLInputElement>('instruction').value.trim();
    const action = (await actionsHere()).find((a) => a.title.startsWith('Edit'));
    if (!action?.command) return message('Nothing to edit here: select code or put the cursor in a block.');
    const [uri, range] = action.command.arguments;
    await runCommand('starcoder.edit', [uri, range, instruction || 'Fix bugs in this code.']);
  };
  // The server's "Edit … with StarCoder…" action (editInput): ask, then run starcoder.edit.
  monaco.editor.registerCommand('starcoder.editSelection', (_accessor: Json, uri: string, range: Json) => {
    const instruction = $<HTMLInputElement>('instruction').value.trim() || window.prompt('Edit instruction') || '';
    if (instruction) void runCommand('starcoder.edit', [uri, range, instruction]);
  });
  editor.focus();
}

main().catch((err) => {
  setStatus('error', 'failed');
  message(String(err));
});
