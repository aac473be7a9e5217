/**
 * Read-only documents the extension makes up (explanations, proposed edits), served under their
 * own URI scheme so VS Code shows them in a preview or a diff and never offers to save them.
 */

import * as vscode from 'vscode';

/** How many made-up documents are kept: older ones are long closed. */
const KEEP = 20;

export class VirtualDocuments implements vscode.TextDocumentContentProvider {
  private readonly docs = new Map<string, string>();
  private readonly emitter = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.emitter.event;
  private counter = 0;

  constructor(readonly scheme: string) {}

  register(): vscode.Disposable {
    return vscode.workspace.registerTextDocumentContentProvider(this.scheme, this);
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.docs.get(uri.toString()) ?? '';
  }

  /** A new document named `title` (made safe as a file name; `extension` kept) holding `text`. */
  add(title: string, text: string, extension = ''): vscode.Uri {
    const safe = title.replace(/[\\/:*?"<>|]/g, '_');
    const uri = vscode.Uri.from({ scheme: this.scheme, path: `/${safe}${extension}`, query: String(++this.counter) });
    this.docs.set(uri.toString(), text);
    if (this.docs.size > KEEP) this.docs.delete(this.docs.keys().next().value as string);
    return uri;
  }
}
