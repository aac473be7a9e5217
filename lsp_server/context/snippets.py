"""Cross-file context: chunks of other open (and recently closed) buffers, ranked by how many
identifiers they share with the code around the cursor.

The chosen snippets go *first* in the prompt, so any change to them re-evaluates everything after
(seconds on a CPU). Hence the selection is sticky: it is recomputed only when the other documents
change or the cursor moves more than `SNIPPET_REFRESH_LINES` from where it was chosen, and a
recomputation keeps the snippets that survive in their old order and appends new ones at the end.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from lsp_server import defaults

log = logging.getLogger(__name__)

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
# Keywords and ubiquitous names carry no signal about which file is relevant.
STOPWORDS = frozenset(
    """and as assert async await break case catch class const continue def default defer del do
    elif else enum except export extends false final finally fn for from func function global go if
    impl import in interface internal let lambda match mod mut new nil none not null object of or
    override package pass private protected pub public raise return self static struct super switch
    this throw throws trait true try type typeof undefined use val var void while with yield int str
    bool float string list dict len print println printf range none true false err error args kwargs
    value result data item items key keys values get set the""".split()
)


@dataclass(frozen=True)
class SourceDoc:
    """Another document the user has open or had open recently."""

    uri: str
    path: str  # as shown to the model: relative to the workspace when possible
    text: str
    language: str


@dataclass(frozen=True)
class Snippet:
    path: str
    language: str
    text: str
    start_line: int
    score: float
    tokens: int

    @property
    def key(self) -> tuple[str, int, str]:
        return (self.path, self.start_line, self.text)


@dataclass(frozen=True)
class _Chunk:
    start_line: int
    text: str
    idents: frozenset[str]


def identifiers(text: str) -> set[str]:
    """Lower-cased identifiers (SMTP_HOST and smtp_host are the same name to a reader)."""
    return {m.lower() for m in IDENTIFIER.findall(text) if m.lower() not in STOPWORDS}


def path_names(path: str) -> set[str]:
    """A file's own names: `from plugins import registry` refers to plugins/registry.py."""
    parts = re.split(r"[\\/]", path)
    names = {parts[-1].rsplit(".", 1)[0], *parts[:-1]}
    return {n.lower() for n in names if len(n) > 2 and n.lower() not in STOPWORDS}


