/** Where the integration tests find the server and which model they load (see README). */

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

export const EXT_ROOT = path.resolve(__dirname, '../../..');
export const REPO_ROOT = path.resolve(EXT_ROOT, '..');
export const REAL_MODEL = 'qwen2.5-coder-0.5b';

/** STARCODER_LSP_COMMAND, default ../.venv/bin/starcoder-lsp relative to vscode-extension/. */
export function serverCommand(): string {
  const raw = process.env.STARCODER_LSP_COMMAND || '../.venv/bin/starcoder-lsp';
  const full = path.resolve(EXT_ROOT, raw);
  if (!fs.existsSync(full)) {
    throw new Error(`starcoder-lsp not found at ${full}: set STARCODER_LSP_COMMAND or run \`make install\` in the repository root`);
  }
  return full;
}

/**
 * STARCODER_TEST_MODEL (`tiny` forces the tiny model), else the real Qwen model when it is already in the cache (never pulled
 * here), else a tiny random StarCoder GGUF written by tests.tiny_models (content checks skipped).
 */
export function pickModel(cmd: string, tmp: string): { model: string; real: boolean } {
  const forced = process.env.STARCODER_TEST_MODEL;
  if (forced && forced !== 'tiny') return { model: forced, real: forced === REAL_MODEL || /qwen/i.test(forced) };
  if (!forced) {
    const probe = spawnSync(cmd, ['models', 'path', REAL_MODEL], { encoding: 'utf8', timeout: 60_000 });
    if (probe.status === 0) return { model: REAL_MODEL, real: true };
  }
  const python = process.env.STARCODER_TEST_PYTHON || path.join(path.dirname(cmd), 'python');
  const out = path.join(tmp, 'tiny-starcoder.gguf');
  const made = spawnSync(python, ['-m', 'tests.tiny_models', out], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
  if (made.status !== 0) throw new Error(`could not write a tiny model with ${python}: ${made.stderr || String(made.error)}`);
  console.log(`# using a tiny random StarCoder (${out}) instead of ${REAL_MODEL}: content checks are skipped`);
  return { model: out, real: false };
}
