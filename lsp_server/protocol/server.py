"""The LSP face of starcoder-lsp: params in, results out, nothing else.

Handlers convert LSP positions and settings, then call the `Assistant`; the pipeline itself lives in
`lsp_server.service`. Every request answers promptly: before the model is ready, or on any failure,
an inline completion answers with no items (never blocks, never errors) and the status says why.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import platformdirs
from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol.language_server import lsp_method
from pygls.uris import to_fs_path

from lsp_server import __version__, defaults
from lsp_server.context.blocks import enclosing_block
from lsp_server.context.notebook import Cell, with_earlier_cells
from lsp_server.context.secrets import SecretPolicy, off_message
from lsp_server.context.snippets import RecentDocuments, SourceDoc
from lsp_server.engine.generate import Cancelled
from lsp_server.protocol import explanations, rpc, uris
from lsp_server.protocol.documents import BoundedDocuments
from lsp_server.protocol.failures import Failures
from lsp_server.protocol.lag import LoopLag, settle_heap
from lsp_server.protocol.logs import forward_logs, stop_forwarding
from lsp_server.service import Assistant, CompletionRequest, Suggestion
from lsp_server.settings import Settings, merge

log = logging.getLogger(__name__)

STATUS_METHOD = "starcoder/status"
DOCUMENT_STATUS_METHOD = "starcoder/documentStatus"
STATS_METHOD = "starcoder/stats"
EXPLAIN_COMMAND = "starcoder.explain"


class StarcoderProtocol(BoundedDocuments):
    """pygls' protocol made robust (`rpc`, `documents`), keeping a closed buffer's text before
    pygls drops it (cross-file context)."""

    _server: StarcoderServer

    def handle_message(self, message: Any) -> None:
        self._server.lag.poke(getattr(message, "method", None) or "response")
        super().handle_message(message)

    @lsp_method(types.TEXT_DOCUMENT_DID_CLOSE)
    def lsp_text_document__did_close(self, params: types.DidCloseTextDocumentParams) -> Any:
        doc = self.open_document(params.text_document.uri)
        if doc is not None and _is_context(doc):
            self._server.recent.remember(_source_doc(doc, _folders(self._server)))
        yield from super().lsp_text_document__did_close(params)


class StarcoderServer(LanguageServer):
    """Holds the assistant, the settings and references to background tasks."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(defaults.SERVER_NAME, __version__, protocol_cls=StarcoderProtocol)
        self.cli_settings = settings
        self.assistant = Assistant(settings, self.send_status, self.show_warning)
        self.tasks: set[asyncio.Task[Any]] = set()
        self.last_status: dict[str, str] = {}
        self.recent = RecentDocuments()
        self.lag = LoopLag()
        self.heap_settled = False
        self.failures = Failures()
        self.protocol.on_too_large = self.show_warning
        self.protocol.secret_reason = self.secret_reason
        self.protocol.on_secret = self.tell_secret
        self._secrets: SecretPolicy | None = None

    protocol: StarcoderProtocol

    # --- transport: our framing (`rpc`) instead of pygls' reader loop ------------------------------
    def start_io(self, stdin: Any = None, stdout: Any = None) -> None:
        rpc.serve_stdio(self, stdin or sys.stdin.buffer, stdout or sys.stdout.buffer)

    async def aclose(self) -> None:
        """End this session (a network client left): stop its work and free its model."""
        for task in list(self.tasks):
            task.cancel()
        stop_forwarding(self)
        await self.assistant.aclose()
        self.shutdown()

    # --- secrets (context.secrets decides; documents.py keeps their text out) --------------------
    def secret_reason(self, uri: str, path: str | None, language: str) -> str | None:
        s = self.assistant.settings
        ws = self.protocol._workspace
        roots = tuple(dict.fromkeys(
            [*([ws.root_path] if ws is not None and ws.root_path else []),
             *(to_fs_path(f.uri) or "" for f in (ws.folders.values() if ws else ()))]))
        policy = self._secrets
        if policy is None or (policy.exclude, policy.gitignore, policy.roots) != (
                s.exclude, s.gitignore, roots):
            policy = self._secrets = SecretPolicy(s.exclude, s.gitignore, roots)
        return policy.reason(uri, path, language)

    def tell_secret(self, uri: str, reason: str) -> None:
        """Once per document: the per-document status, and a message every client shows."""
        name = uris.display_path(uri, _folders(self))
        with contextlib.suppress(Exception):
            self.protocol.notify(DOCUMENT_STATUS_METHOD, {
                "uri": uri, "completions": "off", "reason": reason,
                "message": off_message(name, reason)})
            self.window_show_message(types.ShowMessageParams(
                types.MessageType.Info, f"starcoder-lsp: {off_message(name, reason)}"))

    def recheck_secrets(self) -> None:
        """Settings changed (`exclude`, `gitignore`): apply them to the open documents."""
        for uri in self.protocol.recheck_secrets():
            self.show_warning(f"{uris.display_path(uri, _folders(self))} is no longer excluded: reopen it "
                              "to get completions (its text was never kept)")

    # --- plumbing ---------------------------------------------------------------------------------
    def spawn(self, coro: Any) -> asyncio.Task[Any]:
        """Run `coro` in the background, keep a reference, and log (not lose) its exception."""
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self.tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("background task failed", exc_info=t.exception())

        task.add_done_callback(done)
        return task

    def send_status(self, state: str, model: str, message: str) -> None:
        self.last_status = {"state": state, "model": model, "message": message}
        self._notify_status()
        if state == "error":
            try:
                self.window_show_message(
                    types.ShowMessageParams(types.MessageType.Error, f"starcoder-lsp: {message}")
                )
            except Exception:  # no client connected yet (e.g. in-process use)
                log.debug("message not sent", exc_info=True)

    def _notify_status(self) -> None:
        """The last status with the current failure count (`errors`, `lastError`)."""
        try:
            self.protocol.notify(STATUS_METHOD, {**self.last_status,
                                                 **self.failures.status_fields()})
        except Exception:  # no client connected yet (e.g. in-process use)
            log.debug("status not sent", exc_info=True)

    def request_failed(self, what: str, exc: BaseException) -> None:
        """An internal failure: counted, logged once per cause, and shown in the status."""
        self.failures.failed(what, exc)
        if self.last_status:
            self._notify_status()

    def request_succeeded(self, what: str) -> None:
        if self.failures.succeeded(what) and self.last_status:
            self._notify_status()

    def show_warning(self, text: str) -> None:
        self.window_show_message(
            types.ShowMessageParams(types.MessageType.Warning, f"starcoder-lsp: {text}"))

    def show_problems(self, problems: list[str]) -> None:
        for text in problems:
            log.warning("%s", text)
            self.window_show_message(
                types.ShowMessageParams(types.MessageType.Warning, f"starcoder-lsp: {text}")
            )

    def supports_progress(self) -> bool:
        window = self.client_capabilities.window
        return bool(window and window.work_done_progress)

    def supports_configuration(self) -> bool:
        ws = self.client_capabilities.workspace
        return bool(ws and ws.configuration)

    async def pull_configuration(self) -> Any:
        """The `starcoder` section from the client, or None (kept off the completion path)."""
        if not self.supports_configuration():
            return None
        try:
            result = await asyncio.wait_for(
                self.workspace_configuration_async(types.ConfigurationParams(
                    items=[types.ConfigurationItem(section=defaults.SETTINGS_SECTION)])),
                timeout=defaults.CLIENT_REQUEST_TIMEOUT_S,
            )
        except Exception:
            log.warning("workspace/configuration failed; keeping current settings", exc_info=True)
            return None
        return result[0] if result else None

    async def begin_progress(self, kind: str, title: str, message: str,
                             on_cancel: Callable[[], None] | None = None) -> str | None:
        """Start a server-initiated `$/progress` (None when the client does not support it)."""
        if not self.supports_progress():
            return None
        token = f"starcoder-{kind}-{uuid.uuid4().hex[:8]}"
        try:
            await asyncio.wait_for(self.work_done_progress.create_async(token),
                                   timeout=defaults.CLIENT_REQUEST_TIMEOUT_S)
            if on_cancel is not None:
                self.work_done_progress.tokens[token].add_done_callback(lambda _: on_cancel())
            self.work_done_progress.begin(token, types.WorkDoneProgressBegin(
                title=title, message=message, cancellable=on_cancel is not None))
        except Exception:
            log.debug("progress not available", exc_info=True)
            return None
        return token

    async def load_with_progress(self) -> None:
        """Load the model, with `$/progress` when the client supports it."""
        token = await self.begin_progress("load", "starcoder-lsp",
                                          f"Loading {self.assistant.settings.model}")
        try:
            await self.assistant.load()
        finally:
            if token is not None:
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(
                    message=self.assistant.state))
        if not self.heap_settled:  # once, after the first load: before the user types
            self.heap_settled = True
            settle_heap()


