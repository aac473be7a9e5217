/**
 * The extension itself (src/extension.ts + the real vscode-languageclient), activated in the
 * miniature extension host of test/host/fakeVscode.ts against the real server: the fix-it path
 * for a missing server, settings → server, status bar, inline completions through the client's
 * provider and our middleware, per-language enable, Toggle, Restart and Explain Selection.
 */

import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { host, install, loadDefaults, Position, Range, Selection, Uri, type QuickPickItem, type TextDocument } from '../host/fakeVscode';
import { EXT_ROOT, pickModel, serverCommand } from './serverEnv';

install();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const extension = require('../../src/extension') as typeof import('../../src/extension');

const READY_TIMEOUT_MS = 180_000;
const pkg = JSON.parse(fs.readFileSync(path.join(EXT_ROOT, 'package.json'), 'utf8')) as Parameters<typeof loadDefaults>[0];

async function until(what: string, check: () => boolean, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) {
      throw new Error(`timed out waiting for ${what}; status bar: ${JSON.stringify(host.status?.text)} ${JSON.stringify(host.status?.tooltip)}\nlog tail:\n${host.log.slice(-15).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const statusText = () => host.status?.text ?? '';
const READY = '$(sparkle) StarCoder';

describe('the extension in a miniature extension host', { timeout: 900_000 }, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'starcoder-ext-host-'));
  const subscriptions: { dispose(): unknown }[] = [];
  let real = false;
  let cmd: string;
  let doc: TextDocument;
  const cursor = new Position(2, 11);

  before(async () => {
    cmd = serverCommand();
    const model = pickModel(cmd, tmp);
    real = model.real;
    loadDefaults(pkg);
    host.workspaceFolders = [{ uri: Uri.file(tmp), name: 'ws', index: 0 }];
    host.settings.set('starcoder.model', model.model);
    host.settings.set('starcoder.maxTokens', 32); // short generations: fast on 2 cores
    // Start with a wrong server path: the extension must say so and offer the fix-it.
    host.settings.set('starcoder.server.path', path.join(tmp, 'no-such-starcoder-lsp'));
    await extension.activate({
      subscriptions,
      extensionUri: Uri.file(EXT_ROOT),
      extensionPath: EXT_ROOT,
    } as unknown as Parameters<typeof extension.activate>[0]);
  });

  after(async () => {
    await extension.deactivate();
    for (const d of subscriptions.splice(0)) d.dispose();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('shows a missing server in the status bar with a fix-it message', () => {
    assert.equal(statusText(), '$(warning) StarCoder');
    assert.match(host.status.tooltip ?? '', /not an executable file/);
    const m = host.messages.find((x) => x.severity === 'error');
    assert.ok(m, 'an error message');
    assert.deepEqual(m.items, ['Choose Executable…', 'Open Settings', 'Setup Guide']);
  });

  it('starts the server once starcoder.server.path is fixed, and reaches ready', async () => {
    host.setSetting('starcoder.server.path', cmd);
    await until('the status bar to show ready', () => statusText() === READY);
    assert.match(host.status.tooltip ?? '', /ready/);
    assert.ok(host.status.visible);
    assert.ok(host.log.some((l) => l.includes(`starting ${cmd} serve`)), 'the log names the command');
    assert.equal(host.inlineProviders.length, 1, 'the client registered one inline completion provider');
  });

  it('completes inline through the client provider and the middleware, busy while it runs', async () => {
    doc = host.openDocument(path.join(tmp, 'sample.py'), 'python', 'def add(a, b):\n    """Return the sum of a and b."""\n    return \n');
    const pending = host.requestInline(doc, cursor);
    assert.equal(statusText(), '$(loading~spin) StarCoder', 'busy while the request is in flight');
    const items = await pending;
    assert.equal(statusText(), READY);
    if (real) assert.ok(items.length >= 1, 'an inline item');
    for (const item of items) {
      assert.ok(item.range instanceof Range && item.range.isEmpty && item.range.start.isEqual(cursor), 'explicit empty range at the cursor');
    }
    if (real) assert.match(String(items[0].insertText), /a \+ b|b \+ a/);
  });

  it('skips languages turned off in starcoder.enableLanguages and shows it in the status bar', async () => {
    const md = host.openDocument(path.join(tmp, 'notes.md'), 'markdown', '# Notes\n\nThe sum of a and b is ');
    assert.equal(statusText(), '$(circle-slash) StarCoder');
    assert.deepEqual(await host.requestInline(md, new Position(2, 23)), []);
    await host.executeCommand('starcoder.toggleLanguage');
    assert.deepEqual(host.settings.get('starcoder.enableLanguages'), { '*': true, plaintext: false, markdown: true, scminput: false });
    assert.equal(statusText(), READY);
    host.setSetting('starcoder.enableLanguages', undefined);
    host.activeEditor = { document: doc, selection: new Selection(cursor, cursor) };
  });

  it('Toggle turns completions off and on through the server', async () => {
    await host.executeCommand('starcoder.toggle');
    assert.equal(host.settings.get('starcoder.enable'), false);
    await until('disabled', () => statusText() === '$(circle-slash) StarCoder', 30_000);
    assert.match(host.status.tooltip ?? '', /turned off/);
    assert.deepEqual(await host.requestInline(doc, cursor), []);
    await host.executeCommand('starcoder.toggle');
    assert.equal(host.settings.get('starcoder.enable'), true);
    await until('ready again', () => statusText() === READY);
  });

  it('Explain Selection asks the server and opens the markdown preview', async (t: TestContext) => {
    host.activeEditor = { document: doc, selection: new Selection(new Position(0, 0), cursor) };
    const errorsBefore = host.messages.filter((m) => m.severity === 'error').length;
    await host.executeCommand('starcoder.explainSelection');
    const newErrors = host.messages.filter((m) => m.severity === 'error').slice(errorsBefore);
    if (newErrors.some((m) => /has no explain command/.test(m.text))) {
      console.log(`# PENDING: server has no starcoder.explain yet (${newErrors[0].text})`);
      t.todo('PENDING: server has no starcoder.explain yet');
      return;
    }
    assert.deepEqual(newErrors, []);
    const preview = host.executed.find((e) => e.command === 'markdown.showPreviewToSide');
    assert.ok(preview, 'the markdown preview was opened');
    const uri = preview.args[0] as Uri;
    assert.equal(uri.scheme, 'starcoder-explanation');
    assert.match(uri.path, /Explanation of sample\.py lines 1-3/);
    const markdown = host.contentProviders.get('starcoder-explanation')?.provideTextDocumentContent(uri) ?? '';
    assert.ok(markdown.trim().length > 0, 'the preview has the explanation');
  });

  it('the status menu offers toggle, select model, show log and restart', async () => {
    host.pick = () => undefined;
    await host.executeCommand('starcoder.showMenu');
    const labels = host.shownPicks[host.shownPicks.length - 1].map((i) => i.label);
    for (const want of ['Disable completions', 'Disable completions for python', 'Select model…', 'Show log', 'Restart server']) {
      assert.ok(labels.some((l) => l.endsWith(want)), `menu has "${want}": ${JSON.stringify(labels)}`);
    }
  });

  it('Select Model lists the server catalogue (models list) and asks before using a missing model', async () => {
    const before = host.quickPicks.length;
    const running = host.executeCommand('starcoder.selectModel');
    await until('the model list', () => host.quickPicks.length > before && !host.quickPicks[before].busy && host.quickPicks[before].items.length > 0, 60_000);
    const qp = host.quickPicks[before];
    const entries = qp.items.filter((i) => i.entry) as (QuickPickItem & { entry: { name: string; downloaded: boolean; fim: boolean } })[];
    assert.ok(entries.length >= 3, 'catalogue entries');
    assert.ok(entries.every((e) => e.entry.fim), 'only FIM models are offered');
    assert.ok(entries.some((e) => /default/.test(e.description ?? '')), 'the default is marked');
    assert.ok(qp.items.some((i) => i.browse), 'a Browse… item');
    const missing = entries.find((e) => !e.entry.downloaded);
    if (real) {
      const qwen = entries.find((e) => e.entry.name === 'qwen2.5-coder-0.5b');
      assert.ok(qwen?.entry.downloaded && /^\$\(check\) /.test(qwen.label), 'the current model is checked');
    }
    if (!missing) {
      qp.hide();
      await running;
      return;
    }
    // A model that is not downloaded: the extension asks before doing anything.
    host.answer = () => undefined;
    const messagesBefore = host.messages.length;
    const modelBefore = host.settings.get('starcoder.model');
    qp.choose(missing);
    await running;
    const asked = host.messages.slice(messagesBefore).find((m) => m.text.includes('is not downloaded yet'));
    assert.deepEqual(asked?.items, ['Download and Use', 'Use Anyway']);
    assert.equal(host.settings.get('starcoder.model'), modelBefore, 'dismissing changes nothing');
  });

  it('Select Model sets starcoder.model to a downloaded model and the server loads it', async (t: TestContext) => {
    const before = host.quickPicks.length;
    const running = host.executeCommand('starcoder.selectModel');
    await until('the model list', () => host.quickPicks.length > before && !host.quickPicks[before].busy && host.quickPicks[before].items.length > 0, 60_000);
    const qp = host.quickPicks[before];
    const downloaded = qp.items.find((i) => (i.entry as { downloaded?: boolean } | undefined)?.downloaded);
    if (!downloaded) {
      qp.hide();
      await running;
      t.skip('no catalogue model is downloaded (tiny-model run)');
      return;
    }
    qp.choose(downloaded);
    await running;
    const name = (downloaded.entry as { name: string }).name;
    assert.equal(host.settings.get('starcoder.model'), name);
    await until(`ready with ${name}`, () => statusText() === READY && (host.status.tooltip ?? '').includes(name));
  });

  it('Restart Server comes back ready', async () => {
    await host.executeCommand('starcoder.restartServer');
    await until('ready after restart', () => statusText() === READY);
    assert.equal(host.inlineProviders.length, 1, 'one provider after restart (the old one was disposed)');
    const items = await host.requestInline(doc, cursor);
    if (real) assert.ok(items.length >= 1);
  });
});
