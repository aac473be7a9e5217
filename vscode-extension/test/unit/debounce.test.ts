import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_WAIT_MS, MIN_SAMPLES, RATE, TYPING_GAP_MAX_MS, TypingPace, sleep } from '../../src/debounce';

/** A pace that saw `keys` keys `every` ms apart and `answers` answers taking `answerMs`. */
function typed(every: number, answerMs: number, keys = 10): { pace: TypingPace; t: number } {
  const pace = new TypingPace();
  let t = 1_000_000;
  for (let i = 0; i < keys; i++, t += every) {
    pace.wait(t);
    pace.answered(answerMs);
  }
  return { pace, t };
}

describe('the adaptive debounce', () => {
  it('asks at once until it knows the pace', () => {
    const pace = new TypingPace();
    for (let i = 0; i < MIN_SAMPLES; i++) assert.equal(pace.wait(1000 + i * 100), 0);
  });

  it('never waits when the server answers slower than the user types (a CPU): no added latency', () => {
    const { pace, t } = typed(150, 240); // this machine's replay: keys every 150 ms, p50 0.24 s
    assert.equal(pace.wait(t), 0);
  });

  it('spends what a fast server leaves of 1.5 key intervals waiting (a GPU)', () => {
    const { pace, t } = typed(150, 40);
    assert.equal(pace.wait(t), RATE * 150 - 40);
  });

  it('judges the server by its slowest recent answer, not by the cache hits while typing', () => {
    const { pace, t } = typed(150, 5); // typed-ahead hits answer in milliseconds...
    pace.answered(400); // ...the pause's answer ran the model
    assert.equal(pace.wait(t), 0);
  });

  it('caps the wait for slow typists, and a pause is not part of the pace', () => {
    const { pace, t } = typed(900, 10);
    assert.equal(pace.wait(t), MAX_WAIT_MS);
    const fast = typed(100, 50);
    fast.pace.wait(fast.t + TYPING_GAP_MAX_MS * 5); // a long pause, then typing on
    assert.equal(fast.pace.wait(fast.t + TYPING_GAP_MAX_MS * 5 + 100), RATE * 100 - 50);
  });

  it('takes a fixed setting over the pace, and 0 turns it off', () => {
    const { pace, t } = typed(150, 40);
    assert.equal(pace.wait(t, 0), 0);
    assert.equal(pace.wait(t + 150, 120), 120);
    assert.equal(pace.wait(t + 300, null), RATE * 150 - 40);
  });

  it('ignores nonsense answer times', () => {
    const { pace, t } = typed(150, 40);
    pace.answered(Number.NaN);
    pace.answered(-5);
    assert.equal(pace.wait(t), RATE * 150 - 40);
    assert.match(pace.describe(), /keys every 150 ms, the slowest recent answer 40 ms/);
  });
});

describe('waiting before a request', () => {
  function token(cancelled = false) {
    const listeners: (() => void)[] = [];
    return {
      isCancellationRequested: cancelled,
      onCancellationRequested(l: () => void) {
        listeners.push(l);
        return { dispose: () => listeners.splice(listeners.indexOf(l), 1) };
      },
      cancel() {
        this.isCancellationRequested = true;
        for (const l of [...listeners]) l();
      },
      listeners,
    };
  }

  it('resolves true after the wait, its listener gone', async () => {
    const tok = token();
    assert.equal(await sleep(5, tok), true);
    assert.equal(tok.listeners.length, 0);
  });

  it('resolves false at once when a newer key cancels it', async () => {
    const tok = token();
    const started = Date.now();
    const waiting = sleep(10_000, tok);
    tok.cancel();
    assert.equal(await waiting, false);
    assert.ok(Date.now() - started < 1000);
    assert.equal(await sleep(10_000, token(true)), false);
  });
});
