"""`starcoder-lsp demo`: the whole product once, as an editor would use it.

Pulls the demo model on first run (explicit, with a progress bar), starts the real server as a
subprocess over stdio, opens a sample file, waits for `starcoder/status` ready, asks for an inline
completion at a typing pause and prints it with timings, then runs the "Explain" code action on a
function and prints the explanation.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Union

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from lsp_server import defaults

SAMPLE = '''\
import math


def is_prime(n: int) -> bool:
    """Return True when n is a prime number."""
    if n < 2:
        return False
    for k in range(2, int(math.sqrt(n)) + 1):
        if n % k == 0:
            return False
    return True


def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number, recursively."""
    if n < 2:
        return n
    {CURSOR}


if __name__ == "__main__":
    print([fibonacci(i) for i in range(10) if is_prime(i)])
'''


def fix_code_action_union(client: Any) -> None:
    """Parse `Command | CodeAction` results as editors do.

    lsprotocol's client-side hook reads any object with a `command` key as a Command, so a
    CodeAction that carries a command (what this server sends) would be mis-parsed; editors check
    whether `command` is a string, and so does this.
    """
    conv = client.protocol._converter

    def hook(obj: Any, _: type) -> types.Command | types.CodeAction:
        if isinstance(obj.get("command"), str):
            return conv.structure(obj, types.Command)
        return conv.structure(obj, types.CodeAction)

    conv.register_structure_hook(Union[types.Command, types.CodeAction], hook)  # noqa: UP007


def _cursor(text: str) -> tuple[str, int, int]:
    before, after = text.split("{CURSOR}")
    line = before.count("\n")
    col = len(before) - (before.rfind("\n") + 1)
    return before + after, line, col


async def _drive(model: str, workdir: Path, extra: list[str]) -> int:
    source, line, col = _cursor(SAMPLE)
    path = workdir / "sample.py"
    path.write_text(source, encoding="utf-8")
    uri = path.as_uri()
    client = LanguageClient("starcoder-lsp-demo", "0")
    ready = asyncio.get_running_loop().create_future()

    @client.feature("starcoder/status")
    def status(params: Any) -> None:
        state = getattr(params, "state", None)
        message = getattr(params, "message", "")
        print(f"  status: {state} {message}", file=sys.stderr)
        if state in ("ready", "error", "disabled") and not ready.done():
            ready.set_result((state, message))

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def show(params: types.ShowMessageParams) -> None:
        pass

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def log_message(params: types.LogMessageParams) -> None:
        pass  # the server's stderr already shows its log; an editor puts these in its log panel

    fix_code_action_union(client)
    t0 = time.perf_counter()
    await client.start_io(sys.executable, "-m", "lsp_server", "serve", "--model", model, *extra)
    caps = types.ClientCapabilities(
        text_document=types.TextDocumentClientCapabilities(
            inline_completion=types.InlineCompletionClientCapabilities()),
    )
    await client.initialize_async(types.InitializeParams(
        capabilities=caps, root_uri=workdir.as_uri(), process_id=None))
    client.initialized(types.InitializedParams())
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=uri, language_id="python", version=1, text=source)))
    state, message = await asyncio.wait_for(ready, timeout=600)
    t_ready = time.perf_counter()
    code = 0
    if state != "ready":
        print(f"starcoder-lsp: the server could not load the model: {message}", file=sys.stderr)
        code = 1
    else:
        t1 = time.perf_counter()
        result = await client.text_document_inline_completion_async(types.InlineCompletionParams(
            text_document=types.TextDocumentIdentifier(uri),
            position=types.Position(line, col),
            context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Automatic),
        ))
        t2 = time.perf_counter()
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        text = items[0].insert_text if items else ""
        text = text if isinstance(text, str) else text.value
        lines = source.splitlines()
        print(f"\n--- {path.name}, line {line + 1}, col {col + 1} (inline completion) ---")
        for ln in lines[max(0, line - 4):line]:
            print(f"  {ln}")
        print(f"  {lines[line][:col]}\033[2m{text}\033[0m" if sys.stdout.isatty()
              else f"  {lines[line][:col]}{text}")
        print("---")
        print(f"server start + model load: {t_ready - t0:.2f} s; "
              f"completion: {(t2 - t1) * 1000:.0f} ms")
        if not text:
            print("starcoder-lsp: the model returned no suggestion", file=sys.stderr)
            code = 1
        code = max(code, await _explain(client, uri, source))
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return code


async def _explain(client: LanguageClient, uri: str, source: str) -> int:
    """Ask for the code actions inside is_prime, run "Explain…", print the markdown."""
    line = source.splitlines().index("    for k in range(2, int(math.sqrt(n)) + 1):")
    here = types.Range(types.Position(line, 4), types.Position(line, 4))
    raw = await client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri), range=here,
        context=types.CodeActionContext(diagnostics=[])))
    explain = next((a for a in raw or [] if isinstance(a, types.CodeAction)
                    and a.title.startswith("Explain") and a.command is not None), None)
    if explain is None or explain.command is None:
        print("starcoder-lsp: no Explain code action was offered", file=sys.stderr)
        return 1
    name, arguments = explain.command.command, explain.command.arguments
    t0 = time.perf_counter()
    markdown = await client.workspace_execute_command_async(
        types.ExecuteCommandParams(command=name, arguments=arguments))
    dt = time.perf_counter() - t0
    print(f"\n--- {explain.title} (code action -> {name}) ---\n{markdown}\n---")
    print(f"explanation: {dt:.1f} s")
    return 0 if isinstance(markdown, str) and markdown.strip() else 1


def run(args: argparse.Namespace) -> int:
    from lsp_server.models import store
    from lsp_server.models.catalog import load_catalog
    from lsp_server.models.commands import pull_with_progress
    from lsp_server.models.spec import CatalogError

    model = args.model or defaults.DEFAULT_MODEL
    try:
        spec = load_catalog(models_file=args.models_file).resolve(model)
    except CatalogError as exc:
        print(f"starcoder-lsp: {exc}", file=sys.stderr)
        return 1
    print(f"model: {spec.name} ({spec.source.describe()})", file=sys.stderr)
    try:
        pull_with_progress(spec)
    except store.PullError as exc:
        print(f"starcoder-lsp: {exc}", file=sys.stderr)
        return 1
    extra: list[str] = []
    if args.models_file:
        extra += ["--models-file", str(args.models_file)]
    if args.threads:
        extra += ["--threads", str(args.threads)]
    with tempfile.TemporaryDirectory(prefix="starcoder-demo-") as tmp:
        return asyncio.run(_drive(spec.name, Path(tmp), extra))
