/**
 * "Install the server": what the extension decides when it sets up its own starcoder-lsp in a
 * private virtual environment under its global storage. Pure (no `vscode`; processes and file
 * checks are the caller's), so every decision is unit-tested; src/editor/install.ts runs it.
 *
 * The steps: a Python >= 3.11 with `venv` (PYTHON_CANDIDATES, probed with PROBE_SCRIPT), a fresh
 * venv (`python -m venv <storage>/server/venv-<time>`), `pip install` of the package from the
 * index or from `starcoder.server.installFrom` (a wheel, an sdist, a source folder: offline
 * installs), with llama.cpp built for this CPU or, when the user picks it, for CUDA / Metal
 * (CMAKE_ARGS); then `starcoder-lsp --version`, and `installed.json` names the venv. A venv that
 * did not finish is never named there, so it is never run; the previous one stays in use until the
 * new one works. pip's own environment (PIP_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX, …) is passed
 * through untouched.
 */

import * as path from 'node:path';
import type { ModelEntry } from './models';
import { looksLikePath } from './settings';
import { MIN_SERVER_VERSION } from './version';

export const PACKAGE = 'starcoder-lsp';
/** The oldest Python the package supports (pyproject.toml `requires-python`). */
export const MIN_PYTHON: readonly [number, number] = [3, 11];
/** The file in the install dir that names the working venv. */
export const MARKER = 'installed.json';
/** What takes long, said up front (DESIGN.md: ~6 minutes on 2 cores; pip keeps the wheel after). */
export const COMPILE_NOTE = 'compiling llama.cpp for this CPU, ~6 min, once';

export type Build = 'cpu' | 'cuda' | 'metal';

// --- where it comes from ------------------------------------------------------------------------

export type InstallSource =
  | { kind: 'index'; spec: string; label: string }
  | { kind: 'requirement'; spec: string; label: string }
  | { kind: 'file' | 'folder'; spec: string; label: string };

export interface SourceInput {
  /** `starcoder.server.installFrom`, from the user's own settings only (never a workspace's). */
  value: unknown;
  home?: string;
  platform: NodeJS.Platform;
  /** 'file' | 'dir' for what exists at an absolute path, undefined when nothing does. */
  kindOf: (p: string) => 'file' | 'dir' | undefined;
}

const REQUIREMENT = /^starcoder-lsp\s*(\[[\w,\s-]*\])?\s*((?:[<>=!~]=?|===)\s*[\w.*+!-]+\s*(?:,\s*(?:[<>=!~]=?|===)\s*[\w.*+!-]+\s*)*)?$/i;
const DIST_FILE = /\.(whl|tar\.gz|zip)$/i;

/**
 * What pip installs: the index's `starcoder-lsp>=MIN_SERVER_VERSION` when the setting is empty; a
 * local wheel / sdist / source folder (`~` and `${userHome}` expanded, absolute, must exist); or a
 * requirement on this package only (`starcoder-lsp==0.2.0`). Anything else is refused with a message
 * (the setting can never make pip install some other package).
 */
export function installSource(input: SourceInput): { ok: true; source: InstallSource } | { ok: false; message: string } {
  const raw = typeof input.value === 'string' ? input.value.trim() : '';
  if (!raw) {
    const spec = `${PACKAGE}>=${MIN_SERVER_VERSION}`;
    return { ok: true, source: { kind: 'index', spec, label: `${spec} from the package index` } };
  }
  if (REQUIREMENT.test(raw)) return { ok: true, source: { kind: 'requirement', spec: raw, label: `${raw} from the package index` } };
  const p = input.platform === 'win32' ? path.win32 : path.posix;
  let file = raw;
  if (input.home) {
    if (file === '~' || file.startsWith('~/') || file.startsWith('~\\')) file = input.home + file.slice(1);
    file = file.split('${userHome}').join(input.home);
  }
  const setting = `starcoder.server.installFrom ("${raw}")`;
  if (!p.isAbsolute(file)) {
    return { ok: false, message: `${setting} must be an absolute path to a starcoder-lsp wheel, sdist or source folder, or a requirement such as "starcoder-lsp==${MIN_SERVER_VERSION}".` };
  }
  const kind = input.kindOf(file);
  if (kind === 'file' && DIST_FILE.test(file)) return { ok: true, source: { kind: 'file', spec: file, label: p.basename(file) } };
  if (kind === 'dir') return { ok: true, source: { kind: 'folder', spec: file, label: `the source folder ${file}` } };
  if (kind === 'file') return { ok: false, message: `${setting} is not a wheel (.whl) or an sdist (.tar.gz, .zip).` };
  return { ok: false, message: `${setting}: no such file or folder.` };
}

// --- which Python ---------------------------------------------------------------------------------

