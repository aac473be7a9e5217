"""A document's lines as a sequence view over its text: 8 bytes per line, not a string per line.

`TextDocument.lines` builds a tuple of one Python string per line on every call (~57 bytes of
object overhead per line on top of its text: a 200,000-line file becomes ~15 MB, for each request
that holds it). Requests queue while the model is busy, so a client can make the server hold one
such tuple per pending request: 1,500 hostile messages took a server on the tiny model past
780 MB. This view keeps only line start offsets (an `array` of int64) over the document's own
string, so a pending request costs a pointer, and lines are cut out when they are read.
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterator, Sequence
from typing import overload


class DocumentLines(Sequence[str]):
    """Lines of `text` exactly as `str.splitlines(keepends=True)` cuts them (what pygls uses for
    positions), optionally with the editor's extra empty last line after a final line break."""

    __slots__ = ("_n", "_starts", "text")

    def __init__(self, text: str, *, editor: bool = False) -> None:
        self.text = text
        starts = array("q", [0])
        starts.extend(itertools.accumulate(map(len, text.splitlines(keepends=True))))
        # starts[i]..starts[i+1] is line i; after a final newline (or in an empty text) the
        # editor shows one more, empty line at the end.
        self._starts = starts
        self._n = len(starts) - 1
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
        if line >= self._n:
            return self.text, ""
        line = max(0, line)
        at = min(self._starts[line] + max(0, column), self._starts[line + 1])
        return self.text[:at], self.text[at:]

    @property
    def nbytes(self) -> int:
        """Memory of the index itself (the text is the document's own string)."""
        return self._starts.itemsize * len(self._starts)
