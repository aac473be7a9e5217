"""Typed-ahead and recent-state answers: no model call (the engine's token counter proves it)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lsprotocol import types

from lsp_server.engine.cache import SuggestionCache
from tests.conftest import Session, lsp_session


def test_typed_ahead_serves_the_rest_of_the_suggestion() -> None:
    c = SuggestionCache()
    c.store("u", "x = ", "\n", "compute(a, b)")
    assert c.lookup("u", "x = comp", "\n") == "ute(a, b)"
    assert c.lookup("u", "x = cx", "\n") is None  # diverged
    assert c.lookup("u", "x = compute(a, b)", "\n") is None  # fully typed: nothing left
    assert c.lookup("u", "x = comp", "\nother") is None  # the suffix changed
    assert c.typed_ahead_hits == 1


def test_deleting_back_to_a_seen_state_hits_the_lru() -> None:
    c = SuggestionCache(max_entries=2)
    c.store("u", "a", "", "1")
    c.store("u", "ab", "", "2")
    assert c.lookup("u", "a", "") == "1"
    c.store("u", "abc", "", "3")
    c.store("u", "abcd", "", "4")
    assert c.lookup("u", "ab", "") is None  # evicted (bounded)
    assert c.hits == 1


def test_quick_answers_serve_typed_ahead_but_not_the_lru() -> None:
    c = SuggestionCache()
    c.store("u", "x", "", "yz", remember=False)
    assert c.lookup("u", "x", "") is None
    assert c.lookup("u", "xy", "") == "z"


def test_a_prefetch_keeps_its_state_only_and_the_shown_suggestion_serves_typing() -> None:
    """The line after a shown suggestion lands (prefetched) while that suggestion is on screen:
    typing into the shown one still hits; at the prefetched state the prefetch answers, and from
    then on it is the one typed into (accept-word after Enter)."""
    c = SuggestionCache()
    c.store("u", "x = ", "\n", "compute(a, b)")
    c.store_key(c.key("u", "x = compute(a, b)\n", "\n"), "return x", shown=False)
    assert c.lookup("u", "x = co", "\n") == "mpute(a, b)"
    assert c.lookup("u", "x = compute(a, b)\n", "\n") == "return x"
    assert c.lookup("u", "x = compute(a, b)\nret", "\n") == "urn x"


async def stats(s: Session) -> dict[str, Any]:
    return await s.stats()


async def settled(s: Session) -> dict[str, Any]:
    """The stats once background work (the prefetch of the line after a shown suggestion) is
    over: the evaluated-token count stops moving."""
    last = await stats(s)
    still = 0
    while still < 3:
        await asyncio.sleep(0.2)
        now = await stats(s)
        still = still + 1 if now["evaluated"] == last["evaluated"] else 0
        last = now
    return last


async def test_typed_ahead_over_lsp_runs_no_model(tiny_starcoder: Path) -> None:
    uri = "file:///tmp/starcoder-test/typed.py"
    text = "def f(a, b):\n    \n"
    async with lsp_session("visual-studio-code",
                           {"model": str(tiny_starcoder), "threads": 1, "maxTokens": 6}) as s:
        await s.wait_status("ready")
        s.open(uri, text)
        items = await s.inline(uri, 1, 4)
        assert items, "the tiny model gave no suggestion to type ahead into"
        suggestion = str(items[0].insert_text)
        typed = suggestion[0]
        assert len(suggestion) >= 2, suggestion
        before = (await settled(s))["evaluated"]
        s.client.text_document_did_change(types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=2),
            content_changes=[types.TextDocumentContentChangePartial(
                range=types.Range(types.Position(1, 4), types.Position(1, 4)), text=typed)]))
        again = await s.inline(uri, 1, 5)
        after = await stats(s)
        assert again and again[0].insert_text == suggestion[1:]
        assert after["evaluated"] == before  # answered without running the model
        assert after["typedAheadHits"] == 1