/** Interpreters tried, in order: the one a user calls `python3` first, then the newest. */
export function pythonCandidates(platform: NodeJS.Platform): string[] {
  return platform === 'win32'
    ? ['python', 'python3', 'python3.13', 'python3.12', 'python3.11']
    : ['python3', 'python3.13', 'python3.12', 'python3.11', 'python'];
}

/** Run with `python -c`: prints one JSON line (version, the real executable, venv/ensurepip present). */
export const PROBE_SCRIPT = [
  'import json, sys',
  'r = {"version": list(sys.version_info[:3]), "executable": sys.executable}',
  'for m in ("venv", "ensurepip"):',
  '    try:',
  '        __import__(m); r[m] = True',
  '    except Exception:',
  '        r[m] = False',
  'print(json.dumps(r))',
].join('\n');

export interface PythonProbe {
  /** What was run (a PATH name's full path). */
  command: string;
  /** PROBE_SCRIPT's stdout, or undefined when it did not run. */
  stdout?: string;
  error?: string;
}

export interface PythonInfo { executable: string; version: string; command: string }

function parseProbe(stdout: string | undefined): { version: number[]; executable: string; venv: boolean; ensurepip: boolean } | undefined {
  if (!stdout) return undefined;
  try {
    const r = JSON.parse(stdout.trim().split(/\r?\n/).pop() ?? '') as Record<string, unknown>;
    const version = Array.isArray(r.version) ? r.version.filter((n): n is number => typeof n === 'number') : [];
    if (version.length < 2 || typeof r.executable !== 'string') return undefined;
    return { version, executable: r.executable || '', venv: r.venv === true, ensurepip: r.ensurepip === true };
  } catch {
    return undefined;
  }
}

/** The first probed Python that is new enough and can make a venv, or why there is none. */
export function choosePython(probes: PythonProbe[], platform: NodeJS.Platform): { ok: true; python: PythonInfo } | { ok: false; message: string } {
  const seen: string[] = [];
  let noVenv: string | undefined;
  for (const probe of probes) {
    const r = parseProbe(probe.stdout);
    if (!r) continue;
    const version = r.version.join('.');
    const [major, minor] = r.version;
    if (major < MIN_PYTHON[0] || (major === MIN_PYTHON[0] && minor < MIN_PYTHON[1])) {
      seen.push(`${probe.command} is ${version}`);
      continue;
    }
    if (!r.venv || !r.ensurepip) {
      seen.push(`${probe.command} (${version}) has no venv/ensurepip module`);
      noVenv ??= `${major}.${minor}`;
      continue;
    }
    return { ok: true, python: { executable: r.executable || probe.command, version, command: probe.command } };
  }
  const want = `${MIN_PYTHON.join('.')} or newer`;
  const found = seen.length ? ` Found: ${seen.join('; ')}.` : ' None was found on PATH.';
  const how = platform === 'darwin'
    ? 'Install one from python.org or with `brew install python@3.12`'
    : platform === 'win32'
      ? 'Install one from python.org (tick "Add python.exe to PATH")'
      : noVenv
        ? `Install its venv module (Debian/Ubuntu: \`sudo apt install python${noVenv}-venv\`) or another Python`
        : 'Install one with your package manager (e.g. `sudo apt install python3.11 python3.11-venv`) or from python.org';
  return { ok: false, message: `Installing the server needs Python ${want} with its venv module.${found} ${how}, then run "StarCoder: Install Server" again.` };
}

// --- GPU ------------------------------------------------------------------------------------------

export interface GpuInput {
  platform: NodeJS.Platform;
  arch: string;
  /** A program's full path on PATH, or undefined. */
  which: (name: string) => string | undefined;
  /** True when a file exists (the CUDA toolkit's default place). */
  exists: (file: string) => boolean;
}

export interface GpuOffer {
  build: Exclude<Build, 'cpu'>;
  /** The question, e.g. "An NVIDIA GPU was found (nvidia-smi). Build llama.cpp with CUDA?" */
  question: string;
  /** A caveat to show with it ('' when none). */
  caveat: string;
}

/** A GPU build to offer: CUDA when nvidia-smi is on PATH, Metal on Apple Silicon; else none. */
export function gpuOffer(input: GpuInput): GpuOffer | undefined {
  if (input.platform === 'darwin' && input.arch === 'arm64') {
    return { build: 'metal', question: 'This Mac has Apple Silicon. Build llama.cpp with Metal (the GPU)?', caveat: '' };
  }
  if (input.which('nvidia-smi')) {
    const nvcc = input.which('nvcc') ?? ['/usr/local/cuda/bin/nvcc', '/opt/cuda/bin/nvcc'].find((f) => input.exists(f));
    return {
      build: 'cuda',
      question: 'An NVIDIA GPU was found (nvidia-smi). Build llama.cpp with CUDA?',
      caveat: nvcc ? 'The CUDA build compiles longer (~10-20 min, once).'
        : 'The CUDA build needs the CUDA toolkit, and nvcc was not found (on PATH or in /usr/local/cuda/bin): it may fail; the CPU build always works.',
    };
  }
  return undefined;
}

