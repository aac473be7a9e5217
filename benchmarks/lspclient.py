"""A small async driver for the real server over stdio, shared by every benchmark.

Benchmarks must measure what an editor gets, so they talk LSP to `python -m lsp_server serve` as a
subprocess (never call the pipeline in-process) and apply the returned item the way an editor
applies it (`apply_inline`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from lsp_server import defaults

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# A cold load of a 0.5B model takes seconds; a 7B from a slow disk can take minutes.
READY_TIMEOUT_S = 600.0
# A completion is ~1 s here; far longer means the server is stuck, not slow.
REQUEST_TIMEOUT_S = 300.0
SHUTDOWN_TIMEOUT_S = 30.0

_EOL = re.compile(r"\r\n|\r|\n")  # LSP's line terminators (str.splitlines knows more)

LANGUAGE_IDS = {
    ".py": "python", ".ts": "typescript", ".tsx": "typescriptreact", ".js": "javascript",
    ".jsx": "javascriptreact", ".go": "go", ".rs": "rust", ".java": "java", ".c": "c",
    ".cpp": "cpp", ".rb": "ruby", ".kt": "kotlin", ".cs": "csharp",
}


def language_of(path: str) -> str:
    """The LSP languageId a VS Code-like client would send for `path`."""
    return LANGUAGE_IDS.get(Path(path).suffix.lower(), "plaintext")


def resolve_model(name: str | None) -> tuple[str, Path]:
    """(catalogue name or path, verified local GGUF); pulls explicitly because the server won't."""
    from lsp_server.models import store
    from lsp_server.models.catalog import load_catalog

    spec = load_catalog().resolve(name or defaults.DEFAULT_MODEL)
    return (name or spec.name), store.ensure(spec)


def timestamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def write_results(name: str, stamp: str, data: Any) -> Path:
    """Write a benchmark's JSON to benchmarks/results/NAME-STAMP.json and return the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{name}-{stamp}.json"
    out.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return out


# --- positions and edits, as an editor computes them ---------------------------------------------
def _utf16_to_index(line: str, units: int) -> int:
    """Code-point index of a UTF-16 column (clamped to the line, as LSP requires)."""
    n = 0
    for i, ch in enumerate(line):
        if n >= units:
            return i
        n += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def offset_at(text: str, line: int, character: int) -> int:
    """String offset of an LSP position (UTF-16 columns) in `text`."""
    starts = [0] + [m.end() for m in _EOL.finditer(text)]
    if line >= len(starts):
        return len(text)
    start = starts[line]
    end = _EOL.search(text, start)
    line_text = text[start : end.start() if end else len(text)]
    return start + _utf16_to_index(line_text, character)


def position_at(text: str, offset: int) -> tuple[int, int]:
    """LSP (line, UTF-16 column) of a string offset — e.g. the end of a FIM prefix."""
    before = text[:offset]
    starts = [0] + [m.end() for m in _EOL.finditer(before)]
    head = before[starts[-1] :]
    return len(starts) - 1, len(head.encode("utf-16-le")) // 2


def item_text(item: types.InlineCompletionItem) -> str:
    text = item.insert_text
    return text if isinstance(text, str) else text.value


def apply_inline(doc: str, line: int, character: int, item: types.InlineCompletionItem) -> str:
    """The document after accepting `item` requested at (line, character).

    Without a range the item inserts at the cursor; with one it replaces that range (which may be
    empty, or cover text on the cursor line that the suggestion retypes).
    """
    if item.range is None:
        start = end = offset_at(doc, line, character)
    else:
        start = offset_at(doc, item.range.start.line, item.range.start.character)
        end = offset_at(doc, item.range.end.line, item.range.end.character)
    return doc[:start] + item_text(item) + doc[end:]


# --- the driver -----------------------------------------------------------------------------------
@dataclass
class InlineResult:
    item: types.InlineCompletionItem | None
    elapsed_s: float

    @property
    def text(self) -> str:
        return item_text(self.item) if self.item is not None else ""


@dataclass
class LspDriver:
    """One server process and what it told us; use `async with start_server(...)`."""

    client: LanguageClient
    statuses: list[dict[str, Any]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # window/showMessage texts
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _drain: asyncio.Task[None] | None = None

    def on_status(self, params: Any) -> None:
        st = params if isinstance(params, dict) else {
            k: getattr(params, k, None) for k in ("state", "model", "message")}
        self.statuses.append(st)
        self._changed.set()

    async def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
        """Wait for status `ready`; raise with the server's message on `error`/`disabled`."""
        async def watch() -> dict[str, Any]:
            seen = 0
            while True:
                for st in self.statuses[seen:]:
                    if st.get("state") == "ready":
                        return st
                    if st.get("state") in ("error", "disabled"):
                        raise RuntimeError(f"server is {st.get('state')}: {st.get('message')}")
                seen = len(self.statuses)
                self._changed.clear()
                await self._changed.wait()

        return await asyncio.wait_for(watch(), timeout)

    def open(self, uri: str, text: str, language: str, version: int = 1) -> None:
        self.client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id=language, version=version, text=text)))

    def change(self, uri: str, version: int, range_: types.Range, text: str) -> None:
        """One incremental edit (replace `range_` by `text`)."""
        self.client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangePartial(range=range_, text=text)]))

    def close(self, uri: str) -> None:
        self.client.text_document_did_close(types.DidCloseTextDocumentParams(
            types.TextDocumentIdentifier(uri)))

    async def inline_item(self, uri: str, line: int, character: int,
                          timeout: float = REQUEST_TIMEOUT_S) -> InlineResult:
        """The first inline item at a typing pause (trigger Automatic), and the round trip."""
        t0 = time.perf_counter()
        result = await asyncio.wait_for(self.client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri),
                position=types.Position(line, character),
                context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Automatic),
            )), timeout)
        elapsed = time.perf_counter() - t0
        items = result.items if isinstance(result, types.InlineCompletionList) else (result or [])
        return InlineResult(items[0] if items else None, elapsed)

    async def inline(self, uri: str, line: int, character: int) -> tuple[str, float]:
        """(suggested text, seconds); '' when the server offered nothing."""
        res = await self.inline_item(uri, line, character)
        return res.text, res.elapsed_s

    async def shutdown(self) -> None:
        """shutdown + exit, then wait for the process (kill it if it hangs)."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.shutdown_async(None), SHUTDOWN_TIMEOUT_S)
        with contextlib.suppress(Exception):
            self.client.exit(None)
        proc = getattr(self.client, "_server", None)
        if proc is not None:
            try:
                await asyncio.wait_for(proc.wait(), SHUTDOWN_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.stop(), SHUTDOWN_TIMEOUT_S)
        if self._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain, 5)


async def _drain_stderr(stream: asyncio.StreamReader, sink: IO[bytes] | None) -> None:
    """Read the server's log output; an unread stderr pipe fills up and blocks the server."""
    while chunk := await stream.read(65536):
        if sink is not None:
            sink.write(chunk)
            sink.flush()


