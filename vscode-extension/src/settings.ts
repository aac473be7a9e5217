/**
 * Settings → what the server receives (initializationOptions, `workspace/configuration` answers and
 * `workspace/didChangeConfiguration` pushes all carry the same object).
 *
 * Pure: no `vscode` import, so it is unit-tested under plain Node. The server treats `null` as
 * "reset to the default", so every key is always sent — clearing a setting in VS Code must undo it.
 */

export const SECTION = 'starcoder';
export const MAX_CONTEXT_TOKENS = 8192;
export const MIN_CONTEXT_TOKENS = 256;
export const BACKENDS = ['local', 'llama-server', 'openai'] as const;
export type Backend = (typeof BACKENDS)[number];

/** The `starcoder` section exactly as the server's settings.py reads it (camelCase). */
export interface ServerSettings {
  model: string | null;
  modelsFile: string | null;
  nGpuLayers: number | null;
  threads: number | null;
  contextTokens: number | null;
  maxTokens: number | null;
  temperature: number | null;
  enable: boolean;
  idleUnloadMinutes: number | null;
  backend: Backend | null;
  endpoint: string | null;
  apiKeyEnv: string | null;
  exclude: string[];
  gitignore: boolean;
}

/** Every key the server understands; package.json must contribute `starcoder.<key>` for each. */
export const SERVER_SETTING_KEYS: readonly (keyof ServerSettings)[] = [
  'model', 'modelsFile', 'nGpuLayers', 'threads', 'contextTokens', 'maxTokens', 'temperature',
  'enable', 'idleUnloadMinutes', 'backend', 'endpoint', 'apiKeyEnv', 'exclude', 'gitignore',
];

/**
 * Settings a cloned repository must never choose, even in a trusted workspace: where code and keys
 * go, which catalogue file is read, which program runs. Only the user's own value counts (they are
 * `machine`-scoped in package.json, which VS Code enforces; this reader enforces it again).
 */
export const USER_ONLY_KEYS: readonly string[] = [
  'backend', 'endpoint', 'apiKeyEnv', 'modelsFile', 'server.path', 'server.pythonPath', 'server.args',
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

/** Settings from VS Code → the server's settings object. Bad values become `null` (= default). */
export function toServerSettings(get: ConfigGet, ctx: PathContext = {}): ServerSettings {
  const model = str(get('model'));
  const modelsFile = str(get('modelsFile'));
  const backend = get('backend');
  const threads = int(get('threads'), 0, 1024);
  return {
    model: model && looksLikePath(model) ? expandPath(model, ctx) : model,
    modelsFile: modelsFile ? expandPath(modelsFile, ctx) : null,
    nGpuLayers: int(get('nGpuLayers'), -1, 10_000),
    threads: threads ? threads : null, // 0 / unset: all cores (the server decides)
    contextTokens: int(get('contextTokens'), MIN_CONTEXT_TOKENS, MAX_CONTEXT_TOKENS),
    maxTokens: int(get('maxTokens'), 1, 4096),
    temperature: num(get('temperature'), 0, 2),
    enable: get('enable') !== false,
    idleUnloadMinutes: num(get('idleUnloadMinutes'), 0, 7 * 24 * 60),
    backend: BACKENDS.includes(backend as Backend) ? (backend as Backend) : null,
    endpoint: str(get('endpoint')),
    apiKeyEnv: str(get('apiKeyEnv')),
    exclude: globs(get('exclude')).map((g) => g.trim()),
    gitignore: get('gitignore') === true,
  };
}

/** A plain object (e.g. package.json defaults or a test fixture) as a ConfigGet. */
export function getterFor(values: Record<string, unknown>): ConfigGet {
  return (key) => values[key];
}
