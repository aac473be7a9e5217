/**
 * The status bar's state machine: client lifecycle + `starcoder/status` + `$/progress` + in-flight
 * requests → one state → what the status bar item shows. Pure (no `vscode`), unit-tested.
 */

/** States the server reports in `starcoder/status` (DESIGN.md contract). */
export const SERVER_STATES = ['loading', 'ready', 'busy', 'error', 'disabled', 'unloaded'] as const;
export type ServerState = (typeof SERVER_STATES)[number];

/**
 * Server states plus the client-side ones (before the server can speak, or after it stopped), plus
 * `errors`: the server is `ready` but its last requests failed for an internal reason.
 */
export type Phase = ServerState | 'starting' | 'stopped' | 'missing' | 'outdated' | 'installing' | 'errors';

/**
 * `starcoder/status` params. `errors` (requests that failed since that kind of request last worked)
 * and `lastError` (the cause) come with every status; 0 / '' when all is well (older servers omit
 * them). The state stays `ready` while requests fail: `error` is for what the user must fix.
 */
export interface StatusParams {
  state: string;
  model?: string;
  message?: string;
  errors?: number;
  lastError?: string;
}

export interface StatusState {
  phase: Phase;
  model: string;
  message: string;
  /** Work-done progress of a load or pull, 0–100, when the server reports one. */
  percent?: number;
  progressMessage?: string;
  /** Completion requests the editor is waiting on (the extension counts them in its middleware). */
  inflight: number;
  /** Requests that failed for an internal reason since they last worked, and the latest cause. */
  errors: number;
  lastError: string;
}

export type StatusEvent =
  | { type: 'starting' }
  | { type: 'started' }
  | { type: 'stopped'; message?: string }
  | { type: 'failed'; message: string }
  | { type: 'missing'; message: string }
  /** The server answered, but is older than this extension needs (src/version.ts); it was stopped. */
  | { type: 'outdated'; message: string }
  /** The extension is installing the server into its own venv (src/editor/install.ts); `message` is the step. */
  | { type: 'installing'; message: string }
  | { type: 'server'; params: StatusParams }
  | { type: 'progress'; kind: 'begin' | 'report' | 'end'; percentage?: number; message?: string }
  | { type: 'request'; delta: 1 | -1 };

export const INITIAL: StatusState = { phase: 'starting', model: '', message: '', inflight: 0, errors: 0, lastError: '' };

export function isServerState(s: unknown): s is ServerState {
  return typeof s === 'string' && (SERVER_STATES as readonly string[]).includes(s);
}

export function reduce(s: StatusState, e: StatusEvent): StatusState {
  switch (e.type) {
    case 'starting':
      return { ...INITIAL, model: s.model, message: 'starting the server' };
    case 'started':
      // The server reports its own state right after `initialized`; until then it is loading.
      return s.phase === 'starting' ? { ...s, phase: 'loading', message: 'server started' } : s;
    case 'stopped':
      return { ...s, phase: 'stopped', message: e.message ?? 'the server is not running', inflight: 0, percent: undefined, progressMessage: undefined };
    case 'failed':
      return { ...s, phase: 'error', message: e.message, inflight: 0, percent: undefined, progressMessage: undefined };
    case 'missing':
      return { ...s, phase: 'missing', message: e.message, inflight: 0, percent: undefined, progressMessage: undefined };
    case 'outdated':
      return { ...s, phase: 'outdated', message: e.message, inflight: 0, percent: undefined, progressMessage: undefined };
    case 'installing':
      return { ...s, phase: 'installing', message: e.message, inflight: 0, percent: undefined, progressMessage: undefined };
    case 'server': {
      if (s.phase === 'stopped' || s.phase === 'missing' || s.phase === 'outdated' || s.phase === 'installing') return s; // late message from a dead server
      const { state, model, message, errors, lastError } = e.params;
      const next: StatusState = {
        ...s,
        model: typeof model === 'string' && model ? model : s.model,
        message: typeof message === 'string' ? message : '',
        errors: typeof errors === 'number' && Number.isFinite(errors) && errors > 0 ? Math.floor(errors) : 0,
        lastError: typeof lastError === 'string' ? lastError : '',
      };
      if (!isServerState(state)) return next; // unknown state from a newer server: keep the phase
      next.phase = state;
      if (state !== 'loading') {
        next.percent = undefined;
        next.progressMessage = undefined;
      }
      return next;
    }
    case 'progress':
      if (e.kind === 'end') return { ...s, percent: undefined, progressMessage: undefined };
      return {
        ...s,
        percent: typeof e.percentage === 'number' ? Math.max(0, Math.min(100, Math.round(e.percentage))) : s.percent,
        progressMessage: e.message ?? s.progressMessage,
      };
    case 'request':
      return { ...s, inflight: Math.max(0, s.inflight + e.delta) };
  }
}

/** The state a user sees: `ready` with a request in flight shows as busy; `ready` after failed requests as errors. */
export function effectivePhase(s: StatusState): Phase {
  if (s.phase !== 'ready') return s.phase;
  if (s.inflight > 0) return 'busy';
  return s.errors > 0 ? 'errors' : 'ready';
}

