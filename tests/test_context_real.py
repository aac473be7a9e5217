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
from lsp_server.context.snippets import SourceDoc
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
