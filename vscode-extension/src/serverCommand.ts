/**
 * Which program runs the server. Pure (file checks are injected), so every branch is unit-tested.
 *
 * Order, first hit wins:
 *   1. `starcoder.server.path`        — an explicit `starcoder-lsp` executable;
 *   2. `starcoder.server.pythonPath`  — an interpreter that has the package: `python -m lsp_server`;
 *   3. a virtual environment in a workspace folder (`.venv/`, `venv/`; trusted workspaces only);
 *   4. the server the extension installed itself ("StarCoder: Install Server", src/install.ts);
 *   5. `starcoder-lsp` on PATH, then `~/.local/bin` (pipx / `pip install --user`).
 * An explicit setting that does not point at a program is an error, never silently skipped.
 */

import * as path from 'node:path';

export const EXECUTABLE = 'starcoder-lsp';
export const PYTHON_MODULE = 'lsp_server';
const VENV_DIRS = ['.venv', 'venv'];

export type LauncherSource = 'setting' | 'python' | 'workspace-venv' | 'managed' | 'path';

/** A way to run the CLI: `command ...prefixArgs <subcommand...>`. */
export interface Launcher {
  command: string;
  prefixArgs: string[];
  source: LauncherSource;
}

export interface ResolveInput {
  serverPath?: string;
  pythonPath?: string;
  workspaceFolders: string[];
  /** The PATH environment variable. */
  envPath?: string;
  platform: NodeJS.Platform;
  /** Workspace trust: an untrusted folder's venv is never executed. */
  trusted: boolean;
  home?: string;
  /** The `starcoder-lsp` of the extension's own venv, when it installed one (src/install.ts). */
  managedServer?: string;
  /** True when `file` exists and is an executable regular file. */
  isExecutable: (file: string) => boolean;
}

export type Resolution =
  | { ok: true; launcher: Launcher }
  | { ok: false; reason: 'not-found' | 'bad-setting'; message: string; tried: string[] };

function pathApi(platform: NodeJS.Platform): path.PlatformPath {
  return platform === 'win32' ? path.win32 : path.posix;
}

function executableNames(base: string, platform: NodeJS.Platform): string[] {
  return platform === 'win32' ? [`${base}.exe`, `${base}.cmd`, `${base}.bat`, base] : [base];
}

function expandHome(p: string, home: string | undefined): string {
  const t = p.trim();
  if (home && (t === '~' || t.startsWith('~/') || t.startsWith('~\\'))) return home + t.slice(1);
  return t;
}

/** Look `name` up on PATH the way a shell would. */
export function whichOnPath(name: string, input: Pick<ResolveInput, 'envPath' | 'platform' | 'isExecutable'>): string | undefined {
  const p = pathApi(input.platform);
  const sep = input.platform === 'win32' ? ';' : ':';
  for (const dir of (input.envPath ?? '').split(sep)) {
    if (!dir) continue;
    for (const candidate of executableNames(name, input.platform)) {
      const full = p.join(dir, candidate);
      if (input.isExecutable(full)) return full;
    }
  }
  return undefined;
}

/** A program setting: absolute/relative paths are checked, a bare name is looked up on PATH. */
function resolveProgram(value: string, input: ResolveInput): string | undefined {
  const p = pathApi(input.platform);
  const expanded = expandHome(value, input.home)
    .split('${workspaceFolder}').join(input.workspaceFolders[0] ?? '')
    .split('${userHome}').join(input.home ?? '');
  const hasDir = /[/\\]/.test(expanded);
  if (!hasDir) return whichOnPath(expanded, input);
  const full = p.isAbsolute(expanded) || !input.workspaceFolders[0]
    ? expanded
    : p.join(input.workspaceFolders[0], expanded);
  return input.isExecutable(full) ? full : undefined;
}

export function venvCandidates(folder: string, platform: NodeJS.Platform): string[] {
  const p = pathApi(platform);
  const bin = platform === 'win32' ? 'Scripts' : 'bin';
  const names = platform === 'win32' ? [`${EXECUTABLE}.exe`] : [EXECUTABLE];
  return VENV_DIRS.flatMap((venv) => names.map((n) => p.join(folder, venv, bin, n)));
}

export function resolveServerCommand(input: ResolveInput): Resolution {
  const tried: string[] = [];
  const serverPath = input.serverPath?.trim();
  if (serverPath) {
    const found = resolveProgram(serverPath, input);
    if (found) return { ok: true, launcher: { command: found, prefixArgs: [], source: 'setting' } };
    return {
      ok: false,
      reason: 'bad-setting',
      tried: [serverPath],
      message: `starcoder.server.path is set to "${serverPath}", which is not an executable file.`,
    };
  }
  const pythonPath = input.pythonPath?.trim();
  if (pythonPath) {
    const found = resolveProgram(pythonPath, input);
    if (found) {
      return { ok: true, launcher: { command: found, prefixArgs: ['-m', PYTHON_MODULE], source: 'python' } };
    }
    return {
      ok: false,
      reason: 'bad-setting',
      tried: [pythonPath],
      message: `starcoder.server.pythonPath is set to "${pythonPath}", which is not an executable file.`,
    };
  }
  if (input.trusted) {
    for (const folder of input.workspaceFolders) {
      for (const candidate of venvCandidates(folder, input.platform)) {
        tried.push(candidate);
        if (input.isExecutable(candidate)) {
          return { ok: true, launcher: { command: candidate, prefixArgs: [], source: 'workspace-venv' } };
        }
      }
    }
  }
  if (input.managedServer) {
    tried.push(input.managedServer);
    if (input.isExecutable(input.managedServer)) {
      return { ok: true, launcher: { command: input.managedServer, prefixArgs: [], source: 'managed' } };
    }
  }
  tried.push(`${EXECUTABLE} on PATH`);
  const onPath = whichOnPath(EXECUTABLE, input);
  if (onPath) return { ok: true, launcher: { command: onPath, prefixArgs: [], source: 'path' } };
  if (input.home) {
    const p = pathApi(input.platform);
    for (const name of executableNames(EXECUTABLE, input.platform)) {
      const candidate = p.join(input.home, '.local', 'bin', name);
      tried.push(candidate);
      if (input.isExecutable(candidate)) {
        return { ok: true, launcher: { command: candidate, prefixArgs: [], source: 'path' } };
      }
    }
  }
  return {
    ok: false,
    reason: 'not-found',
    tried,
    message:
      `The ${EXECUTABLE} language server was not found` +
      (input.trusted ? '' : ' (workspace virtual environments are ignored in an untrusted workspace)') +
      '. Install it ("StarCoder: Install Server" sets it up in a private environment) or set starcoder.server.path.',
  };
}

/** The full argv for a sub-command, e.g. `['serve', '-v']` or `['models', 'list']`. */
export function commandLine(launcher: Launcher, subcommand: string[], extraArgs: string[] = []): { command: string; args: string[] } {
  return { command: launcher.command, args: [...launcher.prefixArgs, ...subcommand, ...extraArgs] };
}
