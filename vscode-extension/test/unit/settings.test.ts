import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { EXTENSION_SETTING_KEYS, FLAG_KEYS, SERVER_SETTING_KEYS, USER_ONLY_KEYS, cliFlags, expandPath, getterFor, looksLikePath, toServerSettings, userScopedGetter, type Levels } from '../../src/settings';

const root = path.resolve(__dirname, '../../..');
interface Prop { default?: unknown; scope?: string; description?: string; markdownDescription?: string; type?: unknown }
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  contributes: { configuration: { properties: Record<string, Prop> }; commands: { command: string }[] };
};
const props = pkg.contributes.configuration.properties;

/** What VS Code's getConfiguration('starcoder').get(key) returns with nothing set: the defaults. */
function defaults(overrides: Record<string, unknown> = {}): (key: string) => unknown {
  const values: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(props)) values[k.replace(/^starcoder\./, '')] = p.default;
  return getterFor({ ...values, ...overrides });
}

describe('package.json settings', () => {
  it('contributes every server setting, each with a description and a scope', () => {
    for (const key of SERVER_SETTING_KEYS) {
      const p = props[`starcoder.${key}`];
      assert.ok(p, `starcoder.${key} is contributed`);
      assert.ok(p.description || p.markdownDescription, `starcoder.${key} has a description`);
      assert.ok(p.scope, `starcoder.${key} has a scope`);
    }
  });

  it('contributes nothing but the server settings and the extension\'s own', () => {
    const contributed = Object.keys(props).map((k) => k.replace(/^starcoder\./, '')).sort();
    assert.deepEqual(contributed, [...SERVER_SETTING_KEYS, ...EXTENSION_SETTING_KEYS].sort());
    for (const key of EXTENSION_SETTING_KEYS) assert.ok(!(SERVER_SETTING_KEYS as readonly string[]).includes(key), key);
  });

  it('gives every contributed setting a description and a valid scope', () => {
    const scopes = new Set(['application', 'machine', 'machine-overridable', 'window', 'resource', 'language-overridable']);
    for (const [key, p] of Object.entries(props)) {
      assert.ok(p.description || p.markdownDescription, `${key} has a description`);
      assert.ok(scopes.has(p.scope ?? ''), `${key} has a valid scope (${p.scope})`);
    }
  });

  it('makes where code and keys go, catalogue files and programs machine-scoped (workspace values ignored)', () => {
    for (const key of ['endpoint', 'apiKeyEnv', 'backend', 'modelsFile', 'server.path', 'server.pythonPath', 'server.args', 'server.installFrom']) {
      assert.equal(props[`starcoder.${key}`].scope, 'machine', key);
      assert.ok(USER_ONLY_KEYS.includes(key), key);
    }
    for (const key of ['model', 'nGpuLayers', 'threads']) {
      assert.equal(props[`starcoder.${key}`].scope, 'machine-overridable', key);
    }
    assert.equal(props['starcoder.enableLanguages'].scope, 'resource');
    assert.equal(props['starcoder.contextTokens'].scope, 'window');
  });

  it('has the trace setting vscode-languageclient reads for client id "starcoder"', () => {
    assert.deepEqual((props['starcoder.trace.server'] as { enum?: string[] }).enum, ['off', 'messages', 'verbose']);
  });

  it('does not contribute the server-owned command starcoder.explain (the client registers it)', () => {
    const ids = pkg.contributes.commands.map((c) => c.command);
    assert.ok(!ids.includes('starcoder.explain'));
    for (const id of ['starcoder.explainSelection', 'starcoder.toggle', 'starcoder.selectModel', 'starcoder.restartServer', 'starcoder.showLog']) {
      assert.ok(ids.includes(id), id);
    }
  });
});

