"""Explain this snippet: code actions, the command, progress, cancellation, and real answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from lsp_server.context.blocks import enclosing_block, used_definitions
from lsp_server.prompt.explain import ExplainRequest, base_prompt, chat_prompt, strip_turns
from testkit.sessions import wait_streaming
from tests.conftest import Session, lsp_session

URI = "file:///tmp/starcoder-test/search.py"
CODE = '''\
import bisect

LIMIT = 100


def binary_search(items, target):
    """Find target in items."""
    lo, hi = 0, len(items) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if items[mid] == target:
            return mid
        if items[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1


def clamp(value):
    return min(value, LIMIT)
'''


def range_(a: int, b: int, c: int = 0, d: int = 0) -> types.Range:
    return types.Range(types.Position(a, c), types.Position(b, d))


async def actions(s: Session, rng: types.Range) -> list[types.CodeAction]:
    result = await s.client.text_document_code_action_async(types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(URI), range=rng,
        context=types.CodeActionContext(diagnostics=[])))
    return [a for a in (result or []) if isinstance(a, types.CodeAction)]


async def execute(s: Session, action: types.CodeAction) -> object:
    assert action.command is not None
    return await s.client.workspace_execute_command_async(types.ExecuteCommandParams(
        command=action.command.command, arguments=action.command.arguments))


# --- pure logic -------------------------------------------------------------------------------------
def test_enclosing_block_by_indentation() -> None:
    lines = CODE.splitlines(keepends=True)
    assert enclosing_block(lines, 10) == (5, 17)  # inside binary_search -> the whole function
    assert enclosing_block(lines, 20) == (19, 21)  # clamp
    assert enclosing_block(lines, 2) is None  # top-level statement: nothing to enclose


def test_enclosing_block_with_braces() -> None:
    js = ["function add(a, b) {\n", "  const s = a + b;\n", "  return s;\n", "}\n", "add(1, 2);\n"]
    assert enclosing_block(js, 1) == (0, 4)


def test_used_definitions_from_the_same_file() -> None:
    lines = CODE.splitlines(keepends=True)
    assert used_definitions(lines, 19, 21) == ["LIMIT = 100"]
    assert used_definitions(lines, 5, 17) == []


def test_prompts_keep_the_code_separate_and_stop_at_new_turns() -> None:
    req = ExplainRequest("x = 1\n", "python", "a.py", ["LIMIT = 100"])
    before, code, after = base_prompt(req)
    assert before.rstrip().endswith("Human:") and after.strip() == "Assistant:"
    assert "```python\nx = 1\n```" in code and "LIMIT = 100" in code
    template = ("{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n"
                "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    before, code, after = chat_prompt(template, req, "", "")
    assert before.endswith("<|im_start|>user\n") and after.startswith("<|im_end|>")
    assert strip_turns("It adds.\n-----\nHuman: more") == "It adds."
    assert strip_turns(" Assistant: It adds.") == "It adds."


def test_chat_template_is_sandboxed() -> None:
    evil = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    with pytest.raises(Exception, match=r"unsafe|not safely|access"):
        chat_prompt(evil, ExplainRequest("x", "python", "a.py"), "", "")


@pytest.mark.parametrize(("template", "why"), [
    ("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}", "took over"),
    ("{{ 'x' * 10**10 }}", "MemoryError"),
    ("{{ 'x'|center(4000000000) }}", "MemoryError|OverflowError"),
    ("{{ 'ab' * 100000 }}", "more than"),
])
def test_a_hostile_chat_template_is_bounded(template: str, why: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Nested loops, huge strings: the child is killed or fails, the server is untouched."""
    import time

    from lsp_server import defaults
    from lsp_server.prompt.template import TemplateError

    monkeypatch.setattr(defaults, "CHAT_TEMPLATE_TIMEOUT_S", 4.0)
    t0 = time.monotonic()
    with pytest.raises(TemplateError, match=why):
        chat_prompt(template, ExplainRequest("x", "python", "a.py"), "", "")
    assert time.monotonic() - t0 < 8
    t0 = time.monotonic()
    with pytest.raises(TemplateError):  # the failure is remembered: no second wait
        chat_prompt(template, ExplainRequest("y", "python", "b.py"), "", "")
    assert time.monotonic() - t0 < 0.5


