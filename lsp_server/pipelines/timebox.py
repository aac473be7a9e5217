"""Time-boxed answers: the complete lines of a suggestion still being generated, answered once the
budget is spent (`EarlyAnswer`), and the block that goes on after it (`_Continuation`), which
answers requests that only type into it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsp_server.postprocess import Situation, finish

if TYPE_CHECKING:
    from lsp_server.pipelines.completion import Suggestion


class EarlyAnswer:
    """The complete lines of a suggestion still being generated, handed to the event loop once the
    answer budget is spent (`future`), and kept up to date for requests that join it later.

    `offer` runs on the engine's thread at every piece of text; the rules (`finish`) run only
    when a caller asks, on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, budget_s: float) -> None:
        self.loop = loop
        self.deadline = time.perf_counter() + budget_s
        self.future: asyncio.Future[str] = loop.create_future()
        self._lines = ""  # the raw text up to its last line break
        self._sit: Situation | None = None

    def offer(self, body: str, sit: Situation) -> bool:
        """Note `body` (the text so far); never asks to stop (returns False)."""
        cut = body.rfind("\n")
        if cut <= 0 or cut == len(self._lines):  # no new line break
            return False
        self._lines, self._sit = body[:cut], sit
        if time.perf_counter() >= self.deadline and not self.future.done():
            self.loop.call_soon_threadsafe(self.deliver)
        return False

    def deliver(self) -> None:
        """Answer with the lines so far, if there are any (on the event loop)."""
        text = self.text()
        if text and not self.future.done():
            self.future.set_result(text)

    def text(self) -> str:
        """The suggestion the lines so far make (the same rules as a whole suggestion)."""
        return finish(self._lines, self._sit) if self._sit is not None and self._lines else ""


@dataclass
class Continuation:
    """A block that goes on after its early answer: the state it was asked in (by hashes, as the
    cache keeps it), the engine job, and its lines so far."""

    state: tuple[str, int, int, int]
    job: asyncio.Future[Suggestion | None]
    early: EarlyAnswer
    before: tuple[str, int, int, int] | None = None  # a prefetch: the accepted state it follows
    joined: bool = False  # it answered a request: it is on screen (a prefetch no longer unseen)

    def typed_into(self, uri: str, prefix: str, suffix: str) -> str | None:
        """What was typed since, when the new state only types ahead into this block."""
        s_uri, s_len, s_hash, s_suffix = self.state
        if (uri != s_uri or len(prefix) < s_len or hash(suffix) != s_suffix
                or hash(prefix[:s_len]) != s_hash):
            return None
        typed = prefix[s_len:]
        shown = self.early.text()
        return typed if shown.startswith(typed) or typed.startswith(shown) else None