def chunk_lines(text: str, size: int = defaults.SNIPPET_CHUNK_LINES,
                extra: frozenset[str] = frozenset()) -> list[_Chunk]:
    """Overlapping line chunks (stride size/2) so a definition is whole in at least one;
    `extra` names (the file's path) count as identifiers of every chunk. A chunk with a line over
    `defaults.MATCH_LINE_CHARS` (minified or generated) is no context worth its tokens, and is
    never scanned: one `findall` over a 1 MB line held the GIL, and the event loop, ~40 ms."""
    lines = text.splitlines(keepends=True)
    step = max(1, size // 2)
    chunks = []
    for start in range(0, max(1, len(lines)), step):
        piece = lines[start : start + size]
        part = "" if any(len(ln) > defaults.MATCH_LINE_CHARS for ln in piece) else "".join(piece)
        if part.strip():
            if not part.endswith("\n"):
                part += "\n"
            chunks.append(_Chunk(start, part, frozenset(identifiers(part) | extra)))
        if start + size >= len(lines):
            break
    return chunks


# Languages whose files usefully inform each other (TS imports JS, C++ includes C headers).
LANGUAGE_GROUPS = {
    "javascript": "js", "javascriptreact": "js", "typescript": "js", "typescriptreact": "js",
    "vue": "js", "svelte": "js", "c": "c", "cpp": "c", "objective-c": "c", "objective-cpp": "c",
    "cuda": "c", "java": "jvm", "kotlin": "jvm", "scala": "jvm", "groovy": "jvm",
}


def language_group(language: str) -> str:
    """'' for unknown: such files may go with anything."""
    if not language or language == "plaintext":
        return ""
    return LANGUAGE_GROUPS.get(language, language)


class RecentDocuments:
    """Recently closed buffers, kept for a while: users flip between files. Bounded in number and
    in memory (their text is no longer counted with the open documents)."""

    def __init__(self, max_docs: int = defaults.RECENT_DOCS_MAX,
                 max_age_s: float = defaults.RECENT_DOCS_MAX_AGE_S,
                 max_bytes: int = defaults.RECENT_DOCS_MAX_BYTES) -> None:
        self._docs: OrderedDict[str, tuple[float, SourceDoc]] = OrderedDict()
        self._max_docs, self._max_age, self._max_bytes = max_docs, max_age_s, max_bytes

    def remember(self, doc: SourceDoc) -> None:
        self._docs.pop(doc.uri, None)
        if sys.getsizeof(doc.text) > self._max_bytes:
            return
        self._docs[doc.uri] = (time.monotonic(), doc)
        total = sum(sys.getsizeof(d.text) for _, d in self._docs.values())
        while len(self._docs) > self._max_docs or total > self._max_bytes:
            _, (_, gone) = self._docs.popitem(last=False)
            total -= sys.getsizeof(gone.text)

    def forget(self, uri: str) -> None:
        self._docs.pop(uri, None)

    def docs(self) -> list[SourceDoc]:
        now = time.monotonic()
        for uri in [u for u, (t, _) in self._docs.items() if now - t > self._max_age]:
            del self._docs[uri]
        return [d for _, d in self._docs.values()]


@dataclass
class _Selection:
    signature: tuple[tuple[str, int, int], ...]
    anchor_line: int
    budget: int
    snippets: list[Snippet] = field(default_factory=list)


def _memory(chunks: Sequence[_Chunk]) -> int:
    """Bytes the chunks hold: their text, their identifier sets and the names in them."""
    total = sys.getsizeof(chunks)
    for ch in chunks:
        total += 64 + sys.getsizeof(ch.text) + sys.getsizeof(ch.idents)
        total += sum(sys.getsizeof(name) for name in ch.idents)
    return total


class SnippetSelector:
    """Chooses snippets for a cursor position, sticky across keystrokes (see module doc)."""

    def __init__(self, max_index_bytes: int = defaults.SNIPPET_INDEX_MAX_BYTES) -> None:
        # uri -> (hash of text, chunks, their memory)
        self._chunks: dict[str, tuple[int, list[_Chunk], int]] = {}
        self._last: dict[str, _Selection] = {}  # current uri -> last selection
        self._token_counts: dict[str, int] = {}
        self._max_index = max_index_bytes
        self._skipped: dict[str, int] = {}  # uri -> hash of a text left out for the budget

    def _chunks_of(self, doc: SourceDoc) -> tuple[list[_Chunk], int]:
        h = hash(doc.text)
        cached = self._chunks.get(doc.uri)
        if cached is None or cached[0] != h:
            chunks = chunk_lines(doc.text, extra=frozenset(path_names(doc.path)))
            cached = (h, chunks, _memory(chunks))
            self._chunks[doc.uri] = cached
        return cached[1], cached[2]

    def _indexed(self, others: Sequence[SourceDoc]) -> list[tuple[SourceDoc, list[_Chunk]]]:
        """The documents' chunks, in their order, within the index's memory budget: a document
        too large for context (generated code, data) or past the budget is left out."""
        out, used = [], 0
        for doc in others:
            if len(doc.text) > defaults.SNIPPET_DOC_MAX_CHARS or (
                    self._skipped.get(doc.uri) == hash(doc.text)):
                continue
            chunks, size = self._chunks_of(doc)
            if used + size > self._max_index:
                del self._chunks[doc.uri]  # not kept, and not rebuilt per request either
                self._skipped[doc.uri] = hash(doc.text)
                continue
            used += size
            out.append((doc, chunks))
        return out

    def select(
        self,
        current_uri: str,
        cursor_line: int,
        lines: Sequence[str],
        others: Sequence[SourceDoc],
        budget: int,
        count: Callable[[str], int],
        current_language: str = "",
    ) -> list[Snippet]:
        """Snippets for the prompt, within `budget` tokens (formatting overhead included)."""
        group = language_group(current_language)
        live = {d.uri for d in others}
        for gone in [u for u in self._chunks if u not in live]:  # closed and forgotten: free it
            del self._chunks[gone]
        if any(u not in live for u in self._skipped):  # room may have freed up: try them again
            self._skipped.clear()
        others = [d for d in others if d.uri != current_uri and d.text.strip()
                  and (not group or language_group(d.language) in (group, ""))]
        if budget <= 0 or not others:
            self._last.pop(current_uri, None)
            return []
        signature = tuple(sorted((d.uri, len(d.text), hash(d.text)) for d in others))
        prev = self._last.get(current_uri)
        if (prev is not None and prev.signature == signature and prev.budget == budget
                and abs(cursor_line - prev.anchor_line) < defaults.SNIPPET_REFRESH_LINES):
            return prev.snippets
        lo = max(0, cursor_line - defaults.SNIPPET_QUERY_LINES_BEFORE)
        near = [ln for ln in lines[lo : cursor_line + 64] if len(ln) <= defaults.MATCH_LINE_CHARS]
        around = "".join(ln for ln in lines[lo : cursor_line + 1 + defaults.SNIPPET_QUERY_LINES_AFTER]
                         if len(ln) <= defaults.MATCH_LINE_CHARS)
        query = identifiers(around)
        window_lines = {ln.strip() for ln in near if ln.strip()}
        ranked: list[tuple[float, SourceDoc, _Chunk]] = []
        for doc, chunks in self._indexed(others):
            for ch in chunks:
                if not ch.idents or not query:
                    continue
                score = len(ch.idents & query) / len(ch.idents | query)
                if score < defaults.SNIPPET_MIN_SCORE:
                    continue
                body = [ln.strip() for ln in ch.text.splitlines() if ln.strip()]
                if body and sum(ln in window_lines for ln in body) > 0.5 * len(body):
                    continue  # already visible in the window
                ranked.append((score, doc, ch))
        ranked.sort(key=lambda r: (-r[0], r[1].path, r[2].start_line))
        chosen: list[Snippet] = []
        used = 0
        taken: dict[str, list[int]] = {}
        for score, doc, ch in ranked:
            starts = taken.setdefault(doc.uri, [])
            if any(abs(ch.start_line - s) < defaults.SNIPPET_CHUNK_LINES for s in starts):
                continue  # overlaps a chunk already chosen from this file
            n = self._count(ch.text, count) + defaults.SNIPPET_OVERHEAD_TOKENS
            if used + n > budget:
                continue
            used += n
            starts.append(ch.start_line)
            chosen.append(Snippet(doc.path, doc.language, ch.text, ch.start_line, score, n))
            if len(chosen) >= defaults.SNIPPET_MAX_COUNT:
                break
        if prev is not None:  # survivors keep their old order; newcomers go last
            old = {s.key: i for i, s in enumerate(prev.snippets)}
            chosen.sort(key=lambda s: (old.get(s.key, len(old)), -s.score))
        self._last[current_uri] = _Selection(signature, cursor_line, budget, chosen)
        log.debug("snippets for %s (line %d, %d tokens of %d): %s", current_uri, cursor_line,
                  used, budget, [(s.path, s.start_line, round(s.score, 3), s.tokens) for s in chosen])
        return chosen

    def _count(self, text: str, count: Callable[[str], int]) -> int:
        n = self._token_counts.get(text)
        if n is None:
            if len(self._token_counts) > 10_000:
                self._token_counts.clear()
            n = self._token_counts[text] = count(text)
        return n
