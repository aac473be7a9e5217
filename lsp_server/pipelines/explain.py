""""Explain this snippet": the code (cut to a token budget) and the definitions it uses -> the
model's chat template (instruct models) or a Tech-Assistant preamble (base models) -> free text,
streamed, pre-empted by completions -> markdown."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lsp_server import defaults
from lsp_server.context.blocks import used_definitions
from lsp_server.context.languages import language_of
from lsp_server.engine.base import ChatTemplate
from lsp_server.lifecycle import ModelManager
from lsp_server.prompt.explain import (
    STOP_STRINGS,
    ExplainRequest,
    base_prompt,
    chat_prompt,
    should_stop,
    strip_turns,
    warm_chat_template,
)

log = logging.getLogger(__name__)


@dataclass
class Explanation:
    markdown: str
    first_text_s: float
    total_s: float
    tokens: int
    truncated: bool = False


def prompt_parts(chat: ChatTemplate | None, req: ExplainRequest) -> tuple[str, str, str]:
    """(template text before, the user's code, template text after): the chat template when the
    model has one and it renders, else the base-model preamble."""
    if chat is not None:
        try:
            return chat_prompt(chat.source, req, chat.bos_text, chat.eos_text)
        except Exception as exc:  # a template we cannot render: fall back to the preamble
            log.warning("chat template failed (%s); using the plain preamble", exc)
    return base_prompt(req)


class ExplainPipeline:
    def __init__(self, manager: ModelManager) -> None:
        self.manager = manager

    async def explain(self, lines: Sequence[str], start: int, end: int, *, path: str,
                      language: str, on_text: Callable[[str], None] | None = None,
                      cancel: threading.Event | None = None) -> Explanation:
        """Explain lines [start, end) of a document; streams partial text through `on_text`."""
        engine = self.manager.require()
        cancel = cancel or threading.Event()
        t0 = time.perf_counter()
        end = max(end, start + 1)
        n_lines = max(1, min(end, len(lines)) - start)
        code_lines: list[str] = []  # at most what could fit the token budget, by characters
        chars = 0
        for i in range(start, min(end, len(lines))):
            if chars > defaults.EXPLAIN_SNIPPET_TOKENS * defaults.MAX_CHARS_PER_TOKEN:
                break
            code_lines.append(lines[i])
            chars += len(lines[i])
        definitions = used_definitions(lines, start, start + max(1, len(code_lines)))
        chat = engine.chat
        if chat is not None:  # a slow template compiles off the event loop, not on the engine
            await asyncio.to_thread(warm_chat_template, chat.source, chat.bos_text, chat.eos_text)

        def setup(_: threading.Event) -> tuple[list[object], bool]:
            kept, note = code_lines, ""
            while len(kept) > 1 and engine.count("".join(kept)) > defaults.EXPLAIN_SNIPPET_TOKENS:
                kept = kept[: max(1, len(kept) * 3 // 4)]
            if len(kept) < n_lines:
                note = f"(Only the first {len(kept)} of its {n_lines} lines are shown.)"
            req = ExplainRequest("".join(kept), language_of(language, path), path or "untitled",
                                 definitions, note)
            before, code, after = prompt_parts(chat, req)
            ids = [*engine.tokenize_special(before), *engine.tokenize(code),
                   *engine.tokenize_special(after)]
            return ids, bool(note)

        first: list[float] = []

        def stream(text: str) -> None:
            if not first:
                first.append(time.perf_counter() - t0)
            if on_text is not None:
                on_text(strip_turns(text))

        ids, truncated = await self.manager.reporting(engine.run(setup))
        gen = await self.manager.reporting(engine.generate_text(
            ids, max_tokens=defaults.EXPLAIN_MAX_TOKENS, stops=STOP_STRINGS,
            should_stop=should_stop, on_text=stream, cancel=cancel))
        return _explanation(gen.text, truncated, t0, first[0] if first else 0.0, gen.generated,
                            n_lines)


def _explanation(text: str, truncated: bool, t0: float, first_s: float, tokens: int,
                 n_lines: int) -> Explanation:
    answer = strip_turns(text)
    if len(answer) > defaults.EXPLANATION_MAX_CHARS:
        answer = answer[: defaults.EXPLANATION_MAX_CHARS] + "\n\n_(cut: the explanation was too long)_"
    if truncated:
        answer += "\n\n_(The code was long: only its first part was explained.)_"
    total = time.perf_counter() - t0
    log.info("explained %d lines in %.1f s (first text after %.1f s, %d tokens)", n_lines, total,
             first_s, tokens)
    return Explanation(answer, first_s, total, tokens, truncated)
