"""Instruction edits through the real server on the real model: the code actions, one
version-checked `workspace/applyEdit`, a stale edit refused, bad arguments a JSON-RPC error."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from testkit.sessions import wait_streaming
from tests.conftest import lsp_session

pytestmark = pytest.mark.real_model

URI = "file:///tmp/starcoder-test/edit.py"
BUGGY = (
    "import math\n"
    "\n"
    "\n"
    "def add(a, b):\n"
    '    """Return the sum of a and b."""\n'
    "    return a - b\n"
    "\n"
    "\n"
    "print(add(2, 3))\n"
)
FUNCTION = types.Range(types.Position(3, 0), types.Position(6, 0))


def recording(s: Any) -> list[types.ApplyWorkspaceEditParams]:
    applied: list[types.ApplyWorkspaceEditParams] = []

    @s.client.feature(types.WORKSPACE_APPLY_EDIT)
    def apply(params: types.ApplyWorkspaceEditParams) -> types.ApplyWorkspaceEditResult:
        applied.append(params)
        return types.ApplyWorkspaceEditResult(applied=True)

    return applied


async def run_edit(s: Any, rng: types.Range, instruction: str) -> Any:
    return await s.client.workspace_execute_command_async(types.ExecuteCommandParams(
        command="starcoder.edit",
        arguments=[URI, s.client.protocol._converter.unstructure(rng), instruction]))


async def test_fix_bugs_applies_one_versioned_edit(preset: str, qwen_gguf: Path) -> None:
    async with lsp_session(preset, {"model": str(qwen_gguf)}) as s:
        applied = recording(s)
        assert (await s.wait_status("ready", "error"))["state"] == "ready"
        s.open(URI, BUGGY)
        result = await s.client.text_document_code_action_async(types.CodeActionParams(
            text_document=types.TextDocumentIdentifier(URI),
            range=types.Range(types.Position(5, 4), types.Position(5, 4)),
            context=types.CodeActionContext(diagnostics=[])))
        titles = [a.title for a in result or [] if isinstance(a, types.CodeAction)]
        assert "Edit `def add`: Fix bugs" in titles, titles
        fix = next(a for a in result or [] if isinstance(a, types.CodeAction)
                   and a.title == "Edit `def add`: Fix bugs")
        assert fix.command is not None
        answer = await s.client.workspace_execute_command_async(types.ExecuteCommandParams(
            command=fix.command.command, arguments=fix.command.arguments))
        assert answer["applied"] is True, answer
        assert len(applied) == 1
        change = applied[0].edit.document_changes[0]  # type: ignore[index]
        assert isinstance(change, types.TextDocumentEdit)
        assert change.text_document.version == 1  # refused by the editor if it moved on
        assert len(change.edits) == 1
        new_text = change.edits[0].new_text  # type: ignore[union-attr]
        assert new_text == answer["text"]
        edit = change.edits[0]
        lines = BUGGY.splitlines(keepends=True)
        start = sum(map(len, lines[: edit.range.start.line])) + edit.range.start.character
        end = sum(map(len, lines[: edit.range.end.line])) + edit.range.end.character
        document = BUGGY[:start] + new_text + BUGGY[end:]
        assert "return a + b" in document, document
        assert document.startswith("import math\n\n\ndef add(a, b):\n"), document
        assert document.endswith("\n\n\nprint(add(2, 3))\n"), document  # untouched, byte for byte


async def test_stale_edit_is_never_applied(qwen_gguf: Path) -> None:
    async with lsp_session("neovim", {"model": str(qwen_gguf)}) as s:
        applied = recording(s)
        await s.wait_status("ready")
        s.open(URI, BUGGY)
        task = asyncio.ensure_future(run_edit(s, FUNCTION, "Rename the function to plus."))
        await asyncio.sleep(0.3)
        s.change(URI, 2, types.Range(types.Position(8, 0), types.Position(8, 0)), "# typed\n")
        answer = await task
        assert answer["applied"] is False and "changed" in answer["reason"], answer
        assert applied == []


async def test_edit_arguments_are_checked(tiny_starcoder: Path) -> None:
    async with lsp_session("neovim", {"model": str(tiny_starcoder), "threads": 1}) as s:
        await s.wait_status("ready")
        s.open(URI, BUGGY)
        rng = s.client.protocol._converter.unstructure(FUNCTION)
        view = "git:/tmp/starcoder-test/edit.py?%7B%22ref%22%3A%22HEAD%22%7D"
        s.open(view, BUGGY)  # the old side of a diff: read-only, never edited
        for arguments in ([URI], [URI, {"start": 1}, "Fix"], [URI, FUNCTION, ""], [1, 2, 3],
                          [view, rng, "Fix bugs."]):
            with pytest.raises(JsonRpcException):
                await s.client.workspace_execute_command_async(types.ExecuteCommandParams(
                    command="starcoder.edit", arguments=arguments))
        untitled = "untitled:Untitled-1"  # an unsaved buffer is edited like a file
        s.open(untitled, BUGGY)
        answer = await s.client.workspace_execute_command_async(types.ExecuteCommandParams(
            command="starcoder.edit", arguments=[untitled, rng, "Fix bugs."]))
        assert isinstance(answer, dict) and "applied" in answer, answer


async def test_cancelled_edit_leaves_the_document_untouched(qwen_gguf: Path) -> None:
    """The editor cancels the command ($/cancelRequest) while the model writes: the answer is
    RequestCancelled, no edit is ever applied, and the server goes on serving."""
    async with lsp_session("visual-studio-code", {"model": str(qwen_gguf)}) as s:
        applied = recording(s)
        assert (await s.wait_status("ready", "error"))["state"] == "ready"
        s.open(URI, BUGGY)
        before = set(s.client.progress_reports)
        answer = asyncio.ensure_future(s.client.protocol.send_request_async(
            types.WORKSPACE_EXECUTE_COMMAND, types.ExecuteCommandParams(
                command="starcoder.edit",
                arguments=[URI, s.client.protocol._converter.unstructure(FUNCTION),
                           "Add a detailed docstring with several examples, and a comment on "
                           "every line."]), msg_id="edit-1"))

        assert await wait_streaming(s, before, answer), "the edit was not being written"
        s.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="edit-1"))
        with pytest.raises(JsonRpcException, match="cancel"):
            await asyncio.wait_for(answer, 10)
        await asyncio.sleep(3.0)  # long enough for an edit that was not stopped to land
        assert applied == []
        assert (await run_edit(s, FUNCTION, "Fix bugs."))["applied"] is True  # still serving
        assert len(applied) == 1
