import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { INITIAL, effectivePhase, fixes, reduce, view, type StatusEvent, type StatusState } from '../../src/status';

function run(...events: StatusEvent[]): StatusState {
  return events.reduce(reduce, INITIAL);
}
const server = (state: string, model = 'qwen2.5-coder-0.5b', message = ''): StatusEvent => ({ type: 'server', params: { state, model, message } });

describe('status state machine', () => {
  it('starts spinning before the server speaks', () => {
    const s = run({ type: 'starting' });
    assert.equal(s.phase, 'starting');
    assert.match(view(s).text, /loading~spin/);
    assert.equal(run({ type: 'starting' }, { type: 'started' }).phase, 'loading');
  });

  it('shows loading with progress, then ready', () => {
    let s = run({ type: 'starting' }, { type: 'started' }, server('loading', 'qwen2.5-coder-0.5b', 'loading qwen2.5-coder-0.5b'));
    assert.equal(s.phase, 'loading');
    assert.equal(view(s).text, '$(loading~spin) StarCoder');
    assert.match(view(s).tooltip, /loading qwen2\.5-coder-0\.5b/);
    s = reduce(s, { type: 'progress', kind: 'begin', message: 'Loading qwen2.5-coder-0.5b' });
    s = reduce(s, { type: 'progress', kind: 'report', percentage: 41.6 });
    assert.equal(s.percent, 42);
    assert.equal(view(s).text, '$(loading~spin) StarCoder 42%');
    s = reduce(s, { type: 'progress', kind: 'report', percentage: 250 });
    assert.equal(s.percent, 100);
    s = reduce(s, { type: 'progress', kind: 'end' });
    assert.equal(s.percent, undefined);
    s = reduce(s, server('ready', 'qwen2.5-coder-0.5b', 'qwen2.5-coder-0.5b (qwen2.5-coder)'));
    assert.equal(s.phase, 'ready');
    assert.equal(view(s).text, '$(sparkle) StarCoder');
    assert.match(view(s).tooltip, /ready · qwen2\.5-coder-0\.5b/);
    assert.equal(view(s).background, undefined);
    const usage = '3 of 4 suggestions accepted (75%) · p50 0.21 s';
    assert.match(view(s, { usage }).tooltip, /\n3 of 4 suggestions accepted \(75%\) · p50 0\.21 s\n\nClick for actions\.$/);
  });

  it('clears stale progress when the load ends in ready or error', () => {
    const s = run(server('loading'), { type: 'progress', kind: 'report', percentage: 50 }, server('ready'));
    assert.equal(s.percent, undefined);
  });

  it('is busy while a request is in flight or when the server says so', () => {
    let s = run(server('ready'), { type: 'request', delta: 1 }, { type: 'request', delta: 1 });
    assert.equal(effectivePhase(s), 'busy');
    assert.match(view(s).text, /loading~spin/);
    s = reduce(reduce(s, { type: 'request', delta: -1 }), { type: 'request', delta: -1 });
    assert.equal(effectivePhase(s), 'ready');
    s = reduce(s, { type: 'request', delta: -1 });
    assert.equal(s.inflight, 0, 'never negative');
    s = reduce(s, server('busy'));
    assert.equal(effectivePhase(s), 'busy');
    assert.equal(effectivePhase(reduce(s, server('ready'))), 'ready');
  });

  it('an in-flight request does not hide an error or disabled state', () => {
    assert.equal(effectivePhase(run(server('disabled'), { type: 'request', delta: 1 })), 'disabled');
    assert.equal(effectivePhase(run(server('error'), { type: 'request', delta: 1 })), 'error');
  });

  it('shows errors with the error background and offers a model download when that is the fix', () => {
    const msg = 'Model qwen2.5-coder-1.5b is not downloaded yet. Run `starcoder-lsp models pull qwen2.5-coder-1.5b` (pypi:x), or set starcoder.model to a .gguf path.';
    const s = run(server('loading', 'qwen2.5-coder-1.5b'), server('error', 'qwen2.5-coder-1.5b', msg));
    const v = view(s);
    assert.equal(v.text, '$(error) StarCoder');
    assert.equal(v.background, 'error');
    assert.ok(v.tooltip.includes(msg));
    assert.deepEqual(fixes(s), [{ kind: 'pull-model', model: 'qwen2.5-coder-1.5b' }, { kind: 'select-model' }, { kind: 'show-log' }, { kind: 'restart' }]);
    const other = run(server('error', 'm', 'out of memory'));
    assert.deepEqual(fixes(other), [{ kind: 'show-log' }, { kind: 'restart' }]);
  });

  it('shows disabled and unloaded', () => {
    assert.equal(view(run(server('disabled', 'm', 'completions are turned off'))).text, '$(circle-slash) StarCoder');
    const unloaded = view(run(server('ready'), server('unloaded')));
    assert.equal(unloaded.text, '$(debug-pause) StarCoder');
    assert.match(unloaded.tooltip, /reloads on the next request/);
  });

  it('marks a language that starcoder.enableLanguages turns off', () => {
    const s = run(server('ready'));
    const v = view(s, { languageId: 'markdown', languageEnabled: false });
    assert.equal(v.text, '$(circle-slash) StarCoder');
    assert.match(v.tooltip, /off for markdown/);
    assert.equal(view(s, { languageId: 'python', languageEnabled: true }).text, '$(sparkle) StarCoder');
  });

  it('keeps the phase on an unknown state from a newer server, but shows its message', () => {
    const s = run(server('ready'), server('warming', 'm', 'warming the cache'));
    assert.equal(s.phase, 'ready');
    assert.equal(s.message, 'warming the cache');
  });

  it('ignores late notifications from a stopped server and recovers on restart', () => {
    let s = run(server('ready'), { type: 'request', delta: 1 }, { type: 'stopped' });
    assert.equal(s.phase, 'stopped');
    assert.equal(s.inflight, 0);
    assert.equal(view(s).background, 'warning');
    assert.deepEqual(fixes(s), [{ kind: 'restart' }, { kind: 'show-log' }]);
    s = reduce(s, server('ready'));
    assert.equal(s.phase, 'stopped');
    s = run({ type: 'stopped' }, { type: 'starting' }, { type: 'started' }, server('ready'));
    assert.equal(s.phase, 'ready');
  });

  it('reports a missing server with a fix-it, and start failures as errors', () => {
    const s = run({ type: 'starting' }, { type: 'missing', message: 'The starcoder-lsp language server was not found.' });
    assert.equal(view(s).text, '$(warning) StarCoder');
    assert.deepEqual(fixes(s), [{ kind: 'install-server', update: false }, { kind: 'choose-server' }]);
    const f = run({ type: 'starting' }, { type: 'failed', message: 'spawn ENOENT' });
    assert.equal(f.phase, 'error');
    assert.equal(view(f).background, 'error');
  });

  it('shows errors instead of the sparkle while requests fail, with the cause, until one works', () => {
    const failing = (errors: number, lastError: string): StatusEvent => ({
      type: 'server',
      params: { state: 'ready', model: 'm', message: 'm (qwen)', errors, lastError },
    });
    let s = run(server('ready', 'm'), failing(1, 'textDocument/inlineCompletion: ValueError: boom'));
    assert.equal(s.phase, 'ready', 'the server state stays ready');
    assert.equal(effectivePhase(s), 'errors');
    const v = view(s);
    assert.equal(v.text, '$(warning) StarCoder errors');
    assert.equal(v.background, 'warning');
    assert.match(v.tooltip, /1 request failed since they last worked: textDocument\/inlineCompletion: ValueError: boom/);
    assert.deepEqual(fixes(s), [{ kind: 'show-log' }, { kind: 'restart' }]);
    s = reduce(s, failing(3, 'textDocument/inlineCompletion: KeyError'));
    assert.match(view(s).tooltip, /3 requests failed .*KeyError/);
    assert.equal(effectivePhase(reduce(s, { type: 'request', delta: 1 })), 'busy', 'a request in flight still spins');
    s = reduce(s, failing(0, ''));
    assert.equal(effectivePhase(s), 'ready');
    assert.equal(view(s).text, '$(sparkle) StarCoder');
    assert.deepEqual(fixes(s), []);
  });

  it('treats missing or nonsense error fields as none (older servers send none)', () => {
    assert.equal(effectivePhase(run(server('ready'))), 'ready');
    const odd: StatusEvent = { type: 'server', params: { state: 'ready', errors: -2, lastError: 'x' } };
    assert.equal(effectivePhase(run(odd)), 'ready');
    const nan: StatusEvent = { type: 'server', params: { state: 'ready', errors: Number.NaN } };
    assert.equal(effectivePhase(run(nan)), 'ready');
    const err: StatusEvent = { type: 'server', params: { state: 'error', errors: 2, lastError: 'x' } };
    assert.equal(effectivePhase(run(err)), 'error', 'a state the user must fix wins');
  });

  it('remembers the model across messages that omit it', () => {
    const s = run(server('ready', 'starcoder2-3b'), { type: 'server', params: { state: 'busy' } });
    assert.equal(s.model, 'starcoder2-3b');
    assert.equal(s.message, '');
  });
});