def test_the_template_child_never_sees_user_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    seen: list[str] = []
    real = subprocess.run

    def spy(argv: list[str], **kw: object) -> object:
        seen.append(str(kw.get("input")))
        assert argv[1] == "-I" and kw.get("cwd")
        return real(argv, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(subprocess, "run", spy)
    template = "{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}<|a|>"
    _, code, _ = chat_prompt(template, ExplainRequest("SECRET_CODE = 1", "python",
                                                     "z.py"), "", "")
    assert "SECRET_CODE" in code and seen and all("SECRET_CODE" not in s for s in seen)


# --- over LSP, tiny model (protocol) -----------------------------------------------------------------
async def test_actions_for_selection_and_enclosing_function(preset: str, tiny_starcoder: Path
                                                            ) -> None:
    async with lsp_session(preset, {"model": str(tiny_starcoder), "threads": 1}) as s:
        await s.wait_status("ready")
        s.open(URI, CODE)
        offered = await actions(s, range_(7, 9, 4, 0))
        sel = [a for a in offered if a.title.startswith("Explain")]
        assert [a.title for a in sel] == ["Explain this snippet"]
        assert [a.title for a in offered if a.title.startswith("Edit")] == [
            "Edit: Fix bugs", "Edit: Add docstring", "Edit: Add type hints", "Edit: Simplify"]
        assert sel[0].command and sel[0].command.command == "starcoder.explain"
        assert sel[0].command.arguments and sel[0].command.arguments[0] == URI
        inside = [a for a in await actions(s, range_(10, 10, 8, 8))
                  if not a.title.startswith("Edit")]
        assert len(inside) == 1 and inside[0].title.startswith("Explain")
        args = inside[0].command.arguments  # type: ignore[union-attr]
        assert args is not None and args[1]["start"]["line"] == 5 and args[1]["end"]["line"] == 17
        assert await actions(s, range_(2, 2)) == []  # nothing to explain on a top-level line
        result = await execute(s, sel[0])
        assert isinstance(result, str)


async def test_explain_streams_progress_and_can_be_cancelled(tiny_starcoder: Path) -> None:
    async with lsp_session("visual-studio-code", {"model": str(tiny_starcoder), "threads": 1}) as s:
        await s.wait_status("ready")
        s.open(URI, CODE)
        action = (await actions(s, range_(5, 17)))[0]
        assert action.command is not None
        before = set(s.client.progress_reports)
        fut = asyncio.ensure_future(s.client.protocol.send_request_async(
            types.WORKSPACE_EXECUTE_COMMAND,
            types.ExecuteCommandParams(action.command.command, action.command.arguments),
            msg_id="explain-1"))

        assert await wait_streaming(s, before, fut), "the explanation was not being written"
        s.client.protocol.notify(types.CANCEL_REQUEST, types.CancelParams(id="explain-1"))
        with pytest.raises(JsonRpcException, match="cancel"):
            await asyncio.wait_for(fut, timeout=10)
        # Completions still work right after.
        s.open("file:///tmp/starcoder-test/other.py", "def f():\n    \n")
        assert isinstance(await s.inline("file:///tmp/starcoder-test/other.py", 1, 4), list)
        assert any(p for p in s.client.progress_reports.values())


async def test_explain_bad_arguments_are_a_json_rpc_error(tiny_starcoder: Path) -> None:
    async with lsp_session("neovim", {"model": str(tiny_starcoder), "threads": 1}) as s:
        await s.wait_status("ready")
        with pytest.raises(Exception, match=r"uri, range|not open|invalid"):
            await s.client.workspace_execute_command_async(types.ExecuteCommandParams(
                command="starcoder.explain", arguments=["file:///nope.py", {"start": 1}]))


# --- real model: the answer makes sense ----------------------------------------------------------
@pytest.mark.real_model
async def test_binary_search_explanation_mentions_sorted_input(preset: str, qwen_gguf: Path
                                                               ) -> None:
    async with lsp_session(preset, {"model": str(qwen_gguf)}) as s:
        await s.wait_status("ready")
        s.open(URI, CODE)
        action = (await actions(s, range_(9, 9, 4, 4)))[0]  # empty selection inside the function
        text = await execute(s, action)
        assert isinstance(text, str) and text.strip()
        lowered = text.lower()
        assert "sorted" in lowered, text
        assert "return" in lowered, text  # names what it returns
        shown = s.client.shown_documents or s.client.messages
        assert shown, "the explanation was not shown to the user"
