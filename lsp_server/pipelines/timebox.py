"""Time-boxed answers: the complete lines of a suggestion still being generated, answered once the
budget is spent (`EarlyAnswer`), the block that goes on after it (`Continuation`), which answers
requests that only type into it, and a line's generation carried on into the next line (`Carry`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lsp_server.postprocess import Situation, finish, should_stop

if TYPE_CHECKING:
    from lsp_server.engine.cache import StateKey
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

    def deliver_soon(self) -> None:
        """`deliver` from the engine's thread, whatever the deadline."""
        self.loop.call_soon_threadsafe(self.deliver)

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


class Carry:
    """A one-line suggestion at a line's end whose generation goes on into the next line.

    After accepting such a line the user presses Enter, and the next line is what they wait for
    (llama.vim prefetches it with a second request). The model's own continuation past the line
    break is that next line, with no prompt to evaluate: a second request's prompt differs from
    the first after the cursor (the typed line, and a quick window's edges move), which cost up to
    ~1 s here. So once the first line is complete and is what the rules keep, the request is
    answered with it at once and decoding goes on, now judged as the state Enter makes: the line
    accepted, a line break and the editor's indentation (`at_enter`). It stops where the rules say
    that next suggestion ends, or as soon as the model's next line starts at another indentation
    (then the editor's state is not the one it continues; the usual prefetch runs instead).

    `prepare`, `begin` and `stop` run on the engine's thread; the rest is read on the event loop
    after `on` is set."""

    def __init__(self, early: EarlyAnswer,
                 at_enter: Callable[[str], tuple[StateKey, StateKey, str]]) -> None:
        self._sit: Situation | None = None
        self._early = early  # the request's: answered at once with the first line
        self._at_enter = at_enter  # first line -> (accepted state, state after Enter, indent)
        self.on = False
        self.first = ""  # the request's answer: the first line
        self.accepted: StateKey | None = None  # the state once the first line is accepted
        self.entered: StateKey | None = None  # the state after Enter, which the rest answers
        self.next = EarlyAnswer(early.loop, 0.0)  # the next suggestion's lines, at once
        self._indent = ""
        self._start = 0  # where the next line starts in the generated text
        self._next_sit: Situation | None = None
        self.quick = False  # answered from the quick window (typed-ahead only, as its answers)

    def prepare(self, sit: Situation, quick: bool) -> Carry | None:
        """The job's situation once its window is built: itself when a one-line suggestion
        there ends its line, else None (no carrying on)."""
        if sit.multiline or sit.line_suffix.strip():
            return None
        self._sit, self.quick = sit, quick
        return self

    def begin(self, text: str) -> bool:
        """At the stop of a one-line suggestion: go on when its first line is complete and kept
        as generated by the rules (then it is the line the user accepts)."""
        nl = text.find("\n")
        line = text[:nl]
        if self._sit is None or nl <= 0 or not line.strip() or finish(line, self._sit) != line:
            return False
        self.accepted, self.entered, self._indent = self._at_enter(line)
        self._next_sit = Situation(self._indent, "", self._sit.suffix,
                                   self._sit.line_prefix + line)
        self.first, self._start, self.on = line, nl + 1, True
        # Only now the request may wake (it reads `on` first): its answer is the first line.
        self._early.offer(text[:nl + 1], self._sit)
        self._early.deliver_soon()
        return True

    def stop(self, text: str) -> bool:
        """The early stop for the text past the first line, as the state after Enter sees it."""
        body = self._body(text)
        if body is None:
            return True  # another indentation (or a blank line) than Enter gives: not its answer
        if not body:
            return False  # only whitespace so far: the indentation is not known yet
        assert self._next_sit is not None
        self.next.offer(body, self._next_sit)
        return should_stop(body, self._next_sit)

    def text(self, generated: str) -> str:
        """The next suggestion from the whole generated text ('' when it went another way)."""
        body = self._body(generated)
        return finish(body, self._next_sit) if body and self._next_sit is not None else ""

    def _body(self, text: str) -> str | None:
        """The text past the first line after Enter's indentation: '' while only whitespace
        came, None when the model's next line starts otherwise than Enter leaves the cursor."""
        rest = text[self._start:]
        lead = len(rest) - len(rest.lstrip(" \t\n"))
        if lead == len(rest):
            return ""
        return rest[lead:] if rest[:lead] == self._indent else None
