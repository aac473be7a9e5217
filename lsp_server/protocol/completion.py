"""Inline completion (LSP 3.18 `textDocument/inlineCompletion`) and the `textDocument/completion`
fallback for clients without it: both answer at once with no items when there is nothing to say,
never with an error."""

from __future__ import annotations

import asyncio

from lsprotocol import types

from lsp_server.pipelines.completion import Suggestion
from lsp_server.protocol.requests import completion_request
from lsp_server.protocol.server import StarcoderServer  # at run time: pygls reads the hints


async def _suggest(ls: StarcoderServer, method: str, uri: str, position: types.Position
                   ) -> Suggestion | None:
    """The suggestion at `position`; None when there is none, and on any internal failure
    (counted and shown in the status: never a silent exception, never an error answer)."""
    try:
        req = completion_request(ls, uri, position)
        suggestion = None if req is None else await ls.assistant.complete(req)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        ls.request_failed(method, exc)
        return None
    ls.request_succeeded(method)
    return suggestion



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


def did_open(ls: StarcoderServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.recent.forget(params.text_document.uri)



def setup(server: StarcoderServer) -> None:
    server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION,
                   types.InlineCompletionOptions())(inline_completion)
    server.feature(types.TEXT_DOCUMENT_COMPLETION,
                   types.CompletionOptions(trigger_characters=[], resolve_provider=False))(completion)
    server.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
