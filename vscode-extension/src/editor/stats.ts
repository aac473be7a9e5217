/**
 * "StarCoder: Show Stats": the server's local completion stats (never sent anywhere) as a markdown
 * preview, and its one-line summary for the status tooltip, pulled at most every few seconds.
 */

import * as vscode from 'vscode';
import { ExecuteCommandRequest, type LanguageClient } from 'vscode-languageclient/node';
import type { VirtualDocuments } from './virtualDocs';

/** The server command that returns the markdown report. */
export const STATS_COMMAND = 'starcoder.stats';
/** The request whose `summary` field the tooltip shows. */
const STATS_REQUEST = 'starcoder/stats';
/** Tooltip refreshes at most this often: one small request, never one per keystroke. */
const REFRESH_MS = 5000;

export class StatsView {
  private last = 0;
  summary: string | undefined;

  constructor(private readonly docs: VirtualDocuments, private readonly log: vscode.LogOutputChannel,
              private readonly changed: () => void) {}

  async show(client: LanguageClient): Promise<void> {
    let report: unknown;
    try {
      report = await client.sendRequest(ExecuteCommandRequest.type, { command: STATS_COMMAND, arguments: [] });
    } catch (err) {
      void vscode.window.showErrorMessage(`StarCoder: stats are not available: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    if (typeof report !== 'string') return;
    const uri = this.docs.add('StarCoder Stats', report, '.md');
    await vscode.commands.executeCommand('markdown.showPreview', uri);
  }

  /** After a suggestion was asked for: refresh the summary when the last one is old. */
  refresh(client: LanguageClient): void {
    const now = Date.now();
    if (now - this.last < REFRESH_MS) return;
    this.last = now;
    client.sendRequest(STATS_REQUEST, {}).then((stats: unknown) => {
      const summary = (stats as { summary?: unknown } | null)?.summary;
      if (typeof summary === 'string' && summary !== this.summary) {
        this.summary = summary;
        this.changed();
      }
    }, (err: unknown) => this.log.debug(`starcoder/stats failed: ${String(err)}`));
  }
}
