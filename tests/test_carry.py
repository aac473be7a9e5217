"""A one-line suggestion at a line's end whose generation goes on into the line after Enter
(`Carry`), judged on text alone: when it goes on, what it answers, and when it gives up (then the
usual prefetch runs)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from lsp_server.engine.cache import StateKey
from lsp_server.pipelines.completion import _enter_indent
from lsp_server.pipelines.timebox import Carry, EarlyAnswer
from lsp_server.postprocess import Situation

ACCEPTED: StateKey = ("u", 1, 1, 1)
ENTERED: StateKey = ("u", 2, 2, 2)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


def _carry(loop: asyncio.AbstractEventLoop, line_prefix: str, indent: str) -> tuple[Carry, EarlyAnswer]:
    early = EarlyAnswer(loop, 10.0)
    carry = Carry(early, lambda first: (ACCEPTED, ENTERED, indent))
    sit = Situation(line_prefix, "", "\n\nprint(total([1, 2]))\n", "def total(values):")
    assert carry.prepare(sit, quick=False) is carry
    return carry, early


def test_the_first_line_answers_at_once_and_the_next_is_judged_after_enter(
        loop: asyncio.AbstractEventLoop) -> None:
    carry, early = _carry(loop, "    result = ", "    ")
    assert carry.begin("0\n") and carry.on and carry.first == "0"
    assert (carry.accepted, carry.entered) == (ACCEPTED, ENTERED)
    loop.run_until_complete(asyncio.wait_for(early.future, 1))  # the request is woken at once
    assert early.future.result() == "0"
    text = "0\n    for v in values:\n        result += v\n"
    assert not carry.stop(text)
    assert carry.next.text() == "for v in values:\n        result += v"  # lines so far
    assert carry.text(text + "    return result") == \
        "for v in values:\n        result += v\n    return result"


def test_another_indentation_than_enter_gives_ends_it(loop: asyncio.AbstractEventLoop) -> None:
    carry, _ = _carry(loop, "        return ", "        ")
    assert carry.begin("x\n")
    assert not carry.stop("x\n    ")  # only whitespace yet: not known
    assert carry.stop("x\n    print")  # the model dedents: not the state after Enter
    assert carry.text("x\n    print(x)") == ""
    blank, _ = _carry(loop, "    y = ", "    ")
    assert blank.begin("1\n")
    assert blank.stop("1\n\n    z")  # a blank line first: not what Enter types


def test_no_carrying_on_where_the_rules_change_the_line_or_inside_a_line(
        loop: asyncio.AbstractEventLoop) -> None:
    carry, early = _carry(loop, "    result = ", "    ")
    assert not carry.begin("0  \n")  # trailing spaces trimmed: not the line accepted
    assert not carry.begin("\nfoo")  # nothing on the line itself
    assert not carry.on and not early.future.done()
    inside = Carry(EarlyAnswer(loop, 1.0), lambda first: (ACCEPTED, ENTERED, ""))
    assert inside.prepare(Situation("f(", "x)", "x)\n"), quick=False) is None
    opener = Carry(EarlyAnswer(loop, 1.0), lambda first: (ACCEPTED, ENTERED, ""))
    assert opener.prepare(Situation("    ", "", "\n"), quick=False) is None  # a block is asked


def test_enter_indents_as_editors_do() -> None:
    assert _enter_indent("def f():\n    x = 1", "\n") == "    "
    assert _enter_indent("def f():\n    if x:", "\n") == "        "
    assert _enter_indent("x = 1", "") == ""
