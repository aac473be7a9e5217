// Bundle the extension into one file (dist/extension.js); `vscode` is provided by the editor.
import * as esbuild from 'esbuild';

const dev = process.argv.includes('--dev');
await esbuild.build({
  entryPoints: ['src/extension.ts'],
  bundle: true,
  outfile: 'dist/extension.js',
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  external: ['vscode'],
  minify: !dev,
  sourcemap: dev,
  logLevel: 'info',
});
