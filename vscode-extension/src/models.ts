/**
 * `starcoder-lsp models list` → entries for the model picker. Pure, unit-tested.
 *
 * The table is left-aligned columns under a header row (NAME FAMILY PARAMS SIZE SOURCE LOCAL); the
 * default model's name ends in ` *`; a model without FIM shows `(no FIM)` in FAMILY. Cells may
 * contain spaces, so columns are cut at the header's word positions, not split on whitespace.
 */

export interface ModelEntry {
  name: string;
  isDefault: boolean;
  family: string;
  fim: boolean;
  params: string;
  size: string;
  source: string;
  /** `verified`, `present (unverified)`, `missing` (a path that is gone) or `-` (not downloaded). */
  local: string;
  downloaded: boolean;
}

const COLUMNS = ['NAME', 'FAMILY', 'PARAMS', 'SIZE', 'SOURCE', 'LOCAL'] as const;

export function parseModelsTable(text: string): ModelEntry[] {
  const lines = text.split(/\r?\n/);
  const headerIndex = lines.findIndex((l) => /^NAME\s+FAMILY\b/.test(l));
  if (headerIndex < 0) throw new Error('unexpected `models list` output: no NAME/FAMILY header');
  const header = lines[headerIndex];
  const starts = new Map<string, number>();
  for (const m of header.matchAll(/\S+/g)) starts.set(m[0], m.index ?? 0);
  const cols = COLUMNS.filter((c) => starts.has(c));
  const cut = (line: string, col: (typeof COLUMNS)[number]): string => {
    const i = cols.indexOf(col);
    if (i < 0) return '';
    const from = starts.get(col) ?? 0;
    const to = i + 1 < cols.length ? starts.get(cols[i + 1]) : undefined;
    return line.slice(from, to).trim();
  };
  const out: ModelEntry[] = [];
  for (const line of lines.slice(headerIndex + 1)) {
    if (line.trim() === '') break;
    let name = cut(line, 'NAME');
    const isDefault = /\s\*$/.test(name);
    if (isDefault) name = name.replace(/\s\*$/, '');
    if (!name) continue;
    const family = cut(line, 'FAMILY');
    const local = cut(line, 'LOCAL');
    out.push({
      name,
      isDefault,
      family: family.replace(/\s*\(no FIM\)$/, ''),
      fim: !/\(no FIM\)/.test(family),
      params: cut(line, 'PARAMS'),
      size: cut(line, 'SIZE'),
      source: cut(line, 'SOURCE'),
      local,
      downloaded: local === 'verified' || local.startsWith('present'),
    });
  }
  return out;
}

/** `starcoder-lsp models pull` progress on stderr (tqdm): the last percentage in a chunk. */
export function lastPercent(chunk: string): number | undefined {
  const all = [...chunk.matchAll(/(\d{1,3})%/g)];
  if (all.length === 0) return undefined;
  const n = Number(all[all.length - 1][1]);
  return n >= 0 && n <= 100 ? n : undefined;
}