describe('toServerSettings', () => {
  it('maps the package.json defaults to the server defaults', () => {
    assert.deepEqual(toServerSettings(defaults()), {
      model: null,
      modelsFile: null,
      nGpuLayers: -1,
      threads: null,
      contextTokens: 8192,
      maxTokens: null,
      temperature: null,
      enable: true,
      idleUnloadMinutes: 0,
      backend: 'local',
      endpoint: null,
      apiKeyEnv: null,
      memoryPolicy: 'refuse',
      exclude: [],
      gitignore: false,
      completeAfterDeletion: false,
    });
  });

  it('always sends exactly the server keys (null resets a cleared setting)', () => {
    assert.deepEqual(Object.keys(toServerSettings(() => undefined)).sort(), [...SERVER_SETTING_KEYS].sort());
    const cleared = toServerSettings(() => undefined);
    assert.equal(cleared.model, null);
    assert.equal(cleared.enable, true);
  });

  it('passes user values through', () => {
    const s = toServerSettings(defaults({
      model: 'starcoder2-3b', nGpuLayers: 0, threads: 4, contextTokens: 4096, maxTokens: 64,
      temperature: 0.2, enable: false, idleUnloadMinutes: 15, backend: 'llama-server',
      endpoint: 'http://127.0.0.1:8080/v1', apiKeyEnv: 'STARCODER_KEY', memoryPolicy: 'shrink',
      exclude: ['*.tfvars', 7], gitignore: true, completeAfterDeletion: true,
    }));
    assert.deepEqual(s, {
      model: 'starcoder2-3b', modelsFile: null, nGpuLayers: 0, threads: 4, contextTokens: 4096,
      maxTokens: 64, temperature: 0.2, enable: false, idleUnloadMinutes: 15, backend: 'llama-server',
      endpoint: 'http://127.0.0.1:8080/v1', apiKeyEnv: 'STARCODER_KEY', memoryPolicy: 'shrink',
      exclude: ['*.tfvars'], gitignore: true, completeAfterDeletion: true,
    });
  });

  it('clamps numbers into the server ranges and rounds integers', () => {
    const s = toServerSettings(defaults({ contextTokens: 100_000, maxTokens: 0, temperature: 5, nGpuLayers: -7, threads: 2.6 }));
    assert.equal(s.contextTokens, 8192);
    assert.equal(s.maxTokens, 1);
    assert.equal(s.temperature, 2);
    assert.equal(s.nGpuLayers, -1);
    assert.equal(s.threads, 3);
    assert.equal(toServerSettings(defaults({ contextTokens: 10 })).contextTokens, 256);
    const high = toServerSettings(defaults({ nGpuLayers: 20_000, idleUnloadMinutes: 1e9, threads: 5000 }));
    assert.deepEqual([high.nGpuLayers, high.idleUnloadMinutes, high.threads], [10_000, 7 * 24 * 60, 1024]);
    assert.equal(toServerSettings(defaults({ threads: -5 })).threads, null); // below 1: all cores
  });

  it('turns wrong types, blanks and unknown choices into null (the server default)', () => {
    const s = toServerSettings(defaults({
      model: '   ', modelsFile: 42, contextTokens: '4096', temperature: Number.NaN, backend: 'cloud', threads: 0, endpoint: '',
      memoryPolicy: 'swap', enable: 'no', gitignore: 'yes',
    }));
    assert.equal(s.model, null);
    assert.equal(s.modelsFile, null);
    assert.equal(s.contextTokens, null);
    assert.equal(s.temperature, null);
    assert.equal(s.backend, null);
    assert.equal(s.threads, null);
    assert.equal(s.endpoint, null);
    assert.equal(s.memoryPolicy, null);
    assert.equal(s.enable, true);
    assert.equal(s.gitignore, false);
  });

  it('expands ~, ${userHome} and ${workspaceFolder} in model paths, never in model names', () => {
    const ctx = { home: '/home/ada', workspaceFolder: '/src/proj' };
    assert.equal(toServerSettings(defaults({ model: '~/models/sc.gguf' }), ctx).model, '/home/ada/models/sc.gguf');
    assert.equal(toServerSettings(defaults({ model: '${workspaceFolder}/m.gguf' }), ctx).model, '/src/proj/m.gguf');
    assert.equal(toServerSettings(defaults({ modelsFile: '${userHome}/models.toml' }), ctx).modelsFile, '/home/ada/models.toml');
    assert.equal(toServerSettings(defaults({ model: ' qwen2.5-coder-0.5b ' }), ctx).model, 'qwen2.5-coder-0.5b');
  });

  it('recognises paths', () => {
    assert.ok(looksLikePath('/a/b.gguf'));
    assert.ok(looksLikePath('C:\\m\\b.gguf'));
    assert.ok(looksLikePath('model.GGUF'));
    assert.ok(!looksLikePath('starcoder2-3b'));
    assert.equal(expandPath('~', { home: '/h' }), '/h');
    assert.equal(expandPath('~user/x', { home: '/h' }), '~user/x');
  });
});

