"""Inline completion (LSP 3.18 `textDocument/inlineCompletion`) and the `textDocument/completion`
fallback for clients without it: both answer at once with no items when there is nothing to say,
never with an error."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from lsp_server.pipelines.completion import CompletionRequest, Suggestion
from lsp_server.protocol.requests import completion_request
from lsp_server.protocol.server import StarcoderServer  # at run time: pygls reads the hints

log = logging.getLogger(__name__)

# Carried by every inline item; LSP 3.18 clients run it when the user accepts the item.
ACCEPTED_COMMAND = "starcoder.accepted"
# The completion stats report (markdown), for "StarCoder: Show Stats" and :StarcoderStats.
STATS_COMMAND = "starcoder.stats"


async def _suggest(ls: StarcoderServer, method: str, uri: str, position: types.Position,
                   whole: bool = False) -> tuple[CompletionRequest | None, Suggestion | None]:
    """The suggestion at `position` (and its request); None when there is none, and on any
    internal failure (counted and shown in the status: never a silent exception, never an error
    answer). `whole`: not time-boxed."""
    try:
        req = completion_request(ls, uri, position)
        suggestion = None if req is None else await ls.assistant.complete(req, whole=whole)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        ls.request_failed(method, exc)
        return None, None
    ls.request_succeeded(method)
    return req, suggestion



async def inline_completion(
    ls: StarcoderServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    t0 = time.perf_counter()
    uri = params.text_document.uri
    automatic = params.context.trigger_kind == types.InlineCompletionTriggerKind.Automatic
    log.debug("inline request at %d:%d (%s)", params.position.line, params.position.character,
              "automatic" if automatic else "invoked")
    if (automatic and ls.protocol.just_deleted(uri)
            and not ls.assistant.settings.complete_after_deletion):
        log.debug("no suggestion: the last change deleted text")
        return types.InlineCompletionList(items=[])  # deleting: no ghost text in the way
    req, suggestion = await _suggest(ls, types.TEXT_DOCUMENT_INLINE_COMPLETION,
                                     params.text_document.uri, params.position)
    if req is None or suggestion is None or not suggestion.text:
        # Said in the debug log: an empty answer is otherwise invisible (which of the three).
        log.debug("no suggestion: %s", "the document is not open to us" if req is None
                  else "not ready, superseded or failed" if suggestion is None else "nothing to suggest")
        return types.InlineCompletionList(items=[])
    pos = params.position
    shown = ls.assistant.completion.shown(req, suggestion.text, time.perf_counter() - t0)
    item = types.InlineCompletionItem(
        insert_text=suggestion.text, range=types.Range(pos, pos),
        command=types.Command(title="StarCoder: accepted", command=ACCEPTED_COMMAND,
                              arguments=[shown]))
    return types.InlineCompletionList(items=[item])


async def completion(
    ls: StarcoderServer, params: types.CompletionParams
) -> types.CompletionList:
    """Fallback for clients without inline completion: one item carrying the whole suggestion
    (a menu item is inserted at once, never typed into: no time box)."""
    _, suggestion = await _suggest(ls, types.TEXT_DOCUMENT_COMPLETION,
                                   params.text_document.uri, params.position, whole=True)
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


def accepted_command(ls: StarcoderServer, *args: Any) -> None:
    """[id]: the user accepted the inline item `id` (counted; the next line is prefetched)."""
    if len(args) != 1 or not isinstance(args[0], int) or isinstance(args[0], bool):
        raise JsonRpcInvalidParams(f"{ACCEPTED_COMMAND}: expected [id] of a shown suggestion")
    ls.assistant.completion.accepted(args[0])


def did_open(ls: StarcoderServer, params: types.DidOpenTextDocumentParams) -> None:
    ls.recent.forget(params.text_document.uri)
    ls.assistant.completion.usage.opened(params.text_document.uri)


def stats_command(ls: StarcoderServer, *args: Any) -> str:
    """No arguments: this session's completion stats as a markdown report (never sent anywhere;
    the editor shows it)."""
    return ls.assistant.completion.usage.report()



def setup(server: StarcoderServer) -> None:
    server.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION,
                   types.InlineCompletionOptions())(inline_completion)
    server.feature(types.TEXT_DOCUMENT_COMPLETION,
                   types.CompletionOptions(trigger_characters=[], resolve_provider=False))(completion)
    server.feature(types.TEXT_DOCUMENT_DID_OPEN)(did_open)
    server.command(ACCEPTED_COMMAND)(accepted_command)
    server.command(STATS_COMMAND)(stats_command)
