// Bundles the playground page into lsp_server/playground/static/ (a build artefact, git-ignored,
// shipped in the wheel). Everything the page needs is in the bundle: nothing is fetched at run time.
import { build } from 'esbuild';
import { cpSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, '..', 'lsp_server', 'playground', 'static');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

const common = {
  bundle: true,
  minify: true,
  target: 'es2020',
  platform: 'browser',
  logLevel: 'warning',
  legalComments: 'none',
};

await build({
  ...common,
  entryPoints: { main: join(here, 'src', 'main.ts') },
  outdir: out,
  format: 'iife',
  // monaco-languageclient 1.x runs vscode-languageclient on its own shim of the `vscode` API.
  alias: { vscode: 'monaco-languageclient/vscode-compatibility' },
  // Sample files are bundled as text (.txt for JS/TS, which esbuild would otherwise compile).
  loader: { '.ttf': 'file', '.py': 'text', '.txt': 'text', '.rs': 'text', '.go': 'text' },
  assetNames: '[name]',
});
await build({
  ...common,
  entryPoints: { 'editor.worker': 'monaco-editor/esm/vs/editor/editor.worker.js' },
  outdir: out,
  format: 'iife',
});
cpSync(join(here, 'src', 'index.html'), join(out, 'index.html'));
