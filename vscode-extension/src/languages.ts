/**
 * Per-language enablement: `starcoder.enableLanguages` is a map from language id to boolean, with
 * `"*"` for every other language (the shape Copilot users know). Pure, unit-tested.
 */

export type LanguageMap = Record<string, boolean>;

export const DEFAULT_LANGUAGES: LanguageMap = {
  '*': true,
  plaintext: false,
  markdown: false,
  scminput: false,
};

function asMap(value: unknown): LanguageMap {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return {};
  const out: LanguageMap = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v === 'boolean') out[k] = v;
  }
  return out;
}

/** Whether inline completions are wanted for `languageId` (default: yes). */
export function isLanguageEnabled(value: unknown, languageId: string): boolean {
  const map = asMap(value);
  if (languageId in map) return map[languageId];
  if ('*' in map) return map['*'];
  return true;
}

/**
 * A copy of the map with `languageId` switched on or off (for the toggle in the status menu). The
 * entry is always written explicitly: VS Code merges object settings with their defaults, so a
 * removed key would bring back the default (e.g. `markdown: false`).
 */
export function withLanguage(value: unknown, languageId: string, enabled: boolean): LanguageMap {
  return { ...asMap(value), [languageId]: enabled };
}
