/**
 * What VS Code sends in `initialize`, computed by the real vscode-languageclient (the version in
 * package-lock.json) rather than copied by hand: its features fill the capabilities exactly as they
 * do inside VS Code. VS Code itself cannot run here, so `vscode` is replaced by an inert stand-in
 * that only has to survive module loading and `computeClientCapabilities()`.
 */

import Module from 'node:module';
import type { ClientCapabilities } from 'vscode-languageserver-protocol';

function inert(name: string): unknown {
  const fn = function () {
    return inert(`${name}()`);
  };
  return new Proxy(fn, {
    get(_t, p) {
      if (p === Symbol.toPrimitive) return () => name;
      if (p === 'then') return undefined; // not a thenable
      if (p === 'version') return '1.95.0';
      return inert(`${name}.${String(p)}`);
    },
    apply: () => inert(`${name}()`),
    construct: () => inert(`new ${name}`) as object,
  });
}

export function vscodeClientCapabilities(): ClientCapabilities {
  const mod = Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown };
  const original = mod._load;
  mod._load = function (request: string, ...rest: unknown[]) {
    if (request === 'vscode') return inert('vscode');
    return original.call(this, request, ...rest);
  };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { LanguageClient } = require('vscode-languageclient/node') as typeof import('vscode-languageclient/node');
    const client = new LanguageClient('starcoder', 'StarCoder', { command: 'unused' }, {});
    const caps = (client as unknown as { computeClientCapabilities(): ClientCapabilities }).computeClientCapabilities();
    return JSON.parse(JSON.stringify(caps)) as ClientCapabilities;
  } finally {
    mod._load = original;
  }
}