def _folders(ls: StarcoderServer) -> list[uris.Folder]:
    """The workspace folders, and the root when the client sent one outside them."""
    ws = ls.workspace
    folders = [uris.Folder(f.uri, f.name) for f in ws.folders.values()]
    if ws.root_uri and all(f.uri != ws.root_uri for f in folders):
        folders.append(uris.Folder(ws.root_uri))
    return folders


def _display_path(doc: Any, folders: list[uris.Folder]) -> str:
    """Workspace-relative path for the model (it saw repository paths in training)."""
    return uris.display_path(doc.uri, folders, doc.language_id or "") or "untitled"


def _source_doc(doc: Any, folders: list[uris.Folder]) -> SourceDoc:
    return SourceDoc(doc.uri, _display_path(doc, folders), doc.source, doc.language_id or "")


def _explanations_dir() -> Path:
    return Path(platformdirs.user_cache_dir(defaults.APP_NAME)) / "explanations"


def _is_our_output(path: str | None, ours: Path | None = None) -> bool:
    """Explanation files the server wrote and showed: never context, never completed."""
    return bool(path) and Path(str(path)).parent == (ours or _explanations_dir())


def _completes(doc: Any) -> bool:
    """Whether the document gets suggestions and code actions (uris.SCHEMES decides)."""
    return uris.policy(doc.uri).completes and not _is_our_output(doc.path)


