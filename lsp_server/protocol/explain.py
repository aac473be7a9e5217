"""The "Explain" code action and the `starcoder.explain` command: the explanation streams as
`$/progress`, is cancellable, and is shown as a markdown document (or a message)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from lsp_server import defaults
from lsp_server.context.blocks import enclosing_block
from lsp_server.context.secrets import off_message
from lsp_server.engine.base import Cancelled
from lsp_server.engine.worker import CancelFlag
from lsp_server.protocol import explanations, uris
from lsp_server.protocol.requests import completes, display_path, explanations_dir, folders
from lsp_server.protocol.server import StarcoderServer  # at run time: pygls reads the hints

log = logging.getLogger(__name__)

EXPLAIN_COMMAND = "starcoder.explain"


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


def _document_lines(ls: StarcoderServer, uri: str) -> tuple[Any, Sequence[str]]:
    doc = ls.protocol.open_document(uri)
    if doc is None:
        raise JsonRpcInvalidParams(_not_usable(ls, uri))
    return doc, ls.protocol.lines(doc) if doc.source else ("",)


def _not_usable(ls: StarcoderServer, uri: str) -> str:
    reason = ls.protocol.secret.get(unquote(uri))
    if reason is not None:
        return off_message(uris.display_path(uri, folders(ls)), reason)
    return f"{uri} is not open (or too large)"


def explain_actions(ls: StarcoderServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    uri = params.text_document.uri
    doc = ls.protocol.open_document(uri)
    if doc is None or not completes(doc):  # read-only views get no actions (and no errors)
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
    cancel = CancelFlag()
    path = display_path(doc, folders(ls))
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
            path = explanations.write(explanations_dir(), uri, markdown)
            await asyncio.wait_for(ls.window_show_document_async(types.ShowDocumentParams(
                uri=path.as_uri(), take_focus=False)), defaults.CLIENT_REQUEST_TIMEOUT_S)
            return
        except Exception:
            log.warning("could not show the explanation as a document", exc_info=True)
    ls.window_show_message(types.ShowMessageParams(types.MessageType.Info, markdown))


def setup(server: StarcoderServer) -> None:
    server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                   types.CodeActionOptions(resolve_provider=False))(code_action)
    server.command(EXPLAIN_COMMAND)(explain_command)