@contextlib.asynccontextmanager
async def start_server(
    model: str | None = None,
    *,
    args: Sequence[str] = (),
    init_options: dict[str, Any] | None = None,
    root: Path | None = None,
    log_path: Path | None = None,
) -> AsyncIterator[LspDriver]:
    """Start `python -m lsp_server serve`, initialise it like an editor with inline completion,
    and yield a driver (not yet waited for `ready`). Server logs go to `log_path` if given."""
    client = LanguageClient("starcoder-lsp-bench", "0")
    driver = LspDriver(client)

    @client.feature("starcoder/status")
    def on_status(params: Any) -> None:
        driver.on_status(params)

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def on_message(params: types.ShowMessageParams) -> None:
        driver.messages.append(params.message)

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def on_log(params: types.LogMessageParams) -> None:
        pass  # the server's log file has these

    cmd = ["-m", "lsp_server", "serve", *(["--model", model] if model else []), *args]
    sink = None
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        sink = log_path.open("ab")  # several sessions may share one log
    try:
        await client.start_io(sys.executable, *cmd)
        proc = client._server  # pygls pipes stderr and never reads it
        if proc is not None and proc.stderr is not None:
            driver._drain = asyncio.create_task(_drain_stderr(proc.stderr, sink))
        caps = types.ClientCapabilities(
            text_document=types.TextDocumentClientCapabilities(
                inline_completion=types.InlineCompletionClientCapabilities(),
                synchronization=types.TextDocumentSyncClientCapabilities(),
            ),
        )
        await asyncio.wait_for(client.initialize_async(types.InitializeParams(
            capabilities=caps, process_id=None, initialization_options=init_options or {},
            root_uri=(root or Path.cwd()).as_uri())), READY_TIMEOUT_S)
        client.initialized(types.InitializedParams())
        try:
            yield driver
        finally:
            await driver.shutdown()
    finally:
        if sink is not None:
            sink.close()
