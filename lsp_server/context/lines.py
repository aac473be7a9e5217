"""A document's lines as a sequence view over its text: 8 bytes per line, not a string per line.

`TextDocument.lines` builds a tuple of one Python string per line on every call (~57 bytes of
object overhead per line on top of its text: a 200,000-line file becomes ~15 MB, for each request
that holds it). Requests queue while the model is busy, so a client can make the server hold one
such tuple per pending request: 1,500 hostile messages took a server on the tiny model past
780 MB. This view keeps only line start offsets (an `array` of int64) over the document's own
string, so a pending request costs a pointer, and lines are cut out when they are read.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator, Sequence
from typing import overload

# Every line break str.splitlines knows (one alternation, no nesting: linear, cannot backtrack).
_BREAK = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")
_NON_SPACE = re.compile(r"\S")


class DocumentLines(Sequence[str]):
    """Lines of `text` exactly as `str.splitlines(keepends=True)` cuts them (what pygls uses for
    positions), optionally with the editor's extra empty last line after a final line break."""

    __slots__ = ("_n", "_real_lines", "_starts", "text")

    def __init__(self, text: str, *, editor: bool = False) -> None:
        self.text = text
        # Line ends found one at a time: splitting would build a string per line (~15 MB for a
        # 200,000-line text, for a moment, at every edit).
        starts = array("q", [0])
        starts.extend(m.end() for m in _BREAK.finditer(text))
        if starts[-1] != len(text):
            starts.append(len(text))
        # starts[i]..starts[i+1] is line i; after a final newline (or in an empty text) the
        # editor shows one more, empty line at the end.
        self._starts = starts
        self._n = self._real_lines = len(starts) - 1  # _real_lines: as str.splitlines counts
        if editor and (not text or text[-1] in "\n\r"):  # as window.editor_lines decides
            starts.append(len(text))
            self._n += 1

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        if index < 0:
            index += self._n
        if not 0 <= index < self._n:
            raise IndexError("line index out of range")
        return self.text[self._starts[index] : self._starts[index + 1]]

    def __iter__(self) -> Iterator[str]:
        starts, text = self._starts, self.text
        for i in range(self._n):
            yield text[starts[i] : starts[i + 1]]

    def split_at(self, line: int, column: int) -> tuple[str, str]:
        """The whole text before and after (line, column) — the column clamped to the line, a
        line past the end meaning the end — as two slices, without per-line strings."""
        at = self.split_offset(line, column)
        return self.text[:at], self.text[at:]

    def has_text(self, start: tuple[int, int], end: tuple[int, int]) -> bool:
        """Whether anything but whitespace lies between two (line, column) positions (no copy)."""
        a = self.split_offset(*start)
        b = self.split_offset(*end)
        return a < b and _NON_SPACE.search(self.text, a, b) is not None

    def split_offset(self, line: int, column: int) -> int:
        """Offset of (line, column) in the text, clamped like `split_at`."""
        if line >= self._n:
            return len(self.text)
        line = max(0, line)
        return min(self._starts[line] + max(0, column), self._starts[line + 1])

    def splice(self, start: tuple[int, int], end: tuple[int, int], new: str) -> str:
        """The text with (start, end) replaced by `new` — exactly what pygls'
        `TextDocument._apply_incremental_change` builds (including how it treats ranges past the
        end, or reversed), as three slices instead of a string per line."""
        (s_line, s_col), (e_line, e_col) = start, end
        text, n, starts = self.text, self._real_lines, self._starts
        if s_line == n:
            return text + new
        if s_line > n or s_line > e_line:
            return text  # pygls writes every line unchanged and drops the edit
        head = text[: min(starts[s_line] + s_col, starts[s_line + 1])]
        if e_line >= n:
            return head + new  # pygls drops everything after the start
        return head + new + text[min(starts[e_line] + e_col, starts[e_line + 1]):]

    def without_editor_line(self) -> DocumentLines:
        """The same lines without the editor's extra empty last line (sharing the index)."""
        if self._n == self._real_lines:
            return self
        view = DocumentLines.__new__(DocumentLines)
        view.text, view._starts, view._n, view._real_lines = self.text, self._starts, \
            self._real_lines, self._real_lines
        return view

    @property
    def nbytes(self) -> int:
        """Memory of the index itself (the text is the document's own string)."""
        return self._starts.itemsize * len(self._starts)
