/**
 * "StarCoder: Edit Selection…": the instruction from an input box that remembers recent ones, the
 * server's proposal (`starcoder.edit` with `{"apply": false}`), a diff of it, and Accept / Discard
 * before anything lands. Accept applies the proposal only to the document version it was made for:
 * typing meanwhile makes it stale, and a stale proposal is refused, never applied over the typing.
 * The server's preset code actions ("Edit: Fix bugs"…) come through here too (see the middleware).
 */

import * as path from 'node:path';
import * as vscode from 'vscode';
import { ExecuteCommandRequest, type LanguageClient, ResponseError } from 'vscode-languageclient/node';
import { applyProposal, instructionChoices, isRange, lineSpan, parseProposal, rememberInstruction, textIn, type Proposal } from '../edits';
import { VirtualDocuments } from './virtualDocs';

/** Contract names (DESIGN.md; the server's protocol/edit.py). */
export const EDIT_COMMAND = 'starcoder.edit';
export const EDIT_SELECTION_COMMAND = 'starcoder.editSelection';
const RECENT_KEY = 'starcoder.recentInstructions';
const ACCEPT = 'Accept';
const DISCARD = 'Discard';
const REQUEST_CANCELLED = -32800;

type Decision = 'accept' | 'discard';

export class EditFlow {
  readonly proposals = new VirtualDocuments('starcoder-proposal');

