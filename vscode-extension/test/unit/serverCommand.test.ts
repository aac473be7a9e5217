import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commandLine, resolveServerCommand, venvCandidates, whichOnPath, type ResolveInput } from '../../src/serverCommand';

function input(files: string[], over: Partial<ResolveInput> = {}): ResolveInput {
  const set = new Set(files);
  return {
    workspaceFolders: ['/ws/a', '/ws/b'],
    envPath: '/usr/local/bin:/usr/bin',
    platform: 'linux',
    trusted: true,
    home: '/home/ada',
    isExecutable: (f) => set.has(f),
    ...over,
  };
}

function launcherOf(r: ReturnType<typeof resolveServerCommand>) {
  assert.ok(r.ok, r.ok ? '' : r.message);
  return r.launcher;
}

describe('server command resolution', () => {
  it('uses starcoder.server.path first', () => {
    const l = launcherOf(resolveServerCommand(input(['/opt/sc/bin/starcoder-lsp', '/ws/a/.venv/bin/starcoder-lsp'], { serverPath: '/opt/sc/bin/starcoder-lsp' })));
    assert.deepEqual(l, { command: '/opt/sc/bin/starcoder-lsp', prefixArgs: [], source: 'setting' });
    assert.deepEqual(commandLine(l, ['serve'], ['-v']), { command: '/opt/sc/bin/starcoder-lsp', args: ['serve', '-v'] });
  });

  it('reports a server.path that is not a program instead of falling back', () => {
    const r = resolveServerCommand(input(['/usr/bin/starcoder-lsp'], { serverPath: '/nope/starcoder-lsp' }));
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.reason === 'bad-setting' && r.message.includes('/nope/starcoder-lsp'));
  });

  it('expands ~ and ${workspaceFolder}, resolves relative paths against the first folder and bare names on PATH', () => {
    assert.equal(launcherOf(resolveServerCommand(input(['/home/ada/bin/starcoder-lsp'], { serverPath: '~/bin/starcoder-lsp' }))).command, '/home/ada/bin/starcoder-lsp');
    assert.equal(launcherOf(resolveServerCommand(input(['/ws/a/tools/sc'], { serverPath: '${workspaceFolder}/tools/sc' }))).command, '/ws/a/tools/sc');
    assert.equal(launcherOf(resolveServerCommand(input(['/ws/a/tools/sc'], { serverPath: 'tools/sc' }))).command, '/ws/a/tools/sc');
    assert.equal(launcherOf(resolveServerCommand(input(['/usr/bin/my-sc'], { serverPath: 'my-sc' }))).command, '/usr/bin/my-sc');
  });

  it('runs `python -m lsp_server` with starcoder.server.pythonPath', () => {
    const l = launcherOf(resolveServerCommand(input(['/usr/bin/python3'], { pythonPath: 'python3' })));
    assert.deepEqual(l, { command: '/usr/bin/python3', prefixArgs: ['-m', 'lsp_server'], source: 'python' });
    assert.deepEqual(commandLine(l, ['models', 'list']).args, ['-m', 'lsp_server', 'models', 'list']);
    const bad = resolveServerCommand(input([], { pythonPath: '/no/python' }));
    assert.ok(!bad.ok && bad.reason === 'bad-setting');
  });

  it('server.path wins over pythonPath', () => {
    const l = launcherOf(resolveServerCommand(input(['/x/sc', '/usr/bin/python3'], { serverPath: '/x/sc', pythonPath: 'python3' })));
    assert.equal(l.source, 'setting');
  });

  it('finds a workspace venv (.venv before venv, folders in order) before PATH', () => {
    const files = ['/ws/b/.venv/bin/starcoder-lsp', '/ws/a/venv/bin/starcoder-lsp', '/usr/bin/starcoder-lsp'];
    const l = launcherOf(resolveServerCommand(input(files)));
    assert.deepEqual(l, { command: '/ws/a/venv/bin/starcoder-lsp', prefixArgs: [], source: 'workspace-venv' });
    assert.deepEqual(venvCandidates('/ws/a', 'linux'), ['/ws/a/.venv/bin/starcoder-lsp', '/ws/a/venv/bin/starcoder-lsp']);
  });

  it('never runs an untrusted workspace venv', () => {
    const files = ['/ws/a/.venv/bin/starcoder-lsp', '/usr/bin/starcoder-lsp'];
    const l = launcherOf(resolveServerCommand(input(files, { trusted: false })));
    assert.deepEqual(l, { command: '/usr/bin/starcoder-lsp', prefixArgs: [], source: 'path' });
    const none = resolveServerCommand(input(['/ws/a/.venv/bin/starcoder-lsp'], { trusted: false }));
    assert.ok(!none.ok && /untrusted/.test(none.message));
  });

  it('searches PATH in order, then ~/.local/bin', () => {
    assert.equal(launcherOf(resolveServerCommand(input(['/usr/local/bin/starcoder-lsp', '/usr/bin/starcoder-lsp'], { workspaceFolders: [] }))).command, '/usr/local/bin/starcoder-lsp');
    assert.equal(launcherOf(resolveServerCommand(input(['/home/ada/.local/bin/starcoder-lsp'], { envPath: '' }))).command, '/home/ada/.local/bin/starcoder-lsp');
  });

  it('explains what it tried when nothing is found', () => {
    const r = resolveServerCommand(input([]));
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.reason, 'not-found');
    assert.ok(r.tried.includes('/ws/a/.venv/bin/starcoder-lsp'));
    assert.ok(r.tried.includes('/ws/b/venv/bin/starcoder-lsp'));
    assert.ok(r.tried.includes('starcoder-lsp on PATH'));
    assert.ok(r.tried.includes('/home/ada/.local/bin/starcoder-lsp'));
    assert.match(r.message, /starcoder\.server\.path/);
  });

  it('handles Windows venvs, PATH separators and .exe names', () => {
    const win = { platform: 'win32' as const, workspaceFolders: ['C:\\ws'], envPath: 'C:\\Python\\Scripts;C:\\bin', home: 'C:\\Users\\ada' };
    assert.equal(launcherOf(resolveServerCommand(input(['C:\\ws\\.venv\\Scripts\\starcoder-lsp.exe'], win))).command, 'C:\\ws\\.venv\\Scripts\\starcoder-lsp.exe');
    assert.equal(launcherOf(resolveServerCommand(input(['C:\\bin\\starcoder-lsp.exe'], win))).command, 'C:\\bin\\starcoder-lsp.exe');
    assert.equal(whichOnPath('python', { ...input(['C:\\Python\\python.exe'], win), envPath: 'C:\\Python' }), 'C:\\Python\\python.exe');
  });
});
