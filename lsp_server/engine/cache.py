"""Answers that need no model call: typed-ahead and recently seen states.

- Typed-ahead: the user types characters that match the start of the current suggestion; the rest
  of it is still the answer (Copilot and llama.vim do the same).
- Recent states: an LRU keyed on the text around the cursor, so deleting back to an earlier state,
  or asking twice at the same place, answers at once.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from lsp_server import defaults


@dataclass(frozen=True)
class _Last:
    """The last suggestion of a document, keyed by hashes: the state's texts are not kept (one
    entry per document ever completed would otherwise hold two copies of each document)."""

    prefix_len: int
    prefix_hash: int
    suffix_hash: int
    text: str


# (uri, len(prefix), hash(prefix), hash(suffix)): a state without the texts themselves, so a
# request waiting for the model holds a few integers, not two copies of a 4 MB document.
StateKey = tuple[str, int, int, int]


class SuggestionCache:
    def __init__(self, max_entries: int = defaults.SUGGESTION_CACHE_ENTRIES) -> None:
        self._last: OrderedDict[str, _Last] = OrderedDict()
        self._lru: OrderedDict[tuple[str, int, int, int], str] = OrderedDict()
        self._max = max_entries
        self.hits = 0
        self.typed_ahead_hits = 0

    @staticmethod
    def key(uri: str, prefix: str, suffix: str) -> StateKey:
        return (uri, len(prefix), hash(prefix), hash(suffix))

    def lookup(self, uri: str, prefix: str, suffix: str) -> str | None:
        """The suggestion for this state, if it is known without running the model."""
        key = self.key(uri, prefix, suffix)
        text = self._lru.get(key)
        if text is not None:
            self._lru.move_to_end(key)
            self._set_last(key, text)  # shown now: typing into it goes on from here
            self.hits += 1
            return text
        last = self._last.get(uri)
        if (last is None or len(prefix) < last.prefix_len or hash(suffix) != last.suffix_hash
                or hash(prefix[: last.prefix_len]) != last.prefix_hash):
            return None
        typed = prefix[last.prefix_len :]
        if typed and len(typed) < len(last.text) and last.text.startswith(typed):
            self.typed_ahead_hits += 1
            return last.text[len(typed) :]
        return None

    def store(self, uri: str, prefix: str, suffix: str, text: str, remember: bool = True) -> None:
        """Keep `text` for typed-ahead; with `remember`, also for this exact state (LRU)."""
        self.store_key(self.key(uri, prefix, suffix), text, remember)

    def store_key(self, key: StateKey, text: str, remember: bool = True, shown: bool = True
                  ) -> None:
        """`store` for a state known by its `key`. `shown=False`: a state the user is not in yet
        (a prefetch): kept for that exact state only, so the suggestion on screen still serves
        typing ahead."""
        if not text:
            return
        if shown:
            self._set_last(key, text)
        if not remember:
            return
        self._lru[key] = text
        self._lru.move_to_end(key)
        while len(self._lru) > self._max:
            self._lru.popitem(last=False)

    def _set_last(self, key: StateKey, text: str) -> None:
        uri, prefix_len, prefix_hash, suffix_hash = key
        self._last[uri] = _Last(prefix_len, prefix_hash, suffix_hash, text)
        self._last.move_to_end(uri)
        while len(self._last) > self._max:
            self._last.popitem(last=False)

    def clear(self) -> None:
        self._last.clear()
        self._lru.clear()