  constructor(
    private readonly state: vscode.Memento,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  /** The command: with [uri, range] from the server's "Edit … with StarCoder…" action, else the
   * active editor's selection (empty: the server takes the block around the cursor). */
  async editSelection(client: LanguageClient, uriArg?: unknown, rangeArg?: unknown): Promise<void> {
    let document: vscode.TextDocument;
    let range: vscode.Range;
    if (typeof uriArg === 'string' && isRange(rangeArg)) {
      document = await vscode.workspace.openTextDocument(client.protocol2CodeConverter.asUri(uriArg));
      range = client.protocol2CodeConverter.asRange(rangeArg);
    } else {
      const editor = vscode.window.activeTextEditor;
      if (!editor) {
        void vscode.window.showInformationMessage('StarCoder: open a file and select the code to edit.');
        return;
      }
      document = editor.document;
      range = editor.selection;
    }
    const instruction = await this.askInstruction();
    if (!instruction) return;
    await this.propose(client, document, range, instruction);
  }

  /** The server's preset actions send [uri, range, instruction]: proposed and previewed here too. */
  async fromArguments(client: LanguageClient, args: unknown[]): Promise<unknown> {
    const [uri, range, instruction] = args;
    if (typeof uri !== 'string' || !isRange(range) || typeof instruction !== 'string') return undefined;
    const document = await vscode.workspace.openTextDocument(client.protocol2CodeConverter.asUri(uri));
    return this.propose(client, document, client.protocol2CodeConverter.asRange(range), instruction);
  }

  private async askInstruction(): Promise<string | undefined> {
    const recent = rememberInstruction(this.state.get<unknown[]>(RECENT_KEY) ?? [], '');
    const qp = vscode.window.createQuickPick();
    qp.title = 'StarCoder: Edit Selection';
    qp.placeholder = 'What should change? (e.g. "Fix bugs", "Add type hints", "Handle an empty list")';
    qp.matchOnDescription = false;
    const rows = (typed: string): vscode.QuickPickItem[] =>
      instructionChoices(recent, typed).map((label) => ({ label, description: recent.includes(label) ? 'recent' : undefined, alwaysShow: true }));
    qp.items = rows('');
    qp.onDidChangeValue((value) => (qp.items = rows(value)));
    qp.show();
    const picked = await new Promise<string | undefined>((resolve) => {
      qp.onDidAccept(() => resolve(qp.selectedItems[0]?.label ?? (qp.value.trim() || undefined)));
      qp.onDidHide(() => resolve(undefined));
    });
    qp.dispose();
    if (picked) await this.state.update(RECENT_KEY, rememberInstruction(recent, picked));
    return picked;
  }

  /** Ask the server for the edit, show it as a diff, apply it on Accept. Returns what the command
   * returns to a caller: {applied, text} (and `reason` when nothing was applied). */
  async propose(client: LanguageClient, document: vscode.TextDocument, range: vscode.Range,
    instruction: string): Promise<{ applied: boolean; text: string; reason?: string }> {
    const args = [client.code2ProtocolConverter.asUri(document.uri), client.code2ProtocolConverter.asRange(range), instruction, { apply: false }];
    let result: unknown;
    try {
      result = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `StarCoder: ${instruction}`, cancellable: true },
        (_, token) => client.sendRequest(ExecuteCommandRequest.type, { command: EDIT_COMMAND, arguments: args }, token),
      );
    } catch (err) {
      if (err instanceof ResponseError && err.code === REQUEST_CANCELLED) return { applied: false, text: '', reason: 'cancelled' };
      const text = err instanceof Error ? err.message : String(err);
      void vscode.window.showErrorMessage(`StarCoder: the edit failed: ${text}`);
      return { applied: false, text: '', reason: text };
    }
    const parsed = parseProposal(result);
    if (!parsed.ok) {
      this.log.info(`edit not proposed: ${parsed.reason}`); // the server has shown why
      return { applied: false, text: '', reason: parsed.reason };
    }
    const proposal = parsed.proposal;
    if (textIn(document.getText(), proposal.range) === proposal.text) {
      void vscode.window.showInformationMessage('StarCoder: the model proposed no change.');
      return { applied: false, text: proposal.text, reason: 'no change' };
    }
    if (document.version !== proposal.version) return this.stale(proposal); // typed before it came
    const decision = await this.review(document, proposal, instruction);
    if (decision !== 'accept') return { applied: false, text: proposal.text, reason: 'discarded' };
    return this.apply(client, document, proposal);
  }

  /** The proposal beside the document as a diff, until the user accepts or discards it. */
  private async review(document: vscode.TextDocument, proposal: Proposal, instruction: string): Promise<Decision> {
    const base = path.basename(document.uri.path) || 'selection';
    const right = this.proposals.add(base, applyProposal(document.getText(), proposal));
    await vscode.commands.executeCommand('vscode.diff', document.uri, right, `${base} ↔ StarCoder: ${instruction}`, { preview: true });
    const pick = await vscode.window.showInformationMessage(`StarCoder proposes an edit of ${base} ${lineSpan(proposal.range)}.`, ACCEPT, DISCARD);
    await this.closeDiff(right);
    await vscode.window.showTextDocument(document, { preview: false });
    return pick === ACCEPT ? 'accept' : 'discard';
  }

  private async closeDiff(right: vscode.Uri): Promise<void> {
    const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs).filter(
      (t) => t.input instanceof vscode.TabInputTextDiff && t.input.modified.toString() === right.toString());
    if (tabs.length) await vscode.window.tabGroups.close(tabs);
  }

  private stale(proposal: Proposal): { applied: boolean; text: string; reason: string } {
    const reason = 'The document changed since the edit was proposed: not applied.';
    void vscode.window.showWarningMessage(`StarCoder: ${reason}`);
    return { applied: false, text: proposal.text, reason };
  }

  private async apply(client: LanguageClient, document: vscode.TextDocument, proposal: Proposal
  ): Promise<{ applied: boolean; text: string; reason?: string }> {
    if (document.version !== proposal.version) return this.stale(proposal);
    const edit = new vscode.WorkspaceEdit();
    edit.replace(document.uri, client.protocol2CodeConverter.asRange(proposal.range), proposal.text);
    const applied = await vscode.workspace.applyEdit(edit);
    if (!applied) {
      void vscode.window.showWarningMessage('StarCoder: VS Code did not apply the edit.');
      return { applied: false, text: proposal.text, reason: 'the editor refused the edit' };
    }
    return { applied: true, text: proposal.text };
  }
}
