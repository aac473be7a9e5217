"""The "Explain" code action and the `starcoder.explain` command: the explanation streams as
`$/progress`, is cancellable, and is shown as a markdown document (or a message)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types

from lsp_server import defaults
from lsp_server.engine.base import Cancelled
from lsp_server.engine.worker import CancelFlag
from lsp_server.protocol import explanations
from lsp_server.protocol.actions import counted, document_lines, uri_and_range
from lsp_server.protocol.requests import display_path, explanations_dir, folders
from lsp_server.protocol.server import StarcoderServer  # at run time: pygls reads the hints

log = logging.getLogger(__name__)

EXPLAIN_COMMAND = "starcoder.explain"


async def explain_command(ls: StarcoderServer, *args: Any) -> str:
    """Arguments [uri, range]: returns the explanation as markdown and shows it."""
    return await counted(ls, EXPLAIN_COMMAND, run_explain(ls, args))


def _wants_own_preview(ls: StarcoderServer) -> bool:
    """Our VS Code extension shows the markdown itself (it says so in experimental caps)."""
    exp = ls.client_capabilities.experimental
    star = exp.get("starcoder") if isinstance(exp, dict) else None
    return bool(isinstance(star, dict) and star.get("explainPreview"))


async def run_explain(ls: StarcoderServer, args: tuple[Any, ...]) -> str:
    uri, rng = uri_and_range(ls, args, EXPLAIN_COMMAND)
    doc, lines = document_lines(ls, uri)
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


def actions(ls: StarcoderServer, uri: str, target: types.Range, name: str
            ) -> list[types.CodeAction]:
    title = "Explain this snippet" if not name else (
        "Explain this block" if name == "block" else f"Explain `{name}`")
    args = [uri, ls.protocol._converter.unstructure(target)]
    return [types.CodeAction(
        title=title, kind=types.CodeActionKind.Empty,
        command=types.Command(title=title, command=EXPLAIN_COMMAND, arguments=args))]


def setup(server: StarcoderServer) -> None:
    server.command(EXPLAIN_COMMAND)(explain_command)
