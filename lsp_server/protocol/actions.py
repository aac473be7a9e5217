"""Code actions on a selection (or, with none, on the block around the cursor): Explain and the
Edit actions; and what the commands they run share: their [uri, range, …] arguments checked."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar
from urllib.parse import unquote

from lsprotocol import types
from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from lsp_server.context.blocks import enclosing_block
from lsp_server.context.secrets import off_message
from lsp_server.protocol import uris
from lsp_server.protocol.requests import completes, folders
from lsp_server.protocol.server import StarcoderServer  # at run time: pygls reads the hints

T = TypeVar("T")


async def counted(ls: StarcoderServer, command: str, work: Awaitable[T]) -> T:
    """A command's answer; an internal failure is answered as an error, counted and shown in
    the status (never silent); bad arguments stay a plain JSON-RPC error."""
    try:
        result = await work
    except (asyncio.CancelledError, JsonRpcException):
        raise
    except Exception as exc:
        ls.request_failed(command, exc)
        raise
    ls.request_succeeded(command)
    return result


def code_action(ls: StarcoderServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    """"Explain" and "Edit" actions on a selection; on an empty one, for the enclosing block."""
    from lsp_server.protocol import edit, explain

    try:
        target = action_target(ls, params)
        actions = [] if target is None else [*explain.actions(ls, *target),
                                             *edit.actions(ls, *target)]
    except JsonRpcException:
        raise
    except Exception as exc:  # a bug: no actions this time, and the status says so
        ls.request_failed(types.TEXT_DOCUMENT_CODE_ACTION, exc)
        return []
    ls.request_succeeded(types.TEXT_DOCUMENT_CODE_ACTION)
    return actions


def action_target(ls: StarcoderServer, params: types.CodeActionParams
                  ) -> tuple[str, types.Range, str] | None:
    """(uri, range, name) the actions apply to: the selection when it holds text (name ""),
    else the block around the cursor (named by its first line); None for read-only views."""
    uri = params.text_document.uri
    doc = ls.protocol.open_document(uri)
    if doc is None or not completes(doc):  # read-only views get no actions (and no errors)
        return None
    doc, lines = document_lines(ls, uri)
    rng = params.range
    if rng.start != rng.end and _has_text(ls, doc, rng):
        return uri, rng, ""
    line = min(max(rng.start.line, 0), len(lines) - 1)
    block = enclosing_block(lines, line)
    if block is None:
        return None
    start, end = block
    first = lines[start].strip().split("(")[0].split(":")[0][:40]
    return uri, types.Range(types.Position(start, 0), types.Position(end, 0)), first or "block"


def document_lines(ls: StarcoderServer, uri: str) -> tuple[Any, Sequence[str]]:
    doc = ls.protocol.open_document(uri)
    if doc is None:
        raise JsonRpcInvalidParams(not_usable(ls, uri))
    return doc, ls.protocol.lines(doc) if doc.source else ("",)


def not_usable(ls: StarcoderServer, uri: str) -> str:
    reason = ls.protocol.secret.get(unquote(uri))
    if reason is not None:
        return off_message(uris.display_path(uri, folders(ls)), reason)
    return f"{uri} is not open (or too large)"


def _has_text(ls: StarcoderServer, doc: Any, rng: types.Range) -> bool:
    """Whether the selection holds more than whitespace, without copying it (it may be the whole
    of a 4 MB file, asked on every cursor move)."""
    view = ls.protocol.lines(doc)
    start = doc.position_codec.position_from_client_units(view, rng.start)
    end = doc.position_codec.position_from_client_units(view, rng.end)
    return view.has_text((start.line, start.character), (end.line, end.character))


def uri_and_range(ls: StarcoderServer, args: tuple[Any, ...], command: str, n: int = 2
                  ) -> tuple[str, types.Range]:
    """The [uri, range, …] of a command (`n` arguments), or a JSON-RPC InvalidParams."""
    if len(args) != n or not isinstance(args[0], str):
        raise JsonRpcInvalidParams(f"{command} takes [uri, range{', instruction' if n == 3 else ''}]")
    raw = args[1]
    try:
        rng = raw if isinstance(raw, types.Range) else ls.protocol._converter.structure(
            raw if isinstance(raw, dict) else ls.protocol._converter.unstructure(raw), types.Range)
    except Exception as exc:
        raise JsonRpcInvalidParams(f"{command}: invalid range {raw!r}: {exc}") from None
    if ls.protocol.open_document(args[0]) is None:
        raise JsonRpcInvalidParams(f"{command}: {not_usable(ls, args[0])}")
    return args[0], rng




def setup(server: StarcoderServer) -> None:
    server.feature(types.TEXT_DOCUMENT_CODE_ACTION,
                   types.CodeActionOptions(resolve_provider=False))(code_action)