def _is_context(doc: Any, ours: Path | None = None) -> bool:
    """Whether the document's text may inform completions in other documents."""
    return uris.policy(doc.uri).context and not _is_our_output(doc.path, ours)


def _cell_lines(ls: StarcoderServer, doc: Any, handle: int, lines: Any) -> tuple[list[str], int]:
    """A notebook cell's lines after those of the notebook's earlier open cells."""
    here = uris.location(doc.uri)
    cells = []
    for key, other in ls.workspace.text_documents.items():
        cell = uris.notebook_cell(other.uri)
        if (other is doc or cell is None or not ls.protocol.is_usable(key)
                or uris.location(other.uri) != here):
            continue
        cells.append(Cell(cell[1], other.language_id or "", ls.protocol.lines(other)))
    return with_earlier_cells(cells, Cell(handle, doc.language_id or "", lines))


def _request(ls: StarcoderServer, uri: str, position: types.Position) -> CompletionRequest | None:
    doc = ls.protocol.open_document(uri)  # never a file the client did not open (no disk reads)
    if doc is None or not _completes(doc):
        return None
    lines: Sequence[str] = ls.protocol.lines(doc, editor=True)  # a view: no string per line
    line = min(max(position.line, 0), len(lines) - 1)
    # The codec with the lines already split (doc.position_from_client_units splits them again).
    pos = doc.position_codec.position_from_client_units(
        lines, types.Position(line, max(position.character, 0)))
    folders = _folders(ls)
    ours = _explanations_dir()
    cell = uris.notebook_cell(doc.uri)
    notebook = uris.location(doc.uri) if cell is not None else None

    def wanted(other: SourceDoc | Any) -> bool:  # a notebook's own cells are in the prefix
        return notebook is None or uris.notebook_cell(other.uri) is None \
            or uris.location(other.uri) != notebook

    others = [_source_doc(d, folders) for u, d in ls.workspace.text_documents.items()
              if d is not doc and ls.protocol.is_usable(u) and _is_context(d, ours)
              and wanted(d)]
    open_uris = {d.uri for d in others}
    others += [d for d in ls.recent.docs()
               if d.uri not in open_uris and d.uri != uri and wanted(d)]
    offset = 0
    if cell is not None:
        lines, offset = _cell_lines(ls, doc, cell[1], lines)
    folder = uris.containing_folder(doc.uri, folders) or (folders[0] if folders else None)
    repo = (folder.display_name if folder else "") or defaults.DEFAULT_REPO_NAME
    return CompletionRequest(lines, offset + pos.line, pos.character, uri, doc.language_id or "",
                             _display_path(doc, folders), others, repo)


