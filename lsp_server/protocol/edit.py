"""The Edit code actions and the `starcoder.edit` command: [uri, range, instruction] -> the
pipeline's new text for the range -> one `workspace/applyEdit`, version-checked, so an edit made
while the user typed on is refused, never applied over newer text. Returns {applied, text}.

"Edit with StarCoder…" asks for the instruction on the client (our VS Code extension and the
Neovim setup say they can, in `experimental.starcoder.editInput`); the presets need no typing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams

from lsp_server import defaults
from lsp_server.engine.base import Cancelled
from lsp_server.engine.worker import CancelFlag
from lsp_server.protocol.actions import counted, document_lines, uri_and_range
from lsp_server.protocol.requests import completes, display_path, folders
from lsp_server.protocol.server import StarcoderServer  # at run time: pygls reads the hints

log = logging.getLogger(__name__)

EDIT_COMMAND = "starcoder.edit"
# Client-side: asks for the instruction, then runs EDIT_COMMAND.
EDIT_INPUT_COMMAND = "starcoder.editSelection"
# Instructions that need no typing, for every client (title after "Edit: ").
PRESETS = (("Fix bugs", "Fix bugs in this code."),
           ("Add docstring", "Add a docstring."),
           ("Add type hints", "Add type hints."),
           ("Simplify", "Simplify this code without changing what it does."))


def _asks_input(ls: StarcoderServer) -> bool:
    exp = ls.client_capabilities.experimental
    star = exp.get("starcoder") if isinstance(exp, dict) else None
    return bool(isinstance(star, dict) and star.get("editInput"))


def actions(ls: StarcoderServer, uri: str, target: types.Range, name: str
            ) -> list[types.CodeAction]:
    where = "" if not name else f" `{name}`" if name != "block" else " this block"
    rng = ls.protocol._converter.unstructure(target)
    found: list[types.CodeAction] = []
    if _asks_input(ls):
        title = f"Edit{where} with StarCoder…"
        found.append(types.CodeAction(
            title=title, kind=types.CodeActionKind.RefactorRewrite,
            command=types.Command(title=title, command=EDIT_INPUT_COMMAND, arguments=[uri, rng])))
    for label, instruction in PRESETS:
        title = f"Edit{where}: {label}"
        found.append(types.CodeAction(
            title=title, kind=types.CodeActionKind.RefactorRewrite,
            command=types.Command(title=title, command=EDIT_COMMAND,
                                  arguments=[uri, rng, instruction])))
    return found


async def edit_command(ls: StarcoderServer, *args: Any) -> dict[str, Any]:
    """Arguments [uri, range, instruction] (and optionally {"apply": false}: only propose)."""
    return await counted(ls, EDIT_COMMAND, run_edit(ls, args))


async def run_edit(ls: StarcoderServer, args: tuple[Any, ...]) -> dict[str, Any]:
    options = args[3] if len(args) == 4 and isinstance(args[3], dict) else {}
    base = args[:3] if len(args) == 4 else args
    uri, rng = uri_and_range(ls, base, EDIT_COMMAND, 3)
    instruction = base[2]
    if not isinstance(instruction, str) or not instruction.strip():
        raise JsonRpcInvalidParams(f"{EDIT_COMMAND}: the instruction must be a non-empty string")
    instruction = instruction[: defaults.EDIT_MAX_INSTRUCTION_CHARS]
    doc, lines = document_lines(ls, uri)
    if not completes(doc):
        raise JsonRpcInvalidParams(f"{EDIT_COMMAND}: {uri} is a read-only view: not edited")
    version = doc.version
    start = doc.position_from_client_units(rng.start)
    end = doc.position_from_client_units(rng.end)
    if not ls.assistant.ready:
        return _refused(ls, f"starcoder-lsp is not ready to edit: {ls.assistant.message}")
    cancel = CancelFlag()
    path = display_path(doc, folders(ls))
    token = await ls.begin_progress("edit", "Editing", path, on_cancel=cancel.set)

    def on_text(text: str) -> None:
        if token is not None:
            ls.work_done_progress.report(token, types.WorkDoneProgressReport(
                message=text[-200:]))

    try:
        result = await ls.assistant.edit(
            lines, (start.line, start.character), (end.line, end.character), instruction,
            path=path, language=doc.language_id or "", on_text=on_text, cancel=cancel)
    except Cancelled:
        return {"applied": False, "text": "", "reason": "cancelled"}
    finally:
        if token is not None:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message="done"))
    if result.refusal is not None or result.text is None or result.range is None:
        message = result.refusal.message if result.refusal else "no edit"
        return _refused(ls, message)
    now = ls.protocol.open_document(uri)
    if now is None or now.version != version:
        return _refused(ls, "The document changed while the edit was made: not applied.")
    view = ls.protocol.lines(now)
    codec = now.position_codec
    target = types.Range(
        codec.position_to_client_units(view, types.Position(*result.range.start)),
        codec.position_to_client_units(view, types.Position(*result.range.end)))
    answer = {"applied": False, "text": result.text,
              "range": ls.protocol._converter.unstructure(target), "version": version}
    if options.get("apply") is False:
        return answer
    edit = types.TextEdit(range=target, new_text=result.text)
    workspace_edit = types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(
        text_document=types.OptionalVersionedTextDocumentIdentifier(uri=uri, version=version),
        edits=[edit])])
    try:
        applied = await asyncio.wait_for(ls.workspace_apply_edit_async(
            types.ApplyWorkspaceEditParams(edit=workspace_edit, label="StarCoder edit")),
            defaults.CLIENT_REQUEST_TIMEOUT_S)
    except Exception:
        log.warning("workspace/applyEdit failed", exc_info=True)
        return _refused(ls, "The editor did not apply the edit.")
    answer["applied"] = bool(applied.applied)
    if not applied.applied:
        answer["reason"] = applied.failure_reason or "the editor refused the edit"
    return answer


def _refused(ls: StarcoderServer, message: str) -> dict[str, Any]:
    ls.window_show_message(types.ShowMessageParams(types.MessageType.Warning,
                                                   f"starcoder-lsp: {message}"))
    return {"applied": False, "text": "", "reason": message}


def setup(server: StarcoderServer) -> None:
    server.command(EDIT_COMMAND)(edit_command)
