/**
 * Settings → what the server receives (initializationOptions, `workspace/configuration` answers and
 * `workspace/didChangeConfiguration` pushes all carry the same object).
 *
 * Pure: no `vscode` import, so it is unit-tested under plain Node. The server treats `null` as
 * "reset to the default", so every key is always sent — clearing a setting in VS Code must undo it.
 */

import pkg from '../package.json';

export const SECTION = 'starcoder';

/**
 * Every key the server understands (lsp_server/settings.py's schema), in its order: what the
 * extension sends. tests/test_settings_drift.py reads this list and checks it, and package.json's
 * `starcoder.<key>` entries (type, default, range, choices), against the server's schema; the
 * unit tests check that package.json contributes nothing else but the extension's own settings.
 */
export const SERVER_SETTING_KEYS = [
  'model', 'modelsFile', 'nGpuLayers', 'threads', 'contextTokens', 'maxTokens', 'temperature',
  'enable', 'idleUnloadMinutes', 'backend', 'endpoint', 'apiKeyEnv', 'memoryPolicy', 'exclude',
  'gitignore', 'completeAfterDeletion',
] as const;
export type ServerKey = (typeof SERVER_SETTING_KEYS)[number];

/** Settings only the extension reads (the server never sees them). */
export const EXTENSION_SETTING_KEYS: readonly string[] = [
  'enableLanguages', 'debounceMs', 'server.path', 'server.pythonPath', 'server.args', 'server.installFrom', 'trace.server',
];

/** A contributed setting, as package.json declares it (the ranges and choices used below). */
export interface Contributed {
  type?: string | string[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  enum?: string[];
  scope?: string;
  description?: string;
  markdownDescription?: string;
}
export const CONTRIBUTED = pkg.contributes.configuration.properties as Record<string, Contributed>;

function contributed(key: ServerKey): Contributed {
  const p = CONTRIBUTED[`${SECTION}.${key}`];
  if (!p) throw new Error(`package.json does not contribute ${SECTION}.${key}`);
  return p;
}

/**
 * Settings a cloned repository must never choose, even in a trusted workspace: where code and keys
 * go, which catalogue file is read, which program runs. Only the user's own value counts (they are
 * `machine`-scoped in package.json, which VS Code enforces; this reader enforces it again).
 */
export const USER_ONLY_KEYS: readonly string[] = [
  'backend', 'endpoint', 'apiKeyEnv', 'modelsFile', 'server.path', 'server.pythonPath', 'server.args',
  'server.installFrom',
];

/** A setting's value at each level, as `WorkspaceConfiguration.inspect(key)` reports it. */
export interface Levels {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}
export type ConfigInspect = (key: string) => Levels | undefined;

function globs(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((g): g is string => typeof g === 'string' && g.trim() !== '') : [];
}

/**
 * Reads settings the way the server may receive them: user-only keys from the user's settings;
 * `model` from the workspace only when it names a catalogue model (never a file to load);
 * `exclude` patterns from every level together and `gitignore` on if any level turns it on (a
 * workspace can exclude more files, never fewer); everything else as VS Code resolves it.
 */
export function userScopedGetter(inspect: ConfigInspect): ConfigGet {
  return (key) => {
    const v = inspect(key);
    if (!v) return undefined;
    const user = v.globalValue !== undefined ? v.globalValue : v.defaultValue;
    const local = v.workspaceFolderValue !== undefined ? v.workspaceFolderValue : v.workspaceValue;
    if (USER_ONLY_KEYS.includes(key)) return user;
    if (key === 'model') {
      return typeof local === 'string' && local.trim() !== '' && !looksLikePath(local) ? local : user;
    }
    if (key === 'exclude') {
      return [...new Set([v.defaultValue, v.globalValue, v.workspaceValue, v.workspaceFolderValue].flatMap(globs))];
    }
    if (key === 'gitignore') {
      return [v.defaultValue, v.globalValue, v.workspaceValue, v.workspaceFolderValue].some((x) => x === true);
    }
    return local !== undefined ? local : user;
  };
}

/** Reads one `starcoder.<key>` value (VS Code: `workspace.getConfiguration('starcoder').get`). */
export type ConfigGet = (key: string) => unknown;

/** What `${workspaceFolder}`, `${userHome}` and a leading `~` expand to. */
export interface PathContext {
  home?: string;
  workspaceFolder?: string;
}

export function expandPath(value: string, ctx: PathContext): string {
  let out = value.trim();
  if (ctx.home) {
    if (out === '~') out = ctx.home;
    else if (out.startsWith('~/') || out.startsWith('~\\')) out = ctx.home + out.slice(1);
    out = out.split('${userHome}').join(ctx.home);
  }
  if (ctx.workspaceFolder) out = out.split('${workspaceFolder}').join(ctx.workspaceFolder);
  return out;
}

/** A models.toml name stays as it is; anything that looks like a path gets expanded. */
export function looksLikePath(value: string): boolean {
  return /[/\\]/.test(value) || value.startsWith('~') || /\.gguf$/i.test(value) || value.includes('${');
}

function str(v: unknown): string | null {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : null;
}

function int(v: unknown, lo: number, hi: number): number | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return null;
  return Math.min(hi, Math.max(lo, Math.round(v)));
}