describe('userScopedGetter (what a workspace may choose)', () => {
  const levels = (values: Record<string, Levels>) => userScopedGetter((key) => values[key]);

  it('ignores workspace values of endpoint, apiKeyEnv, backend, modelsFile and server.*', () => {
    const evil: Levels = { defaultValue: '', globalValue: 'https://gpu.team', workspaceValue: 'http://evil.example:9', workspaceFolderValue: 'http://evil2' };
    const get = levels({
      endpoint: evil,
      apiKeyEnv: { defaultValue: '', workspaceValue: 'AWS_SECRET_ACCESS_KEY' },
      backend: { defaultValue: 'local', workspaceValue: 'openai' },
      modelsFile: { defaultValue: '', workspaceValue: '/dev/zero' },
      'server.path': { defaultValue: '', workspaceValue: './evil.sh' },
      'server.args': { defaultValue: [], workspaceValue: ['--endpoint', 'http://evil'] },
      // A cloned repository must not choose what "Install Server" installs.
      'server.installFrom': { defaultValue: '', globalValue: '/home/ada/dist/starcoder_lsp-0.1.0-py3-none-any.whl', workspaceValue: './evil.whl', workspaceFolderValue: 'evil-package' },
    });
    assert.equal(get('endpoint'), 'https://gpu.team');
    assert.equal(get('apiKeyEnv'), '');
    assert.equal(get('backend'), 'local');
    assert.equal(get('modelsFile'), '');
    assert.equal(get('server.path'), '');
    assert.deepEqual(get('server.args'), []);
    assert.equal(get('server.installFrom'), '/home/ada/dist/starcoder_lsp-0.1.0-py3-none-any.whl');
    const s = toServerSettings(get);
    assert.equal(s.endpoint, 'https://gpu.team');
    assert.equal(s.apiKeyEnv, null);
    assert.equal(s.backend, 'local');
  });

  it('lets a workspace choose a catalogue model, never a model file', () => {
    assert.equal(levels({ model: { defaultValue: '', workspaceValue: 'starcoder2-3b' } })('model'), 'starcoder2-3b');
    assert.equal(levels({ model: { defaultValue: '', globalValue: 'qwen2.5-coder-0.5b', workspaceValue: '/tmp/evil.gguf' } })('model'), 'qwen2.5-coder-0.5b');
    assert.equal(levels({ model: { defaultValue: '', workspaceFolderValue: '${workspaceFolder}/m.gguf' } })('model'), '');
  });

  it('adds up exclude patterns and turns gitignore on if any level does: a workspace can only exclude more', () => {
    const get = levels({
      exclude: { defaultValue: [], globalValue: ['*.tfvars'], workspaceValue: [], workspaceFolderValue: ['secrets/', '*.tfvars'] },
      gitignore: { defaultValue: false, globalValue: true, workspaceValue: false },
    });
    assert.deepEqual(get('exclude'), ['*.tfvars', 'secrets/']);
    assert.equal(get('gitignore'), true);
  });

  it('reads every other setting as VS Code resolves it (folder over workspace over user)', () => {
    const get = levels({ contextTokens: { defaultValue: 8192, globalValue: 4096, workspaceValue: 2048 } });
    assert.equal(get('contextTokens'), 2048);
    assert.equal(get('unknown'), undefined);
  });
});

describe('settings as CLI flags (starcoder-lsp doctor)', () => {
  it('passes what the editor sets, in kebab case, and leaves the rest to the server', () => {
    const settings = toServerSettings(getterFor({ model: 'starcoder2-3b', threads: 4, nGpuLayers: 0, enable: false }));
    assert.deepEqual(cliFlags(settings), ['--model', 'starcoder2-3b', '--n-gpu-layers', '0', '--threads', '4']);
    assert.deepEqual(cliFlags({ modelsFile: '/x/models.toml', apiKeyEnv: 'STARCODER_K' }), ['--models-file', '/x/models.toml', '--api-key-env', 'STARCODER_K']);
    assert.deepEqual(cliFlags({}), []);
  });

  it('names only settings the server has', () => {
    for (const key of FLAG_KEYS) assert.ok((SERVER_SETTING_KEYS as readonly string[]).includes(key), key);
  });
});