async def _suggest(ls: StarcoderServer, method: str, uri: str, position: types.Position
                   ) -> Suggestion | None:
    """The suggestion at `position`; None when there is none, and on any internal failure
    (counted and shown in the status: never a silent exception, never an error answer)."""
    try:
        req = _request(ls, uri, position)
        suggestion = None if req is None else await ls.assistant.complete(req)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        ls.request_failed(method, exc)
        return None
    ls.request_succeeded(method)
    return suggestion


def create_server(settings: Settings | None = None) -> StarcoderServer:
    """Build the server and wire every handler (the only place that knows pygls features)."""
    server = StarcoderServer(settings or Settings())

    @server.feature(types.INITIALIZE)
    def initialize(ls: StarcoderServer, params: types.InitializeParams) -> None:
        forward_logs(ls)
        settings, problems = merge(ls.cli_settings, params.initialization_options)
        ls.assistant.settings = settings
        ls.show_problems(problems)

    @server.feature(types.INITIALIZED)
    async def initialized(ls: StarcoderServer, params: types.InitializedParams) -> None:
        ls.send_status("loading", ls.assistant.settings.model, "starting")

        async def start() -> None:
            raw = await ls.pull_configuration()
            settings, problems = merge(ls.assistant.settings, raw)
            ls.show_problems(problems)
            ls.assistant.settings = settings
            ls.recheck_secrets()
            if not settings.enable:
                await ls.assistant.apply_settings(settings)
                return
            await ls.load_with_progress()

        ls.spawn(start())

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(
        ls: StarcoderServer, params: types.DidChangeConfigurationParams
    ) -> None:
        async def update() -> None:
            raw = params.settings
            has_section = isinstance(raw, dict) and isinstance(raw.get(defaults.SETTINGS_SECTION),
                                                               dict)
            if not has_section:
                raw = await ls.pull_configuration()
            settings, problems = merge(ls.assistant.settings, raw)
            ls.show_problems(problems)
            ls.assistant.settings = settings  # (what to load is decided from what was loaded)
            ls.recheck_secrets()
            await ls.assistant.apply_settings(settings, ls.load_with_progress)

        ls.spawn(update())

    @server.feature(
        types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions()
    )
    async def inline_completion(
        ls: StarcoderServer, params: types.InlineCompletionParams
    ) -> types.InlineCompletionList:
        suggestion = await _suggest(ls, types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                    params.text_document.uri, params.position)
        if suggestion is None or not suggestion.text:
            return types.InlineCompletionList(items=[])
        pos = params.position
        item = types.InlineCompletionItem(
            insert_text=suggestion.text, range=types.Range(pos, pos)
        )
        return types.InlineCompletionList(items=[item])

    @server.feature(
        types.TEXT_DOCUMENT_COMPLETION,
        types.CompletionOptions(trigger_characters=[], resolve_provider=False),
    )
    async def completion(
        ls: StarcoderServer, params: types.CompletionParams
    ) -> types.CompletionList:
        """Fallback for clients without inline completion: one item carrying the suggestion."""
        suggestion = await _suggest(ls, types.TEXT_DOCUMENT_COMPLETION, params.text_document.uri,
                                    params.position)
        if suggestion is None or not suggestion.text:
            return types.CompletionList(is_incomplete=True, items=[])
        pos = params.position
        text = suggestion.text
        first = text.strip().split("\n", 1)[0]
        item = types.CompletionItem(
            label=first[:60] + ("…" if len(first) > 60 or "\n" in text.strip() else ""),
            kind=types.CompletionItemKind.Text,
            detail="starcoder-lsp",
            documentation=types.MarkupContent(types.MarkupKind.Markdown, f"```\n{text}\n```"),
            insert_text_format=types.InsertTextFormat.PlainText,
            text_edit=types.TextEdit(range=types.Range(pos, pos), new_text=text),
            sort_text="0",
            filter_text="",
        )
        return types.CompletionList(is_incomplete=True, items=[item])

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: StarcoderServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.recent.forget(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_CODE_ACTION, types.CodeActionOptions(resolve_provider=False))
    def code_action(ls: StarcoderServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        """"Explain this snippet" on a selection; on an empty one, for the enclosing block."""
        try:
            actions = explain_actions(ls, params)
        except JsonRpcException:
            raise
        except Exception as exc:  # a bug: no actions this time, and the status says so
            ls.request_failed(types.TEXT_DOCUMENT_CODE_ACTION, exc)
            return []
        ls.request_succeeded(types.TEXT_DOCUMENT_CODE_ACTION)
        return actions

    @server.command(EXPLAIN_COMMAND)
    async def explain_command(ls: StarcoderServer, *args: Any) -> str:
        """Arguments [uri, range]: returns the explanation as markdown and shows it."""
        try:
            markdown = await run_explain(ls, args)
        except (asyncio.CancelledError, JsonRpcException):
            raise
        except Exception as exc:  # answered as an error, and counted
            ls.request_failed(EXPLAIN_COMMAND, exc)
            raise
        ls.request_succeeded(EXPLAIN_COMMAND)
        return markdown

    @server.feature(STATS_METHOD)
    def stats(ls: StarcoderServer, params: Any) -> dict[str, Any]:
        """Counters (tokens evaluated, cache hits): for benchmarks and bug reports."""
        return {**ls.assistant.stats(), **ls.failures.stats(), **ls.lag.snapshot()}

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: StarcoderServer, params: Any) -> None:
        ls.assistant.shutdown()
        ls.lag.stop()
        for task in list(ls.tasks):
            task.cancel()

    return server


