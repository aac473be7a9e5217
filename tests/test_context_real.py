"""The prompt with Qwen's real tokenizer: budgets hold for big inputs and typing keeps the cache.

Uses the service's own prompt builder (windows + snippets + FIM) on the real vocabulary.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
from pathlib import Path

import pytest

from lsp_server import defaults
from lsp_server.context.edits import EditLog
from lsp_server.context.snippets import SourceDoc, identifiers
from lsp_server.context.window import build_window
from lsp_server.engine.kv import common_prefix
from lsp_server.engine.model import LoadedModel
from lsp_server.models.catalog import load_catalog
from lsp_server.prompt.fim import TEMPLATE_OVERHEAD_TOKENS
from lsp_server.service import Assistant, CompletionRequest
from lsp_server.settings import Settings

pytestmark = pytest.mark.real_model


@pytest.fixture(scope="module")
def assistant(qwen_gguf: Path) -> Assistant:
    a = Assistant(Settings(model=str(qwen_gguf)))
    asyncio.run(a.load())
    assert a.ready, a.message
    return a


def model_of(a: Assistant) -> LoadedModel:
    assert a.worker.model is not None
    return a.worker.model


def prompt_ids(a: Assistant, req: CompletionRequest) -> list[int]:
    engine = a.manager.engine
    assert engine is not None
    _, prompt, _ = a.completion._prompt(engine, a.completion._caches_for(engine), req, 128)
    return prompt.ids


def test_typing_fifty_characters_keeps_leading_tokens(assistant: Assistant) -> None:
    source = inspect.getsource(argparse)  # ~2,600 lines: far more than an 8K window
    lines = source.splitlines(keepends=True)
    line = len(lines) // 2
    lines.insert(line, "\n")
    other = SourceDoc("file:///w/helpers.py", "helpers.py",
                      "def parse_known_intermixed(parser, args):\n    return parser, args\n",
                      "python")
    typed = "        result = parser.parse_known_intermixed(args, namespace)  # x"
    assert len(typed) >= 50
    fim = model_of(assistant).fim
    prev: list[int] | None = None
    for n in range(len(typed) + 1):
        cur = [*lines[:line], typed[:n] + "\n", *lines[line + 1 :]]
        req = CompletionRequest(cur, line, n, "file:///w/argparse.py", "python", "argparse.py",
                                [other])
        ids = prompt_ids(assistant, req)
        assert len(ids) + 128 <= model_of(assistant).n_ctx
        if prev is not None:
            # Everything before the edit is shared: at most the last few prefix tokens differ.
            edit = prev.index(fim.suffix) - 4
            assert common_prefix(prev, ids) >= edit, n
        prev = ids


def test_ten_megabyte_file_and_huge_line_fit(assistant: Assistant) -> None:
    model = model_of(assistant)
    big = ["x_value = compute(alpha, beta) + 42\n"] * (10 * 1024 * 1024 // 36)
    for lines, line, col in ((big, len(big) // 2, 5), (["y" * 100_000 + "\n"], 0, 60_000)):
        ids = prompt_ids(assistant, CompletionRequest(lines, line, col, "file:///w/big.py"))
        assert len(ids) + 128 + TEMPLATE_OVERHEAD_TOKENS <= model.n_ctx


def test_every_preset_budget_holds_with_real_tokens(assistant: Assistant) -> None:
    model = model_of(assistant)
    text = inspect.getsource(argparse).splitlines(keepends=True)
    for spec in load_catalog().models.values():
        n_ctx = min(defaults.CONTEXT_TOKENS, spec.context_length)
        budget = n_ctx - spec.max_tokens - TEMPLATE_OVERHEAD_TOKENS
        w = build_window(text, len(text) // 2, 4, budget, model.count)
        assert model.count(w.prefix) + model.count(w.suffix) <= budget + 8, spec.name


def test_recent_edits_reach_the_prompt_and_typing_keeps_its_head(assistant: Assistant) -> None:
    """An edit a moment ago in another file, and one far up in this file, are in the prompt; then
    typing at the cursor (each key recorded as an edit, as didChange does) keeps the prompt's
    head: the recent-edit excerpts do not change while the user types."""
    source = inspect.getsource(argparse)
    lines = source.splitlines(keepends=True)
    lines.insert(5, "# edited far above the window\n")  # the edit recorded below
    line = len(lines) // 2
    lines.insert(line, "\n")
    # The other file's edit names something the code at the cursor uses (else it is unrelated)
    near = sorted(identifiers("".join(lines[line - defaults.SNIPPET_QUERY_LINES_BEFORE:line])))
    other_lines = [f"def helper_{i}(value):\n    return value * {i}\n\n" for i in range(60)]
    edit_line = f"    return value * 31  # halved since v2, as {near[0]} and {near[1]} expect\n"
    other_lines.insert(30, edit_line)  # line 90: the edit
    other_text = "".join(other_lines)
    other = SourceDoc("file:///w/helpers.py", "helpers.py", other_text, "python")
    edits = EditLog()
    edits.record("file:///w/helpers.py", 90, 90, edit_line)
    edits.record("file:///w/argparse.py", 5, 5, "# edited far above the window\n")
    typed = "        result = parser.parse_known_intermixed(args, namespace)"
    prev: list[int] | None = None
    engine = assistant.manager.engine
    assert engine is not None
    for n in range(len(typed) + 1):
        if n:
            edits.record("file:///w/argparse.py", line, line, typed[n - 1])
        cur = [*lines[:line], typed[:n] + "\n", *lines[line + 1 :]]
        req = CompletionRequest(cur, line, n, "file:///w/argparse.py", "python", "argparse.py",
                                [other], edits=edits.ranges())
        if prev is None:  # the first window tells which of this file's edits it shows
            prompt_ids(assistant, req)
        ids = prompt_ids(assistant, req)
        if prev is None:
            _, _, context = assistant.completion._prompt(
                engine, assistant.completion._caches_for(engine), req, 128)
            shown = "".join(s.text for s in context)
            assert "halved since v2" in shown, [s.path for s in context]
            assert "edited far above the window" in shown, [s.path for s in context]
        else:
            edit = prev.index(model_of(assistant).fim.suffix) - 4
            assert common_prefix(prev, ids) >= edit, n
        prev = ids
