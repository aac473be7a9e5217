"""`starcoder-lsp demo`: the whole product once, as an editor would use it.

Pulls the demo model on first run (explicit, with a progress bar), starts the real server as a
subprocess over stdio, opens a sample file, waits for `starcoder/status` ready, asks for an inline
completion at a typing pause, and prints the suggestion with timings.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return code


def run(args: argparse.Namespace) -> int:
    from lsp_server.models import store
    from lsp_server.models.catalog import CatalogError, load_catalog
    from lsp_server.models.commands import pull_with_progress

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
