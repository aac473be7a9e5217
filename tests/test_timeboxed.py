"""Time-boxed answers on the real Qwen2.5-Coder-0.5B: a block still being generated when the
answer budget is spent is answered with its complete lines (never a half line), goes on in the
background, and answers the next request that only types into it, without running the model again.
The budget is set to 0 here, and decoding slowed after the first line break (as on a slow machine),
so the early answer comes at that line break whatever the machine's speed and load."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from lsprotocol import types

from lsp_server import defaults
from lsp_server.pipelines import completion as pipeline_module
from lsp_server.pipelines import timebox as timebox_module
from lsp_server.service import Assistant, CompletionRequest
from lsp_server.settings import Settings
from tests.conftest import lsp_session

pytestmark = pytest.mark.real_model

TOTAL = [  # Qwen 0.5B: "if v > 0:\n            result += v", a block of two lines
    "def total(values):\n",
    '    """Return the sum of the positive values."""\n',
    "    result = 0\n",
    "    for v in values:\n",
    "        \n",
]
ENTER = "\n            "  # after `if v > 0:`, as editors auto-indent


def _typed(lines: list[str], line: int, text: str) -> tuple[list[str], int, int]:
    """The document once `text` is typed at the end of `line` (the cursor after it)."""
    before = "".join(lines[:line]) + lines[line].rstrip("\n") + text
    after = "\n" + "".join(lines[line + 1:])
    doc = (before + after).splitlines(keepends=True)
    row = before.count("\n")
    return doc, row, len(before) - (before.rfind("\n") + 1)


def _slow_after_a_line(monkeypatch: pytest.MonkeyPatch, budget_s: float, pause_s: float) -> None:
    """Answer budget `budget_s`; decoding slowed by `pause_s` per piece once the block has a
    line break past its leading ones (as on a slow machine); never cut short by load."""
    monkeypatch.setattr(defaults, "ANSWER_BUDGET_S", budget_s)
    monkeypatch.setattr(defaults, "GENERATION_BUDGET_S", 120.0)
    rules = pipeline_module.should_stop

    def slow(text: str, sit: pipeline_module.Situation) -> bool:
        if "\n" in text.strip("\n"):
            time.sleep(pause_s)  # on the engine's thread: the event loop answers meanwhile
        return rules(text, sit)

    monkeypatch.setattr(pipeline_module, "should_stop", slow)
    monkeypatch.setattr(timebox_module, "should_stop", slow)  # a line carried on (`Carry`)


def test_a_block_is_answered_early_then_typed_into(qwen_gguf: Path, monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    _slow_after_a_line(monkeypatch, budget_s=0.0, pause_s=0.05)

    async def run() -> None:
        a = Assistant(Settings(model=str(qwen_gguf), max_tokens=96, context_tokens=2048))
        await a.load()
        assert a.ready, a.message
        try:
            first = await a.complete(CompletionRequest(TOTAL, 4, 8, uri="file:///f.py",
                                                       language="python", path="f.py"))
            assert first is not None and first.text.strip(), first
            pipeline = a.completion
            cont = pipeline._continuation
            assert pipeline.early_answers == 1 and cont is not None, pipeline.stats()
            # The user accepts the first line and presses Enter while the block goes on.
            head = first.text.split("\n")[0]
            doc, row, col = _typed(TOTAL, 4, head + ENTER)
            second = await a.complete(CompletionRequest(doc, row, col, uri="file:///f.py",
                                                        language="python", path="f.py"))
            block = await cont.job
            assert block is not None
            full = block.text
            assert full.startswith(first.text), (first.text, full)
            assert full.startswith(first.text + "\n") or full == first.text, "no half line shown"
            assert second is not None and second.from_cache, (first.text, full, second.text)
            assert second.text and full.startswith(head + ENTER + second.text), (second.text, full)
            # Answered by the block already going on (from_cache: no model job was started).
            assert pipeline.stats()["joined"] + pipeline.cache.typed_ahead_hits >= 1
        finally:
            a.shutdown()

    asyncio.run(run())


PARTIAL = [  # Qwen 0.5B finishes `    result = ` as a line; after it, the loop is missing
    "def total(values):\n",
    '    """Return the sum of the positive values."""\n',
    "    result = \n",
    "\n",
    "\n",
    "print(total([1, -2, 3]))\n",
]
URI = "file:///tmp/starcoder-test/total.py"


async def test_accepting_a_line_prefetches_the_next(preset: str, qwen_gguf: Path) -> None:
    """The item's `starcoder.accepted` command, run as LSP 3.18 clients run it on accept: the
    line after the accepted text is generated while the user reads, and Enter finds it."""
    async with lsp_session(preset, {"model": str(qwen_gguf), "maxTokens": 64}) as s:
        assert (await s.wait_status("ready", "error"))["state"] == "ready"
        s.open(URI, "".join(PARTIAL))
        items = await s.inline(URI, 2, 13)
        assert len(items) == 1 and isinstance(items[0].insert_text, str), items
        text = items[0].insert_text
        assert text.strip() and "\n" not in text, text
        command = items[0].command
        assert command is not None and command.command == "starcoder.accepted", command
        assert command.arguments is not None and isinstance(command.arguments[0], int)
        # Tab: the text lands, then the client runs the item's command.
        s.change(URI, 2, types.Range(types.Position(2, 13), types.Position(2, 13)), text)
        assert await s.execute(command) is None
        end = 13 + len(text)
        # The editor asks at the accepted line's end: answered with nothing while the next
        # line is prefetched (not superseding it).
        assert await s.inline(URI, 2, end) == []
        # Enter, auto-indented as editors do.
        s.change(URI, 3, types.Range(types.Position(2, end), types.Position(2, end)), "\n    ")
        items = await s.inline(URI, 3, 4)
        assert len(items) == 1 and str(items[0].insert_text).strip(), items
        stats = await s.stats()
        # One prefetch, and no second one on accept: the line's own generation went on into
        # the next line (`Carry`) while the line was shown.
        assert stats["accepted"] == 1 and stats["prefetches"] == 1, stats
        assert stats["carried"] == 1, stats
        # Enter: the prefetch's (it is made at the auto-indented start of the next line)
        assert stats["joined"] + stats["typedAheadHits"] + stats["cacheHits"] >= 1, stats
        assert stats["acceptedChars"] == len(text) and stats["shown"] >= 2, stats
        # A stale or made-up id is ignored; a malformed call is an error.
        assert await s.execute(command) is None
        with pytest.raises(Exception, match="expected \\[id\\]"):
            await s.execute(types.Command("x", "starcoder.accepted", arguments=["1"]))


def test_enter_after_a_shown_line_takes_the_prefetch_line_at_once(
        qwen_gguf: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The line after a shown one-line suggestion is prefetched while the user reads; Enter is
    answered with its first line as soon as that exists, not at the end of the request's time
    box (the block, slowed here after its first line, goes on in the background)."""
    budget = 1.0
    _slow_after_a_line(monkeypatch, budget_s=budget, pause_s=0.15)

    async def run() -> None:
        a = Assistant(Settings(model=str(qwen_gguf), max_tokens=64, context_tokens=2048))
        await a.load()
        assert a.ready, a.message
        try:
            req = CompletionRequest(PARTIAL, 2, 13, uri=URI, language="python", path="total.py")
            first = await a.complete(req)
            assert first is not None and first.text.strip() and "\n" not in first.text, first
            pipeline = a.completion
            pipeline.shown(req, first.text, 0.1)  # on screen: the prefetch starts
            await asyncio.sleep(budget + 0.5)  # reading it, past the prefetch's own time box
            cont = pipeline._continuation
            assert cont is not None and cont.before is not None and not cont.job.done(), \
                pipeline.stats()
            doc, row, col = _typed(PARTIAL, 2, first.text + "\n    ")  # Tab, Enter
            asked = time.perf_counter()
            second = await a.complete(CompletionRequest(doc, row, col, uri=URI, language="python",
                                                        path="total.py"))
            took = time.perf_counter() - asked
            assert second is not None and second.from_cache and second.text.strip(), second
            assert took < budget / 2, f"answered after {took:.2f} s (the time box is {budget} s)"
            assert pipeline.stats()["joined"] >= 1, pipeline.stats()
            await cont.job
        finally:
            a.shutdown()

    asyncio.run(run())
