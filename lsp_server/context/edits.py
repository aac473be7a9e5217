"""Recent edits as context: where the user just changed code, so the model knows it.

Continue and Tabby put recently edited ranges in the prompt: the function renamed a moment ago in
another file, the parameter just added at the top of this one. `EditLog` keeps the last line ranges
edited (per document, shifted as later edits add or remove lines above them, merged when close);
`excerpts` turns the newest few into snippets for the prompt's head.

Order decides the KV cache: the head is re-evaluated from the first token that changes. The
excerpts go after the cross-file snippets, oldest first, so a new edit elsewhere appends at the end,
and nothing here changes while the user types at the cursor: the range being typed into is inside
the window (already in the prompt) and is left out, and the other ranges' text does not change.
No time limit on ranges for the same reason (an edit expiring would change the head mid-typing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote

from lsp_server import defaults
from lsp_server.context.snippets import Snippet, SourceDoc, identifiers, language_group, path_names


@dataclass
class EditedRange:
    uri: str  # unquoted: clients quote the same URI differently in different messages
    start: int  # first line edited
    end: int  # one past the last line edited, in the document's current numbering


class EditLog:
    """The last `kept` line ranges the user edited, newest last."""

    def __init__(self, kept: int = defaults.RECENT_EDITS_KEPT) -> None:
        self._ranges: list[EditedRange] = []
        self._kept = kept

    def record(self, uri: str, start_line: int, end_line: int, text: str) -> None:
        """An incremental change replaced lines start_line..end_line (inclusive) with `text`."""
        uri = unquote(uri)
        start_line, end_line = max(0, start_line), max(start_line, end_line)
        delta = text.count("\n") - (end_line - start_line)
        new = EditedRange(uri, start_line, start_line + text.count("\n") + 1)
        merge = defaults.RECENT_EDIT_MERGE_LINES
        kept: list[EditedRange] = []
        for r in self._ranges:
            if r.uri == uri:
                if r.start > end_line:  # below the edit: moves with the lines added or removed
                    r.start, r.end = r.start + delta, r.end + delta
                elif r.end > start_line:  # overlaps the replaced lines: its end moves
                    r.end = max(r.start + 1, r.end + delta)
                if r.start - merge <= new.end and new.start <= r.end + merge:
                    new.start, new.end = min(new.start, r.start), max(new.end, r.end)
                    continue  # absorbed: the merged range is the newest
            kept.append(r)
        kept.append(new)
        self._ranges = kept[-self._kept:]

    def forget(self, uri: str) -> None:
        uri = unquote(uri)
        self._ranges = [r for r in self._ranges if r.uri != uri]

    def ranges(self) -> list[EditedRange]:
        return list(self._ranges)


@lru_cache(maxsize=defaults.RECENT_EDITS_MAX_COUNT * 2)
def _lines(text: str) -> tuple[str, ...]:
    """Another document's lines, split once per version of its text, not once per keystroke
    (a str keeps its hash, and the same text is the same object until it changes)."""
    return tuple(text.splitlines(keepends=True))


def _excerpt(lines: Sequence[str], r: EditedRange) -> tuple[int, str] | None:
    """The edited lines with a little context, at most RECENT_EDIT_MAX_LINES (the end of a long
    paste: where the user went on). None when there is nothing worth tokens (blank, minified)."""
    ctx = defaults.RECENT_EDIT_CONTEXT_LINES
    lo, hi = max(0, r.start - ctx), min(len(lines), r.end + ctx)
    lo = max(lo, hi - defaults.RECENT_EDIT_MAX_LINES)
    piece = lines[lo:hi]
    if not piece or any(len(ln) > defaults.MATCH_LINE_CHARS for ln in piece):
        return None
    text = "".join(piece)
    if not text.strip():
        return None
    return lo, text if text.endswith("\n") else text + "\n"


def excerpts(
    ranges: Sequence[EditedRange],
    current: SourceDoc,
    current_lines: Sequence[str],
    in_window: Callable[[int, int], bool],
    others: Sequence[SourceDoc],
    budget: int,
    count: Callable[[str], int],
    shown: Sequence[Snippet] = (),
    query: frozenset[str] = frozenset(),
) -> list[Snippet]:
    """Snippets of the newest edited ranges within `budget` tokens, oldest first.

    Ranges of the current document that `in_window(start, end)` says the prompt's window shows
    are left out (the window has them, as they are now), so are ranges a cross-file snippet in
    `shown` already covers, and ranges of documents no longer in `others` (closed and forgotten,
    or secrets, which never are). Another document's range counts only when its language goes
    with the current one (as for snippets) and its excerpt shares names with `query` (the
    identifiers around the cursor; RECENT_EDIT_MIN_SHARED_NAMES) or `query` names its module.
    """
    group = language_group(current.language)
    docs: Mapping[str, SourceDoc] = {unquote(d.uri): d for d in others}
    here = unquote(current.uri)
    split: dict[str, Sequence[str]] = {here: current_lines}
    chosen: list[Snippet] = []
    used = 0
    for r in reversed(ranges):
        if len(chosen) >= defaults.RECENT_EDITS_MAX_COUNT:
            break
        doc = current if r.uri == here else docs.get(r.uri)
        if doc is None or (r.uri == here and in_window(r.start, r.end)):
            continue
        if r.uri not in split:
            split[r.uri] = _lines(doc.text)
        got = _excerpt(split[r.uri], r)
        if got is None:
            continue
        start, text = got
        if r.uri != here and not _related(doc, text, group, query):
            continue
        end = start + text.count("\n")
        if any(s.path == doc.path and s.start_line < end and start < s.start_line
               + s.text.count("\n") for s in [*shown, *chosen]):
            continue  # overlaps what the prompt already shows
        n = count(text) + defaults.SNIPPET_OVERHEAD_TOKENS
        if used + n > budget:
            continue
        used += n
        chosen.append(Snippet(doc.path, doc.language, text, start, 1.0, n))
    return chosen[::-1]


def _related(doc: SourceDoc, text: str, group: str, query: frozenset[str]) -> bool:
    """Whether another document's excerpt belongs in this prompt: a language that goes with this
    one, and names shared with the code at the cursor (or that code names its module)."""
    other = language_group(doc.language)
    if group and other and other != group:
        return False
    if path_names(doc.path) & query:
        return True
    return len(identifiers(text) & query) >= defaults.RECENT_EDIT_MIN_SHARED_NAMES