function num(v: unknown, lo: number, hi: number): number | null {
  if (typeof v !== 'number' || !Number.isFinite(v)) return null;
  return Math.min(hi, Math.max(lo, v));
}

/** A whole number rounded and clamped into the range package.json gives `key`. */
function integer(key: ServerKey): (v: unknown) => number | null {
  const { minimum = -Infinity, maximum = Infinity } = contributed(key);
  return (v) => int(v, minimum, maximum);
}

/** A number clamped into the range package.json gives `key`. */
function number(key: ServerKey): (v: unknown) => number | null {
  const { minimum = -Infinity, maximum = Infinity } = contributed(key);
  return (v) => num(v, minimum, maximum);
}

/** One of the choices package.json lists for `key`. */
function choice(key: ServerKey): (v: unknown) => string | null {
  const options = contributed(key).enum ?? [];
  return (v) => (typeof v === 'string' && options.includes(v) ? v : null);
}

type Normalise = (v: unknown, ctx: PathContext) => unknown;

/** How each value is sent: bad values become `null` (= the server's default). */
const NORMALISE = {
  model: (v: unknown, ctx: PathContext) => {
    const model = str(v);
    return model && looksLikePath(model) ? expandPath(model, ctx) : model;
  },
  modelsFile: (v: unknown, ctx: PathContext) => {
    const file = str(v);
    return file ? expandPath(file, ctx) : null;
  },
  nGpuLayers: integer('nGpuLayers'),
  // 0 / unset: all cores (the server decides)
  threads: (v: unknown) => int(v, 0, contributed('threads').maximum ?? Infinity) || null,
  contextTokens: integer('contextTokens'),
  maxTokens: integer('maxTokens'),
  temperature: number('temperature'),
  enable: (v: unknown) => v !== false,
  idleUnloadMinutes: number('idleUnloadMinutes'),
  backend: choice('backend'),
  endpoint: str,
  apiKeyEnv: str,
  memoryPolicy: choice('memoryPolicy'),
  exclude: (v: unknown) => globs(v).map((g) => g.trim()),
  gitignore: (v: unknown) => v === true,
  completeAfterDeletion: (v: unknown) => v === true,
} satisfies { [K in ServerKey]: Normalise };

/** The `starcoder` section exactly as the server's settings.py reads it (camelCase). */
export type ServerSettings = { [K in ServerKey]: ReturnType<(typeof NORMALISE)[K]> };

/** Settings from VS Code → the server's settings object. Bad values become `null` (= default). */
export function toServerSettings(get: ConfigGet, ctx: PathContext = {}): ServerSettings {
  const out: Partial<Record<ServerKey, unknown>> = {};
  for (const key of SERVER_SETTING_KEYS) out[key] = NORMALISE[key](get(key), ctx);
  return out as ServerSettings;
}

/** A plain object (e.g. package.json defaults or a test fixture) as a ConfigGet. */
export function getterFor(values: Record<string, unknown>): ConfigGet {
  return (key) => values[key];
}

/** The settings `starcoder-lsp serve/doctor` also take as flags (the schema's `cli=True` fields). */
export const FLAG_KEYS = ['model', 'modelsFile', 'nGpuLayers', 'threads', 'contextTokens', 'maxTokens', 'backend', 'endpoint', 'apiKeyEnv'] as const satisfies readonly ServerKey[];

/** `--model X --threads 4 …` for the settings this editor sets (unset ones are left to the server). */
export function cliFlags(settings: Partial<ServerSettings>): string[] {
  const out: string[] = [];
  for (const key of FLAG_KEYS) {
    const value = settings[key];
    if (value === null || value === undefined || value === '') continue;
    out.push(`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(value));
  }
  return out;
}
