import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MIN_SERVER_VERSION, SERVER_NAME, checkServerVersion, compareVersions, parseVersion } from '../../src/version';
import { INITIAL, fixes, reduce, view } from '../../src/status';

describe('server version check', () => {
  it('orders versions as PEP 440 and semver do', () => {
    assert.ok(compareVersions('0.1.0', '0.1.0') === 0);
    assert.ok(compareVersions('0.1', '0.1.0') === 0);
    assert.ok(compareVersions('0.2.0', '0.10.0') < 0, 'numeric, not lexicographic');
    assert.ok(compareVersions('1.0.0', '0.9.9') > 0);
    assert.ok(compareVersions('0.2.0rc1', '0.2.0') < 0, 'a pre-release is older than its release');
    assert.ok(compareVersions('0.2.0.dev3', '0.2.0') < 0);
    assert.ok(compareVersions('0.2.0-beta.1', '0.2.0') < 0);
    assert.ok(compareVersions('0.2.0.post1', '0.2.0') === 0);
    assert.ok(compareVersions('0.2.0+local', '0.2.0') === 0);
    assert.ok(compareVersions('0.2.0rc1', '0.1.9') > 0);
    assert.ok(Number.isNaN(compareVersions('dev', '0.1.0')));
    assert.deepEqual(parseVersion('v1.2.3'), { release: [1, 2, 3], pre: false });
  });

  it('accepts the required version and newer ones', () => {
    assert.deepEqual(checkServerVersion({ name: SERVER_NAME, version: MIN_SERVER_VERSION }), { ok: true, version: MIN_SERVER_VERSION });
    assert.equal(checkServerVersion({ name: SERVER_NAME, version: '9.0.0' }).ok, true);
  });

  it('refuses an older server with a message that says how to update', () => {
    const check = checkServerVersion({ name: SERVER_NAME, version: '0.0.9' }, '0.1.0');
    assert.equal(check.ok, false);
    if (check.ok) return;
    assert.match(check.message, /starcoder-lsp 0\.0\.9 is older than this extension needs \(0\.1\.0 or newer\)/);
    assert.match(check.message, /pip install -U starcoder-lsp/);
    assert.equal(checkServerVersion({ name: SERVER_NAME, version: '0.2.0rc1' }, '0.2.0').ok, false);
  });

  it('lets through what it cannot judge, with a note', () => {
    for (const info of [undefined, { name: SERVER_NAME }, { name: SERVER_NAME, version: 'main' }, { name: 'wrapper', version: '0.0.1' }]) {
      const check = checkServerVersion(info, '0.1.0');
      assert.equal(check.ok, true);
      assert.ok(check.ok && check.note, JSON.stringify(info));
    }
  });

  it('the minimum is a released server version (not newer than the package in this repository)', () => {
    const pyproject = fs.readFileSync(path.join(__dirname, '..', '..', '..', '..', 'pyproject.toml'), 'utf8');
    const version = /^version = "([^"]+)"/m.exec(pyproject)?.[1];
    assert.ok(version, 'pyproject.toml has a version');
    assert.ok(compareVersions(MIN_SERVER_VERSION, version) <= 0, `${MIN_SERVER_VERSION} > ${version}`);
  });
});

describe('status when the server is too old', () => {
  it('shows an error that later server statuses do not hide, and offers to update or choose the server', () => {
    let s = reduce(INITIAL, { type: 'started' });
    s = reduce(s, { type: 'outdated', message: 'starcoder-lsp 0.0.9 is older than this extension needs (0.1.0 or newer).' });
    s = reduce(s, { type: 'server', params: { state: 'ready', model: 'qwen2.5-coder-0.5b' } });
    assert.equal(s.phase, 'outdated');
    const v = view(s);
    assert.equal(v.text, '$(error) StarCoder update');
    assert.equal(v.background, 'error');
    assert.match(v.tooltip, /server too old\nstarcoder-lsp 0\.0\.9 is older/);
    assert.deepEqual(fixes(s), [{ kind: 'install-server', update: true }, { kind: 'choose-server' }]);
    assert.equal(reduce(s, { type: 'starting' }).phase, 'starting', 'a restart clears it');
  });
});
