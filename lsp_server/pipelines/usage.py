"""How well completion is doing for this user, counted locally and never sent anywhere: each
shown suggestion ends accepted (the editor's accept command, or the user typed all of it),
partially accepted (accept-word/line, or typing its start), or dismissed (the next request in that
document is elsewhere); latency per language and model; time to the first suggestion after a
document is opened. Read by `starcoder/stats`, the `starcoder.stats` report and status tooltips."""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from lsp_server import defaults


@dataclass
class _Shown:
    """A suggestion on screen: where it was offered (the prefix's length and its last
    characters, so that a later request can tell whether it typed into it) and its text."""

    uri: str
    at: int
    tail: str
    text: str


def _tail(prefix: str, end: int) -> str:
    return prefix[max(0, end - defaults.USAGE_MATCH_CHARS):end]


def percentile(values: list[float], q: float) -> float:
    """The q-quantile by nearest rank (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Usage:
    """The counters; `shown` items are resolved by the next request in their document."""

    def __init__(self) -> None:
        self.shown = 0
        self.accepted = 0
        self.partial = 0
        self.dismissed = 0
        self.accepted_chars = 0
        self._pending: OrderedDict[str, _Shown] = OrderedDict()  # by uri: the one on screen
        self._latency: dict[tuple[str, str], deque[float]] = {}
        self._opened: OrderedDict[str, float] = OrderedDict()
        self._first: deque[float] = deque(maxlen=defaults.USAGE_SAMPLES)

    def opened(self, uri: str) -> None:
        self._opened[uri] = time.monotonic()
        self._opened.move_to_end(uri)
        while len(self._opened) > defaults.USAGE_OPEN_DOCUMENTS:
            self._opened.popitem(last=False)

    def answered(self, uri: str, language: str, model: str, seconds: float) -> None:
        """A request answered with a suggestion after `seconds`."""
        key = (language or "plain text", model)
        self._latency.setdefault(key, deque(maxlen=defaults.USAGE_SAMPLES)).append(seconds)
        opened = self._opened.pop(uri, None)
        if opened is not None:
            self._first.append(time.monotonic() - opened)

    def offered(self, uri: str, prefix: str, text: str) -> None:
        """`text` was shown after `prefix` (the document's text before the cursor)."""
        self.request(uri, prefix)  # whatever was on screen before is resolved first
        self.shown += 1
        self._pending[uri] = _Shown(uri, len(prefix), _tail(prefix, len(prefix)), text)
        self._pending.move_to_end(uri)
        while len(self._pending) > defaults.SHOWN_SUGGESTIONS:
            self._resolve(self._pending.popitem(last=False)[1], 0)

    def request(self, uri: str, prefix: str) -> None:
        """A new request in `uri` with `prefix` before the cursor: the suggestion on screen
        there was typed into (partly or wholly) or dismissed."""
        shown = self._pending.get(uri)
        if shown is None:
            return
        typed = len(prefix) - shown.at
        if typed == 0 and _tail(prefix, shown.at) == shown.tail:
            return  # the same place asked again: still on screen
        del self._pending[uri]
        into = (0 < typed <= len(shown.text) and _tail(prefix, shown.at) == shown.tail
                and prefix[shown.at:] == shown.text[:typed])
        self._resolve(shown, typed if into else 0)

    def accepted_whole(self, uri: str, text: str) -> None:
        """The editor's accept command for the suggestion `text` in `uri` (editors run it right
        after inserting the text, before the next request; a request first has already counted
        the whole text as typed)."""
        shown = self._pending.get(uri)
        if shown is not None and shown.text == text:
            del self._pending[uri]
            self._resolve(shown, len(text))

    def _resolve(self, shown: _Shown, typed: int) -> None:
        if typed >= len(shown.text) > 0:
            self.accepted += 1
            self.accepted_chars += len(shown.text)
        elif typed > 0:
            self.partial += 1
            self.accepted_chars += typed
        else:
            self.dismissed += 1

    def snapshot(self) -> dict[str, object]:
        """Fields for `starcoder/stats`."""
        decided = self.accepted + self.partial + self.dismissed
        return {
            "shown": self.shown, "accepted": self.accepted, "partiallyAccepted": self.partial,
            "dismissed": self.dismissed, "acceptedChars": self.accepted_chars,
            "acceptanceRate": round((self.accepted + self.partial) / decided, 3) if decided else None,
            "latency": [{"language": lang, "model": model, "count": len(v),
                         "p50": round(percentile(list(v), 0.5), 3),
                         "p95": round(percentile(list(v), 0.95), 3)}
                        for (lang, model), v in sorted(self._latency.items())],
            "firstSuggestionP50": (round(percentile(list(self._first), 0.5), 3)
                                   if self._first else None),
            "summary": self.summary(),
        }

    def summary(self) -> str:
        """One line for a status tooltip."""
        decided = self.accepted + self.partial + self.dismissed
        if not decided:
            return f"{self.shown} suggestions shown" if self.shown else "no suggestions yet"
        rate = 100 * (self.accepted + self.partial) / decided
        all_latency = [s for v in self._latency.values() for s in v]
        return (f"{self.accepted + self.partial} of {decided} suggestions accepted ({rate:.0f}%)"
                f" · p50 {percentile(all_latency, 0.5):.2f} s")

    def report(self) -> str:
        """The markdown report (`starcoder.stats`)."""
        snap = self.snapshot()
        rate = snap["acceptanceRate"]
        lines = [
            "# StarCoder: completion stats",
            "",
            "This session only; counted on this machine and never sent anywhere.",
            "",
            "| | |", "|---|---|",
            f"| Suggestions shown | {self.shown} |",
            f"| Accepted | {self.accepted} |",
            f"| Partially accepted | {self.partial} |",
            f"| Dismissed | {self.dismissed} |",
            f"| Acceptance rate | {'—' if rate is None else f'{100 * float(str(rate)):.0f}%'} |",
            f"| Characters accepted | {self.accepted_chars} |",
        ]
        first = snap["firstSuggestionP50"]
        if first is not None:
            lines.append(f"| First suggestion after opening a file (p50) | {first:.2f} s |")
        lines += ["", "## Latency (request to suggestion)", ""]
        if self._latency:
            lines += ["| Language | Model | Suggestions | p50 | p95 |", "|---|---|---|---|---|"]
            for (lang, model), v in sorted(self._latency.items()):
                lines.append(f"| {lang} | {model} | {len(v)} | {percentile(list(v), 0.5):.2f} s "
                             f"| {percentile(list(v), 0.95):.2f} s |")
        else:
            lines.append("No suggestions yet.")
        return "\n".join(lines) + "\n"
