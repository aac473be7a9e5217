/**
 * "StarCoder: Install Server" / "Reinstall Server" / "Update Server": sets up starcoder-lsp in a
 * private venv under the extension's global storage, with a cancellable progress notification and
 * pip's output in the StarCoder log. The decisions (which Python, what to install, which build,
 * what pip's lines mean) are src/install.ts's; this file runs the processes and asks the user.
 */

import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  MARKER, PACKAGE, PROBE_SCRIPT, choosePython, elapsed, gpuOffer, installSource, newVenvDir, parseInstalled,
  parseVersionOutput, pipEnvironment, pipFailure, pipPhase, pipPlan, pythonCandidates, venvBin,
  type Build, type Installed, type Phase, type PythonProbe,
} from '../install';
import { whichOnPath } from '../serverCommand';

/** Rough share of the bar each phase has reached when it starts (pip prints no totals). */
const PHASE_PERCENT: Record<Phase, number> = { resolve: 10, download: 20, prepare: 25, compile: 30, build: 30, install: 85, done: 95 };
const TICK_MS = 5000;

function isExecutable(file: string): boolean {
  try {
    if (!fs.statSync(file).isFile()) return false;
    if (process.platform !== 'win32') fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function kindOf(p: string): 'file' | 'dir' | undefined {
  try {
    const st = fs.statSync(p);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : undefined;
  } catch {
    return undefined;
  }
}

class Cancelled extends Error {}

interface Run { code: number | null; lines: string[] }

/**
 * Run a program, each output line to `onLine`; cancelling kills it and everything it started (pip
 * runs CMake and the compiler as children: on POSIX it gets its own process group).
 */
function run(command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; token?: vscode.CancellationToken; onLine?: (line: string) => void }): Promise<Run> {
  return new Promise((resolve, reject) => {
    const posix = process.platform !== 'win32';
    const child = spawn(command, args, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'], detached: posix, windowsHide: true });
    const lines: string[] = [];
    let cancelled = false;
    const kill = (signal: NodeJS.Signals) => {
      if (child.pid === undefined || child.exitCode !== null) return;
      try {
        if (posix) process.kill(-child.pid, signal);
        else spawn('taskkill', ['/pid', String(child.pid), '/T', '/F'], { windowsHide: true });
      } catch {
        // already gone
      }
    };
    const sub = opts.token?.onCancellationRequested(() => {
      cancelled = true;
      kill('SIGTERM');
      setTimeout(() => kill('SIGKILL'), 5000).unref();
    });
    const feed = (stream: NodeJS.ReadableStream) => {
      let rest = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const parts = (rest + chunk).split(/\r?\n|\r/);
        rest = parts.pop() ?? '';
        for (const line of parts) {
          lines.push(line);
          if (lines.length > 400) lines.shift();
          opts.onLine?.(line);
        }
      });
      stream.on('end', () => {
        if (rest) {
          lines.push(rest);
          opts.onLine?.(rest);
        }
      });
    };
    feed(child.stdout);
    feed(child.stderr);
    child.on('error', (err) => {
      sub?.dispose();
      reject(err);
    });
    child.on('close', (code) => {
      sub?.dispose();
      if (cancelled) reject(new Cancelled('cancelled'));
      else resolve({ code, lines });
    });
  });
}

function probe(command: string): Promise<PythonProbe> {
  return new Promise((resolve) => {
    execFile(command, ['-c', PROBE_SCRIPT], { timeout: 20_000, windowsHide: true }, (err, stdout, stderr) => {
      resolve(err ? { command, error: String(stderr || err.message) } : { command, stdout: String(stdout) });
    });
  });
}

export interface InstallRequest {
  /** `starcoder.server.installFrom` as the user's own settings give it. */
  installFrom: unknown;
  /** Says why, in the progress title: "installing", "updating", "reinstalling". */
  verb: 'installing' | 'updating' | 'reinstalling';
  /** Each step, for the status bar. */
  onStep?: (message: string) => void;
}

export class ServerInstaller {
  private busy: Promise<Installed | undefined> | undefined;

  /** `dir`: the extension's global storage folder; the venvs and installed.json go in `dir/server`. */
  constructor(dir: string, private readonly log: vscode.LogOutputChannel) {
    this.dir = path.join(dir, 'server');
  }