/** llama.cpp's CMake flags for a build (CMAKE_ARGS for llama-cpp-python's build). */
export function cmakeArgs(build: Build, platform: NodeJS.Platform, arch: string): string {
  const flags: string[] = [];
  if (build === 'cuda') flags.push('-DGGML_CUDA=on');
  if (build === 'metal') flags.push('-DGGML_METAL=on');
  // As the Makefile builds it: llama.cpp's AMX matmul crashes on Sapphire Rapids-class CPUs
  // (llama.cpp#20824); an explicit -mno-* wins over -march=native with GCC and Clang.
  if (platform === 'linux' && arch === 'x64') {
    const noAmx = '-mno-amx-tile -mno-amx-int8 -mno-amx-bf16';
    flags.push(`-DCMAKE_C_FLAGS="${noAmx}"`, `-DCMAKE_CXX_FLAGS="${noAmx}"`);
  }
  return flags.join(' ');
}

/** What the progress notification says while llama.cpp compiles. */
export function compileNote(build: Build): string {
  if (build === 'cuda') return 'compiling llama.cpp with CUDA, ~10-20 min, once';
  if (build === 'metal') return 'compiling llama.cpp with Metal, ~5 min, once';
  return COMPILE_NOTE;
}

// --- the commands ---------------------------------------------------------------------------------

export function venvBin(venv: string, name: string, platform: NodeJS.Platform): string {
  return platform === 'win32' ? path.win32.join(venv, 'Scripts', `${name}.exe`) : path.posix.join(venv, 'bin', name);
}

/** A new venv's folder in the install dir: never the one in use, so a failed install harms nothing. */
export function newVenvDir(installDir: string, now: Date, platform: NodeJS.Platform): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
  return (platform === 'win32' ? path.win32 : path.posix).join(installDir, `venv-${stamp}`);
}

export interface PipPlan {
  args: string[];
  /** Added to the environment (only what is not already set there: the user's own values win). */
  env: Record<string, string>;
}

/**
 * `python -m pip install …` and its environment. A GPU build skips pip's cache: pip caches the
 * llama-cpp-python wheel it built by source, not by CMAKE_ARGS, so a cached CPU wheel would be
 * reused for a CUDA install (and the GPU wheel must not be reused for a CPU one).
 */
export function pipPlan(source: InstallSource, build: Build, platform: NodeJS.Platform, arch: string, env: Record<string, string | undefined>, cores: number): PipPlan {
  const args = ['-m', 'pip', 'install', '--progress-bar', 'off'];
  if (build !== 'cpu') args.push('--no-cache-dir');
  args.push(source.spec);
  const extra: Record<string, string> = {};
  const cmake = cmakeArgs(build, platform, arch);
  if (cmake && !env.CMAKE_ARGS) extra.CMAKE_ARGS = cmake;
  if (!env.CMAKE_BUILD_PARALLEL_LEVEL) extra.CMAKE_BUILD_PARALLEL_LEVEL = String(Math.max(1, cores));
  if (!env.PIP_DISABLE_PIP_VERSION_CHECK) extra.PIP_DISABLE_PIP_VERSION_CHECK = '1';
  // pip writes its output unbuffered to a pipe only when told.
  if (!env.PYTHONUNBUFFERED) extra.PYTHONUNBUFFERED = '1';
  return { args, env: extra };
}

/**
 * The pip settings in the environment, for the log (so an offline install says where it looked);
 * a user name or password in an index URL is masked, and values of *PASSWORD / *TOKEN keys too.
 */
export function pipEnvironment(env: Record<string, string | undefined>): string[] {
  return Object.keys(env).filter((k) => /^PIP_|^CMAKE_ARGS$/.test(k)).sort().map((k) => {
    const value = env[k] ?? '';
    if (/PASSWORD|TOKEN|SECRET|KEY$/i.test(k)) return `${k}=***`;
    return `${k}=${value.replace(/(\w+:\/\/)[^/@\s]+@/g, '$1***@')}`;
  });
}

// --- progress -------------------------------------------------------------------------------------

export type Phase = 'resolve' | 'download' | 'prepare' | 'compile' | 'build' | 'install' | 'done';

