/**
 * Edit with an instruction, the parts decidable without VS Code: the recent-instructions list the
 * input box offers, the picker's rows, the server's proposal (`starcoder.edit` with
 * `{"apply": false}`) checked for shape, and the document text once a proposal is applied (the
 * diff's right side). Pure, unit-tested.
 */

/** How many instructions the input box remembers: enough for a working day's repeats. */
export const MAX_RECENT = 10;

export interface Position {
  line: number;
  character: number;
}

export interface Range {
  start: Position;
  end: Position;
}

/** What the server proposes: `text` for `range` of the document at `version`. */
export interface Proposal {
  text: string;
  range: Range;
  version: number;
}

/** The proposal, or why there is none (the server has told the user already, but for `cancelled`). */
export type ProposalResult = { ok: true; proposal: Proposal } | { ok: false; reason: string };

function isPosition(v: unknown): v is Position {
  const p = v as Position | null;
  return !!p && typeof p === 'object' && Number.isInteger(p.line) && Number.isInteger(p.character)
    && p.line >= 0 && p.character >= 0;
}

export function isRange(v: unknown): v is Range {
  const r = v as Range | null;
  return !!r && typeof r === 'object' && isPosition(r.start) && isPosition(r.end);
}

/** The server's answer to `starcoder.edit [uri, range, instruction, {apply: false}]`. */
export function parseProposal(result: unknown): ProposalResult {
  if (!result || typeof result !== 'object') return { ok: false, reason: 'the server gave no answer' };
  const r = result as Record<string, unknown>;
  if (typeof r.reason === 'string' && r.reason) return { ok: false, reason: r.reason };
  if (typeof r.text !== 'string' || !isRange(r.range) || !Number.isInteger(r.version)) {
    return { ok: false, reason: 'the server proposed no edit' };
  }
  return { ok: true, proposal: { text: r.text, range: r.range, version: r.version as number } };
}

/** `instruction` first, then the others without repeats, at most MAX_RECENT. */
export function rememberInstruction(recent: readonly unknown[], instruction: string): string[] {
  const text = instruction.trim();
  const rest = recent.filter((r): r is string => typeof r === 'string' && r.trim() !== '' && r.trim() !== text);
  return (text ? [text, ...rest] : rest).slice(0, MAX_RECENT);
}

/** The picker's rows while the user types: what they typed (when new), then the recent ones. */
export function instructionChoices(recent: readonly string[], typed: string): string[] {
  const text = typed.trim();
  if (!text) return [...recent];
  const lower = text.toLowerCase();
  const matching = recent.filter((r) => r.toLowerCase().includes(lower));
  return matching.some((r) => r === text) ? matching : [text, ...matching];
}

/** Offsets of `range` in `text` (UTF-16, as LSP ranges are for VS Code); \n, \r\n and \r end lines,
 * and a character past a line's end means its end. */
function offsets(text: string, range: Range): [number, number] {
  const lines: Array<[number, number]> = []; // [start, end before the line break]
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c !== '\n' && c !== '\r') continue;
    lines.push([start, i]);
    if (c === '\r' && text[i + 1] === '\n') i++;
    start = i + 1;
  }
  lines.push([start, text.length]);
  const at = (p: Position): number => {
    const line = lines[p.line];
    return line ? Math.min(line[0] + p.character, line[1]) : text.length;
  };
  const a = at(range.start);
  return [a, Math.max(a, at(range.end))];
}

/** The whole document as it reads once `proposal` is applied to `text`. */
export function applyProposal(text: string, proposal: Pick<Proposal, 'text' | 'range'>): string {
  const [a, b] = offsets(text, proposal.range);
  return text.slice(0, a) + proposal.text + text.slice(b);
}

/** The text `range` covers now (to tell "no change proposed"). */
export function textIn(text: string, range: Range): string {
  const [a, b] = offsets(text, range);
  return text.slice(a, b);
}

/** "lines 3-7" for a range (an end at a line's first character does not count that line). */
export function lineSpan(range: Range): string {
  const first = range.start.line;
  const last = range.end.character === 0 && range.end.line > first ? range.end.line - 1 : range.end.line;
  return first === last ? `line ${first + 1}` : `lines ${first + 1}-${last + 1}`;
}