export interface StatusView {
  text: string;
  tooltip: string;
  background?: 'error' | 'warning';
}

export interface ViewContext {
  /** The active editor's language, when there is one. */
  languageId?: string;
  /** Whether `starcoder.enableLanguages` allows that language. */
  languageEnabled?: boolean;
  /** The server's one-line usage summary (`starcoder/stats` `summary`), shown when ready. */
  usage?: string;
}

const LABEL = 'StarCoder';

export function view(s: StatusState, ctx: ViewContext = {}): StatusView {
  const model = s.model ? ` · ${s.model}` : '';
  const detail = s.message ? `\n${s.message}` : '';
  const click = '\n\nClick for actions.';
  const phase = effectivePhase(s);
  switch (phase) {
    case 'starting':
      return { text: `$(loading~spin) ${LABEL}`, tooltip: `starcoder-lsp: starting${detail}${click}` };
    case 'loading': {
      const pct = s.percent !== undefined ? ` ${s.percent}%` : '';
      const what = s.progressMessage ?? s.message;
      return {
        text: `$(loading~spin) ${LABEL}${pct}`,
        tooltip: `starcoder-lsp: loading${model}${pct}${what ? `\n${what}` : ''}${click}`,
      };
    }
    case 'busy':
      return { text: `$(loading~spin) ${LABEL}`, tooltip: `starcoder-lsp: generating${model}${click}` };
    case 'ready':
      if (ctx.languageId && ctx.languageEnabled === false) {
        return {
          text: `$(circle-slash) ${LABEL}`,
          tooltip: `starcoder-lsp: ready${model}\nCompletions are off for ${ctx.languageId} (starcoder.enableLanguages).${click}`,
        };
      }
      return { text: `$(sparkle) ${LABEL}`, tooltip: `starcoder-lsp: ready${model}${detail}${ctx.usage ? `\n${ctx.usage}` : ''}${click}` };
    case 'errors': {
      const what = s.errors === 1 ? '1 request' : `${s.errors} requests`;
      const cause = s.lastError ? `: ${s.lastError}` : '';
      return {
        text: `$(warning) ${LABEL} errors`,
        tooltip: `starcoder-lsp: errors${model}\n${what} failed since they last worked${cause}\nSuggestions may be missing until a request works again; the log has the details.${click}`,
        background: 'warning',
      };
    }
    case 'unloaded':
      return {
        text: `$(debug-pause) ${LABEL}`,
        tooltip: `starcoder-lsp: model unloaded while idle${model}; it reloads on the next request${detail}${click}`,
      };
    case 'disabled':
      return { text: `$(circle-slash) ${LABEL}`, tooltip: `starcoder-lsp: completions are turned off${detail}${click}` };
    case 'error':
      return { text: `$(error) ${LABEL}`, tooltip: `starcoder-lsp: error${model}${detail}${click}`, background: 'error' };
    case 'stopped':
      return { text: `$(debug-disconnect) ${LABEL}`, tooltip: `starcoder-lsp: stopped${detail}${click}`, background: 'warning' };
    case 'missing':
      return { text: `$(warning) ${LABEL}`, tooltip: `starcoder-lsp: server not found${detail}${click}`, background: 'warning' };
    case 'installing':
      return { text: `$(loading~spin) ${LABEL} install`, tooltip: `starcoder-lsp: installing the server${detail}${click}` };
    case 'outdated':
      return { text: `$(error) ${LABEL} update`, tooltip: `starcoder-lsp: server too old${detail}${click}`, background: 'error' };
  }
}

/** What the status menu should offer as a fix for the current state. */
export type Fix =
  | { kind: 'pull-model'; model: string }
  | { kind: 'choose-server' }
  /** Install the server into the extension's own venv ("update" when the one found is too old). */
  | { kind: 'install-server'; update: boolean }
  | { kind: 'select-model' }
  | { kind: 'show-log' }
  | { kind: 'restart' };

export function fixes(s: StatusState): Fix[] {
  if (effectivePhase(s) === 'errors') return [{ kind: 'show-log' }, { kind: 'restart' }];
  switch (s.phase) {
    case 'missing':
      return [{ kind: 'install-server', update: false }, { kind: 'choose-server' }];
    case 'outdated':
      return [{ kind: 'install-server', update: true }, { kind: 'choose-server' }];
    case 'stopped':
      return [{ kind: 'restart' }, { kind: 'show-log' }];
    case 'error': {
      const out: Fix[] = [];
      const pull = /models pull ([^\s`'"]+)/.exec(s.message);
      if (pull) out.push({ kind: 'pull-model', model: pull[1] });
      else if (/not downloaded/i.test(s.message) && s.model) out.push({ kind: 'pull-model', model: s.model });
      if (/model|gguf|catalog/i.test(s.message)) out.push({ kind: 'select-model' });
      out.push({ kind: 'show-log' }, { kind: 'restart' });
      return out;
    }
    default:
      return [];
  }
}