/** One line of pip's output → the phase it starts and what to say, or undefined. */
export function pipPhase(line: string, build: Build): { phase: Phase; message: string } | undefined {
  const l = line.trim();
  let m: RegExpExecArray | null;
  if ((m = /^Building wheels? for (llama[-_]cpp[-_]python)\b/i.exec(l)) || /^Building wheels for collected packages:.*llama[-_]cpp[-_]python/i.test(l)) {
    return { phase: 'compile', message: compileNote(build) };
  }
  if ((m = /^Building wheels? for ([\w.-]+)/i.exec(l))) return { phase: 'build', message: `building ${m[1]}` };
  if (/^(Installing build dependencies|Getting requirements to build wheel|Preparing metadata)/i.test(l)) {
    return { phase: 'prepare', message: 'preparing a build from source' };
  }
  if ((m = /^Downloading (?:https?:\/\/\S+\/)?([\w.+-]+?)(?:-\d[\w.+!-]*)?(?:\.tar\.gz|\.whl|\.zip)?(?:\s+\(([^)]+)\))?$/i.exec(l))) {
    return { phase: 'download', message: `downloading ${m[1]}${m[2] ? ` (${m[2]})` : ''}` };
  }
  if ((m = /^(?:Collecting|Processing) (\S+)/i.exec(l))) {
    const name = m[1].split(/[\\/]/).pop() ?? m[1];
    return { phase: 'resolve', message: `collecting ${name.replace(/[<>=!~;[].*$/, '')}` };
  }
  if (/^Installing collected packages:/i.test(l)) return { phase: 'install', message: 'installing the packages' };
  if (/^Successfully installed\b/i.test(l)) return { phase: 'done', message: 'installed' };
  return undefined;
}

/** Why pip failed, in a sentence, from its last lines. */
export function pipFailure(lines: string[], build: Build, source: InstallSource): string {
  const text = lines.join('\n');
  const errors = lines.map((l) => l.trim()).filter((l) => /^ERROR:/.test(l)).map((l) => l.replace(/^ERROR:\s*/, ''));
  if (/Failed (building|to build).*llama[-_]cpp[-_]python|llama[-_]cpp[-_]python.*(did not run successfully|failed)|CMake Error/i.test(text)) {
    const gpu = build === 'cuda' ? ' The CUDA build needs the CUDA toolkit (nvcc); "StarCoder: Reinstall Server" can choose the CPU build.' : '';
    return `llama.cpp did not compile. It needs a C/C++ compiler (Linux: \`sudo apt install build-essential\`; macOS: \`xcode-select --install\`; Windows: Visual Studio Build Tools).${gpu}`;
  }
  const noMatch = errors.find((e) => /No matching distribution/i.test(e)) ?? errors.find((e) => /Could not find a version/i.test(e));
  if (noMatch) {
    const where = source.kind === 'index' || source.kind === 'requirement' ? 'the package index' : 'the index or PIP_FIND_LINKS';
    return `pip could not find a package in ${where}: ${noMatch} (offline: put the wheels in a folder and set PIP_FIND_LINKS and PIP_NO_INDEX=1 where VS Code starts)`;
  }
  const last = errors.pop() ?? lines.map((l) => l.trim()).filter(Boolean).pop();
  return last ? `pip failed: ${last}` : 'pip failed (see the StarCoder log)';
}

// --- the model -----------------------------------------------------------------------------------

/**
 * The catalogue model to pull after an install: the configured one (or the catalogue's default when
 * none is set) when it is not on disk. A `.gguf` path is never pulled (the server reports a missing
 * file), nor an unknown name (the server says so, with its fix).
 */
export function modelToPull(model: string | null | undefined, entries: ModelEntry[]): ModelEntry | undefined {
  if (model && looksLikePath(model)) return undefined;
  const entry = entries.find((e) => (model ? e.name === model : e.isDefault));
  return entry && !entry.downloaded ? entry : undefined;
}

// --- the record of what is installed ----------------------------------------------------------------

export interface Installed {
  /** The venv's folder (absolute). */
  venv: string;
  /** `starcoder-lsp --version` of what was installed. */
  version: string;
  /** What pip installed (InstallSource.spec). */
  from: string;
  build: Build;
  python: string;
  installedAt: string;
}

export function parseInstalled(text: string | undefined): Installed | undefined {
  if (!text) return undefined;
  try {
    const r = JSON.parse(text) as Partial<Installed>;
    if (typeof r.venv !== 'string' || !r.venv || typeof r.version !== 'string') return undefined;
    const build: Build = r.build === 'cuda' || r.build === 'metal' ? r.build : 'cpu';
    return { venv: r.venv, version: r.version, from: String(r.from ?? ''), build, python: String(r.python ?? ''), installedAt: String(r.installedAt ?? '') };
  } catch {
    return undefined;
  }
}

/** `starcoder-lsp 0.1.0` → `0.1.0`. */
export function parseVersionOutput(stdout: string): string | undefined {
  const m = /starcoder-lsp\s+v?(\d[\w.+!-]*)/.exec(stdout);
  return m?.[1];
}

/** "1:05" for 65 s: how long the slow step has run. */
export function elapsed(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
