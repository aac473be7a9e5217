"""Edit with an instruction: the selection (or the block around the cursor) -> the family's edit
prompt (chat template, git-commit format, or Tech-Assistant dialogue) -> free text, streamed and
pre-empted by completions -> the range's new text, untouched lines byte-identical, or a refusal."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lsp_server import defaults
from lsp_server.context.languages import language_of
from lsp_server.context.selection import EditRange, Refusal, edit_range
from lsp_server.lifecycle import ModelManager
from lsp_server.postprocess.edit import finish
from lsp_server.prompt.edit import (
    EditPrompt,
    EditRequest,
    edit_prompt,
    max_new_tokens,
    warm_chat_template,
)

log = logging.getLogger(__name__)


@dataclass
class EditResult:
    """The new text for `range`, or `refusal` (why nothing should change)."""

    range: EditRange | None
    text: str | None
    refusal: Refusal | None
    seconds: float
    format: str = ""


class EditPipeline:
    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager

    async def edit(self, lines: Sequence[str], start: tuple[int, int], end: tuple[int, int],
                   instruction: str, *, path: str, language: str,
                   on_text: Callable[[str], None] | None = None,
                   cancel: threading.Event | None = None) -> EditResult:
        """The edit of [start, end) (an empty range: the block around it) that `instruction`
        (non-empty: the command checks it) asks for. Raises ModelError when no model serves,
        `Cancelled` once `cancel` is set."""
        engine = self.manager.require()
        cancel = cancel or threading.Event()
        t0 = time.perf_counter()
        rng = edit_range(lines, start, end)
        if isinstance(rng, Refusal):
            return EditResult(None, None, rng, 0.0)
        req = EditRequest.of(rng, instruction, language_of(language, path), path)
        chat = engine.chat
        if chat is not None:  # a slow template compiles off the event loop, not on the engine
            await asyncio.to_thread(warm_chat_template, chat.source, chat.bos_text, chat.eos_text)

        def setup(_: threading.Event) -> tuple[EditPrompt, list[Any], int] | Refusal:
            n_code = engine.count(rng.code)
            if n_code > defaults.EDIT_MAX_SELECTION_TOKENS:
                return Refusal("too_large", f"The code to edit is {n_code:,} tokens; at most "
                                            f"{defaults.EDIT_MAX_SELECTION_TOKENS:,} are edited "
                                            "at once. Select a smaller part.")
            prompt = edit_prompt(req, chat_template=chat.source if chat else None,
                                 bos=chat.bos_text if chat else "",
                                 eos=chat.eos_text if chat else "",
                                 is_single_token=engine.has_token)
            ids = prompt.tokenize(engine.tokenize_special, engine.tokenize)
            return prompt, ids, max_new_tokens(n_code)

        ready = await self.manager.reporting(engine.run(setup))
        if isinstance(ready, Refusal):
            return EditResult(rng, None, ready, time.perf_counter() - t0)
        prompt, ids, max_tokens = ready
        gen = await self.manager.reporting(engine.generate_text(
            ids, max_tokens=max_tokens, stops=prompt.stops, should_stop=prompt.should_stop,
            on_text=on_text, cancel=cancel))
        text = finish(gen.text, rng, prompt, truncated=gen.stop_reason == "max_tokens")
        seconds = time.perf_counter() - t0
        log.info("edit (%s prompt, %d prompt tokens, %d generated) in %.1f s: %s", prompt.format,
                 len(ids), gen.generated, seconds,
                 text.kind if isinstance(text, Refusal) else f"{len(text)} characters")
        if isinstance(text, Refusal):
            return EditResult(rng, None, text, seconds, prompt.format)
        return EditResult(rng, text, None, seconds, prompt.format)
