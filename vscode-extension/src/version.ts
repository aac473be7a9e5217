/**
 * The server version this extension needs, and the check of what the server says it is
 * (`serverInfo` in the initialize result, which pygls fills from the package version). An older
 * server may lack a request or setting the extension relies on: it would fail quietly, so it is
 * refused with a message that says how to update. Pure (no `vscode`), unit-tested.
 */

/** The oldest starcoder-lsp this extension works with. Raise it with the server feature it needs (CHANGELOG.md). */
export const MIN_SERVER_VERSION = '0.1.0';

/** The name pygls reports for our server (`defaults.SERVER_NAME`). */
export const SERVER_NAME = 'starcoder-lsp';

export interface ServerInfo {
  name: string;
  version?: string;
}

export type VersionCheck =
  | { ok: true; version?: string; note?: string }
  | { ok: false; version: string; message: string };

/**
 * The numeric release of a PEP 440 / semver version ("0.2.0rc1" → [0, 2, 0], pre-release false
 * only when there is no suffix). Undefined when it does not start with a number.
 */
export function parseVersion(text: string): { release: number[]; pre: boolean } | undefined {
  const m = /^\s*v?(\d+(?:\.\d+)*)(.*)$/.exec(text);
  if (!m) return undefined;
  const rest = m[2].trim();
  // `.post1` and `+local` come after the release; `a1`, `b2`, `rc1`, `.dev3`, `-beta` before it.
  const pre = rest !== '' && !/^(\.?post\d*|\+.*)$/i.test(rest);
  return { release: m[1].split('.').map(Number), pre };
}

/** < 0, 0, > 0 as `a` is older than, the same release as, or newer than `b`. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) return Number.NaN;
  const n = Math.max(pa.release.length, pb.release.length);
  for (let i = 0; i < n; i++) {
    const d = (pa.release[i] ?? 0) - (pb.release[i] ?? 0);
    if (d !== 0) return d;
  }
  return (pa.pre ? -1 : 0) - (pb.pre ? -1 : 0); // 0.2.0rc1 is older than 0.2.0
}

/** What to run to get a newer server. */
export const UPDATE_HINT = 'Update it: "Update Server" installs a current one into the extension\'s own environment and restarts; or run `pip install -U starcoder-lsp` (`git pull && make install` in a checkout), then "StarCoder: Restart Server".';

/**
 * Whether the server that answered `initialize` is new enough. A server that reports no version
 * (or another name: a user's own wrapper) is let through with a note for the log.
 */
export function checkServerVersion(info: ServerInfo | undefined, minimum: string = MIN_SERVER_VERSION): VersionCheck {
  if (!info || typeof info.version !== 'string' || !info.version.trim()) {
    return { ok: true, note: 'the server did not report its version (serverInfo); not checked' };
  }
  const version = info.version.trim();
  if (info.name !== SERVER_NAME) return { ok: true, version, note: `the server calls itself "${info.name}", not ${SERVER_NAME}; version not checked` };
  const cmp = compareVersions(version, minimum);
  if (Number.isNaN(cmp)) return { ok: true, version, note: `the server's version "${version}" is not a version number; not checked` };
  if (cmp >= 0) return { ok: true, version };
  return {
    ok: false,
    version,
    message: `starcoder-lsp ${version} is older than this extension needs (${minimum} or newer). ${UPDATE_HINT}`,
  };
}