  readonly dir: string;

  get installing(): boolean {
    return this.busy !== undefined;
  }

  /** What the last install that worked left, if it is still there. */
  installed(): Installed | undefined {
    try {
      return parseInstalled(fs.readFileSync(path.join(this.dir, MARKER), 'utf8'));
    } catch {
      return undefined;
    }
  }

  /** The installed `starcoder-lsp`, when there is one (serverCommand.ts checks it is executable). */
  executable(): string | undefined {
    const installed = this.installed();
    return installed ? venvBin(installed.venv, PACKAGE, process.platform) : undefined;
  }

  /** One install at a time: a second request while one runs waits for it. */
  install(request: InstallRequest): Promise<Installed | undefined> {
    this.busy ??= this.doInstall(request).finally(() => (this.busy = undefined));
    return this.busy;
  }

  private async doInstall(request: InstallRequest): Promise<Installed | undefined> {
    const source = installSource({ value: request.installFrom, home: os.homedir(), platform: process.platform, kindOf });
    if (!source.ok) {
      this.log.error(source.message);
      const pick = await vscode.window.showErrorMessage(`StarCoder: ${source.message}`, 'Open Settings');
      if (pick) await vscode.commands.executeCommand('workbench.action.openSettings', 'starcoder.server.installFrom');
      return undefined;
    }
    const python = await this.findPython();
    if (!python) return undefined;
    const build = await this.chooseBuild();
    if (!build) return undefined;
    const title = `StarCoder: ${request.verb} the server (${source.source.label}${build === 'cpu' ? '' : `, ${build.toUpperCase()} build`})`;
    this.log.info(`${title}; Python ${python.version} at ${python.executable}; into ${this.dir}`);
    const envLines = pipEnvironment(process.env);
    if (envLines.length) this.log.info(`pip settings from the environment: ${envLines.join(' ')}`);
    const venv = newVenvDir(this.dir, new Date(), process.platform);
    const started = Date.now();
    try {
      const result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title, cancellable: true },
        async (progress, token) => {
          let percent = 0;
          const step = (message: string, target?: number) => {
            const increment = target !== undefined && target > percent ? target - percent : undefined;
            if (increment !== undefined) percent = target ?? percent;
            progress.report({ message, increment });
            request.onStep?.(message);
          };
          step(`creating a Python ${python.version} environment…`, 3);
          fs.mkdirSync(this.dir, { recursive: true });
          const made = await run(python.executable, ['-m', 'venv', venv], { token, onLine: (l) => this.log.info(`venv: ${l}`) });
          if (made.code !== 0) throw new Error(`\`${python.executable} -m venv\` failed: ${made.lines.filter(Boolean).pop() ?? `exit ${made.code}`}`);
          step('collecting packages…', 5);
          const plan = pipPlan(source.source, build, process.platform, process.arch, process.env, os.cpus().length);
          if (Object.keys(plan.env).length) this.log.info(`environment for pip: ${Object.entries(plan.env).map(([k, v]) => `${k}=${v}`).join(' ')}`);
          const pythonExe = venvBin(venv, 'python', process.platform);
          this.log.info(`running ${pythonExe} ${plan.args.join(' ')}`);
          let phaseMessage = '';
          let phaseStart = Date.now();
          let slow = false;
          const timer = setInterval(() => {
            if (slow) step(`${phaseMessage} (${elapsed(Date.now() - phaseStart)} so far)…`);
          }, TICK_MS);
          let pip: Run;
          try {
            pip = await run(pythonExe, plan.args, {
              env: { ...process.env, ...plan.env },
              token,
              onLine: (line) => {
                if (line.trim()) this.log.info(`pip: ${line}`);
                const p = pipPhase(line, build);
                if (!p) return;
                if (p.phase === 'compile' && !slow) {
                  slow = true;
                  phaseStart = Date.now();
                } else if (p.phase !== 'compile' && p.phase !== 'resolve' && p.phase !== 'download' && p.phase !== 'prepare') {
                  slow = false;
                }
                phaseMessage = p.message;
                step(`${p.message}…`, PHASE_PERCENT[p.phase]);
              },
            });
          } finally {
            clearInterval(timer);
          }
          if (pip.code !== 0) throw new Error(pipFailure(pip.lines, build, source.source));
          step('checking the installed server…', 97);
          const exe = venvBin(venv, PACKAGE, process.platform);
          const check = await run(exe, ['--version'], { token });
          const version = parseVersionOutput(check.lines.join('\n'));
          if (check.code !== 0 || !version) throw new Error(`the installed ${exe} --version failed: ${check.lines.filter(Boolean).pop() ?? `exit ${check.code}`}`);
          const installed: Installed = {
            venv, version, from: source.source.spec, build, python: python.executable, installedAt: new Date().toISOString(),
          };
          fs.writeFileSync(path.join(this.dir, `${MARKER}.tmp`), JSON.stringify(installed, null, 2));
          fs.renameSync(path.join(this.dir, `${MARKER}.tmp`), path.join(this.dir, MARKER));
          step(`starcoder-lsp ${version} installed`, 100);
          return installed;
        },
      );
      this.log.info(`installed starcoder-lsp ${result.version} into ${venv} in ${elapsed(Date.now() - started)} (${build} build)`);
      return result;
    } catch (err) {
      fs.rmSync(venv, { recursive: true, force: true });
      if (err instanceof Cancelled) {
        this.log.warn('installing the server was cancelled; nothing was kept');
        void vscode.window.showInformationMessage('StarCoder: the server install was cancelled.');
        return undefined;
      }
      const message = err instanceof Error ? err.message : String(err);
      this.log.error(`installing the server failed after ${elapsed(Date.now() - started)}: ${message}`);
      void vscode.window.showErrorMessage(`StarCoder: installing the server failed: ${message}`, 'Show Log', 'Retry').then((pick) => {
        if (pick === 'Show Log') this.log.show(true);
        else if (pick === 'Retry') void vscode.commands.executeCommand('starcoder.reinstallServer');
      });
      return undefined;
    }
  }

  private async findPython(): Promise<{ executable: string; version: string } | undefined> {
    const seen = new Set<string>();
    const probes: PythonProbe[] = [];
    for (const name of pythonCandidates(process.platform)) {
      const full = whichOnPath(name, { envPath: process.env.PATH, platform: process.platform, isExecutable });
      if (!full || seen.has(full)) continue;
      seen.add(full);
      const result = await probe(full);
      probes.push(result);
      const chosen = choosePython([result], process.platform);
      if (chosen.ok) {
        this.log.info(`Python for the server: ${chosen.python.executable} (${chosen.python.version}, found as ${full})`);
        return chosen.python;
      }
    }
    const none = choosePython(probes, process.platform);
    if (none.ok) return none.python;
    this.log.error(none.message);
    const pick = await vscode.window.showErrorMessage(`StarCoder: ${none.message}`, 'Get Python');
    if (pick) await vscode.env.openExternal(vscode.Uri.parse('https://www.python.org/downloads/'));
    return undefined;
  }

  /** CPU, or the GPU build the machine has, as the user picks (undefined: they dismissed the question). */
  private async chooseBuild(): Promise<Build | undefined> {
    const offer = gpuOffer({
      platform: process.platform,
      arch: process.arch,
      which: (name) => whichOnPath(name, { envPath: process.env.PATH, platform: process.platform, isExecutable }),
      exists: (f) => kindOf(f) === 'file',
    });
    if (!offer) return 'cpu';
    const gpu = offer.build === 'cuda' ? 'CUDA Build' : 'Metal Build';
    const pick = await vscode.window.showInformationMessage(
      `StarCoder: ${offer.question}${offer.caveat ? ` ${offer.caveat}` : ''}`, gpu, 'CPU Build');
    if (pick === gpu) return offer.build;
    if (pick === 'CPU Build') return 'cpu';
    return undefined;
  }

  /**
   * Remove our venvs that installed.json no longer names (call once no server runs from them any
   * more: a running server still imports from its venv). What cannot be removed is left for later.
   */
  removeOldVenvs(): void {
    const keep = this.installed()?.venv;
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const full = path.join(this.dir, name);
      if (!name.startsWith('venv-') || full === keep) continue;
      try {
        fs.rmSync(full, { recursive: true, force: true });
      } catch (err) {
        this.log.warn(`could not remove the old ${full}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  }
}
