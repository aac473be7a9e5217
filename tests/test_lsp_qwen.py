"""Real-model end-to-end tests: Qwen2.5-Coder-0.5B through the real server, in both presets.

These check that the text makes sense, not just that the protocol works.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lsprotocol import types

from tests.conftest import lsp_session

pytestmark = pytest.mark.real_model

URI = "file:///tmp/starcoder-test/fib.py"
FIB = (
    "def fibonacci(n):\n"
    '    """Return the n-th Fibonacci number, computed recursively."""\n'
    "    if n < 2:\n"
    "        return n\n"
    "    \n"
    "\n\n"
    "print(fibonacci(10))\n"
)


async def test_recursive_fibonacci_body_calls_itself(preset: str, qwen_gguf: Path) -> None:
    async with lsp_session(preset, {"model": str(qwen_gguf)}) as s:
        assert (await s.wait_status("ready", "error"))["state"] == "ready"
        s.open(URI, FIB)
        res = await s.inline_whole(URI, 4, 4)  # the block, as a user who waits sees it
        text = res.text
        assert "fibonacci(n - 1)" in text.replace("n-1", "n - 1"), text
        assert "print(" not in text  # stopped at the end of the function's scope


async def test_healed_partial_word_and_line_completion(qwen_gguf: Path) -> None:
    async with lsp_session("neovim", {"model": str(qwen_gguf)}) as s:
        await s.wait_status("ready")
        text = FIB.replace("    \n\n\n", "    ret\n\n\n")
        s.open(URI, text)
        items = await s.inline(URI, 4, 7)
        assert items, "no suggestion after a partial keyword"
        suggestion = items[0].insert_text
        assert isinstance(suggestion, str)
        # Token healing: the suggestion continues the word, never doubles a space or splits it.
        assert suggestion.startswith("urn "), suggestion
        assert "fibonacci(" in suggestion
        assert "\n" not in suggestion.strip()


async def test_completion_fallback_carries_the_suggestion(qwen_gguf: Path) -> None:
    async with lsp_session("visual-studio-code", {"model": str(qwen_gguf)}, inline=False) as s:
        await s.wait_status("ready")
        s.open(URI, FIB)
        result = await s.client.text_document_completion_async(types.CompletionParams(
            text_document=types.TextDocumentIdentifier(URI), position=types.Position(4, 4)))
        assert isinstance(result, types.CompletionList) and len(result.items) == 1
        edit = result.items[0].text_edit
        assert isinstance(edit, types.TextEdit)
        assert edit.range == types.Range(types.Position(4, 4), types.Position(4, 4))
        assert "fibonacci(" in edit.new_text


async def test_model_by_catalogue_name(qwen_gguf: Path) -> None:
    """`model = "qwen2.5-coder-0.5b"` resolves through models.toml to the pulled, verified file."""
    async with lsp_session("neovim", {"model": "qwen2.5-coder-0.5b"}) as s:
        st = await s.wait_status("ready", "error")
        assert st["state"] == "ready", st
