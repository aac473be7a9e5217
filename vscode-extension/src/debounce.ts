/**
 * Adaptive debounce for automatic inline requests (Tabby's approach), pure so it is unit-tested.
 *
 * A suggestion is expected within about `RATE` of the user's own key intervals after they stop.
 * Whatever of that time even the slowest recent answer leaves is spent waiting before asking: a
 * key that comes during the wait cancels the request before it costs the server anything. The
 * slowest, not the median: while typing, the answers that arrive before the next key are mostly
 * typed-ahead cache hits (milliseconds); the pause's answer is the one that runs the model. A
 * server slower than the typing (a CPU) so gets no wait at all and the pause is never longer: the
 * typed keys' requests keep its KV cache warm as they arrive (benchmarks/README.md, the replay
 * with --debounce-ms: a fixed 100 ms wait raised its p50 from 2.1 s to 3.7 s on 2 cores).
 */

/** Between two requests more than this apart the user paused: not part of their typing pace. */
export const TYPING_GAP_MAX_MS = 1000;
/** Recent key intervals and answer times kept: the user's pace and the server's speed now. */
export const WINDOW = 20;
/** No wait until this many intervals and answers are known (the first requests go at once). */
export const MIN_SAMPLES = 5;
/** The suggestion may come this many key intervals after the last key (Tabby: 1.5-3). */
export const RATE = 1.5;
/** Never wait longer than this, however slow the typing: a pause must feel answered. */
export const MAX_WAIT_MS = 300;

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

function push(values: number[], value: number): void {
  values.push(value);
  if (values.length > WINDOW) values.shift();
}

export class TypingPace {
  private last: number | undefined;
  private readonly intervals: number[] = [];
  private readonly answers: number[] = [];

  /** An automatic request at `now` (ms): the wait before sending it. `fixed` (a setting) wins. */
  wait(now: number, fixed?: number | null): number {
    if (this.last !== undefined) {
      const gap = now - this.last;
      if (gap > 0 && gap <= TYPING_GAP_MAX_MS) push(this.intervals, gap);
    }
    this.last = now;
    if (typeof fixed === 'number' && Number.isFinite(fixed)) return Math.max(0, fixed);
    if (this.intervals.length < MIN_SAMPLES || this.answers.length < MIN_SAMPLES) return 0;
    const budget = RATE * median(this.intervals) - this.slowest();
    return Math.round(Math.max(0, Math.min(MAX_WAIT_MS, budget)));
  }

  /** A request was answered (not cancelled) `ms` after it was sent. */
  answered(ms: number): void {
    if (ms >= 0 && Number.isFinite(ms)) push(this.answers, ms);
  }

  /** For the log: the pace and answer time the wait comes from. */
  describe(): string {
    const ms = (v: number | undefined): string => (v === undefined ? 'unknown' : `${Math.round(v)} ms`);
    const pace = this.intervals.length ? median(this.intervals) : undefined;
    return `keys every ${ms(pace)}, the slowest recent answer ${ms(this.answers.length ? this.slowest() : undefined)}`;
  }

  private slowest(): number {
    return Math.max(...this.answers);
  }
}

/** What `sleep` needs of a vscode.CancellationToken. */
export interface Cancellation {
  readonly isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): { dispose(): void };
}

/** True after `ms`; false as soon as the request is cancelled (a newer key came). */
export function sleep(ms: number, token: Cancellation): Promise<boolean> {
  if (token.isCancellationRequested) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      sub.dispose();
      resolve(true);
    }, ms);
    const sub = token.onCancellationRequested(() => {
      clearTimeout(timer);
      sub.dispose();
      resolve(false);
    });
  });
}