# --- explain ----------------------------------------------------------------------------------------
def _document_lines(ls: StarcoderServer, uri: str) -> tuple[Any, Sequence[str]]:
    doc = ls.protocol.open_document(uri)
    if doc is None:
        raise JsonRpcInvalidParams(_not_usable(ls, uri))
    return doc, ls.protocol.lines(doc) if doc.source else ("",)


def _not_usable(ls: StarcoderServer, uri: str) -> str:
    reason = ls.protocol.secret.get(unquote(uri))
    if reason is not None:
        return off_message(uris.display_path(uri, _folders(ls)), reason)
    return f"{uri} is not open (or too large)"


def explain_actions(ls: StarcoderServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    doc = ls.protocol.open_document(uri)
    if doc is None or not _completes(doc):  # read-only views get no actions (and no errors)
        return []
    doc, lines = _document_lines(ls, uri)
    rng = params.range
    if rng.start != rng.end and _has_text(ls, doc, rng):
        title, target = "Explain this snippet", rng
    else:
        line = min(max(rng.start.line, 0), len(lines) - 1)
        block = enclosing_block(lines, line)
        if block is None:
            return []
        start, end = block
        first = lines[start].strip().split("(")[0].split(":")[0][:40]
        title = f"Explain `{first}`" if first else "Explain this block"
        target = types.Range(types.Position(start, 0), types.Position(end, 0))
    args = [uri, ls.protocol._converter.unstructure(target)]
    return [types.CodeAction(
        title=title, kind=types.CodeActionKind.Empty,
        command=types.Command(title=title, command=EXPLAIN_COMMAND, arguments=args))]


def _has_text(ls: StarcoderServer, doc: Any, rng: types.Range) -> bool:
    """Whether the selection holds more than whitespace, without copying it (it may be the whole
    of a 4 MB file, asked on every cursor move)."""
    view = ls.protocol.lines(doc)
    start = doc.position_codec.position_from_client_units(view, rng.start)
    end = doc.position_codec.position_from_client_units(view, rng.end)
    return view.has_text((start.line, start.character), (end.line, end.character))


def _explain_args(ls: StarcoderServer, args: tuple[Any, ...]) -> tuple[str, types.Range]:
    if len(args) != 2 or not isinstance(args[0], str):
        raise JsonRpcInvalidParams(f"{EXPLAIN_COMMAND} takes [uri, range]")
    raw = args[1]
    try:
        rng = raw if isinstance(raw, types.Range) else ls.protocol._converter.structure(
            raw if isinstance(raw, dict) else ls.protocol._converter.unstructure(raw), types.Range)
    except Exception as exc:
        raise JsonRpcInvalidParams(f"{EXPLAIN_COMMAND}: invalid range {raw!r}: {exc}") from None
    if ls.protocol.open_document(args[0]) is None:
        raise JsonRpcInvalidParams(f"{EXPLAIN_COMMAND}: {_not_usable(ls, args[0])}")
    return args[0], rng


def _wants_own_preview(ls: StarcoderServer) -> bool:
    """Our VS Code extension shows the markdown itself (it says so in experimental caps)."""
    exp = ls.client_capabilities.experimental
    star = exp.get("starcoder") if isinstance(exp, dict) else None
    return bool(isinstance(star, dict) and star.get("explainPreview"))


async def run_explain(ls: StarcoderServer, args: tuple[Any, ...]) -> str:
    uri, rng = _explain_args(ls, args)
    doc, lines = _document_lines(ls, uri)
    start = doc.position_from_client_units(rng.start)
    end = doc.position_from_client_units(rng.end)
    end_line = end.line + (1 if end.character > 0 or end.line == start.line else 0)
    if not ls.assistant.ready:
        message = f"starcoder-lsp is not ready to explain: {ls.assistant.message}"
        ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning, message))
        return message
    cancel = threading.Event()
    path = _display_path(doc, _folders(ls))
    token = await ls.begin_progress("explain", "Explaining", path, on_cancel=cancel.set)

    def on_text(text: str) -> None:
        if token is not None:
            ls.work_done_progress.report(token, types.WorkDoneProgressReport(message=text))

    try:
        result = await ls.assistant.explain(
            lines, start.line, end_line, path=path,
            language=doc.language_id or "", on_text=on_text, cancel=cancel)
    except Cancelled:
        return ""
    finally:
        if token is not None:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="done"))
    markdown = result.markdown
    if not _wants_own_preview(ls):
        await show_explanation(ls, uri, markdown)
    return markdown


async def show_explanation(ls: StarcoderServer, uri: str, markdown: str) -> None:
    """A markdown file the server wrote, via showDocument; else a plain message."""
    window = ls.client_capabilities.window
    if window and window.show_document and window.show_document.support:
        try:
            path = explanations.write(_explanations_dir(), uri, markdown)
            await asyncio.wait_for(ls.window_show_document_async(types.ShowDocumentParams(
                uri=path.as_uri(), take_focus=False)), defaults.CLIENT_REQUEST_TIMEOUT_S)
            return
        except Exception:
            log.warning("could not show the explanation as a document", exc_info=True)
    ls.window_show_message(types.ShowMessageParams(types.MessageType.Info, markdown))
