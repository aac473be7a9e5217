"""A document's lines as a sequence view over its text: 8 bytes per line, not a string per line.

`TextDocument.lines` builds a tuple of one Python string per line on every call (~57 bytes of
object overhead per line on top of its text: a 200,000-line file becomes ~15 MB, for each request
that holds it). Requests queue while the model is busy, so a client can make the server hold one
such tuple per pending request: 1,500 hostile messages took a server on the tiny model past
780 MB. This view keeps only line lengths (an `array` of int64) over the document's own string,
so a pending request costs a pointer, and lines are cut out when they are read.

The index is built in C (`str.splitlines` in small pieces, their lengths, and the offset of
every `CHECKPOINT_LINES`-th line): ~12 ms for a 95,000-line text where finding each line end with
a regex took 70 ms, on the event loop, after every edit. Any other line's offset is summed from the
nearest checkpoint.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterator, Sequence
from typing import overload

_NON_SPACE = re.compile(r"\S")
# Every so many lines the view stores the line's offset; any other offset is summed from the
# nearest one (at most this many lengths, a few microseconds) or from the last line read.
CHECKPOINT_LINES = 1024


def _lengths(text: str) -> array[int]:
    """Line lengths exactly as `str.splitlines(keepends=True)` cuts the text.

    Split in pieces of ~`_PIECE` characters ending at a "\\n" (which always ends a line): the
    strings of one piece are freed before the next is split, so they reuse the same memory."""
    lengths = array("q")
    start, size = 0, len(text)
    while start < size:
        end = text.find("\n", start + _PIECE)
        end = size if end < 0 else end + 1
        lengths.extend(map(len, text[start:end].splitlines(True)))
        start = end
    return lengths


# Characters per piece `_lengths` splits at once: ~700 short lines, ~40 KB of short-lived strings
# that pymalloc serves from the same pools for every piece (as fast as one split of the whole text,
# which makes ~6 MB of them for a 95,000-line file).
_PIECE = 4 * 1024


class DocumentLines(Sequence[str]):
    """Lines of `text` exactly as `str.splitlines(keepends=True)` cuts them (what pygls uses for
    positions), optionally with the editor's extra empty last line after a final line break."""

    __slots__ = ("_anchor", "_checkpoints", "_lengths", "_n", "_real_lines", "text")

    def __init__(self, text: str, *, editor: bool = False,
                 _index: tuple[array[int], array[int]] | None = None) -> None:
        self.text = text
        if _index is None:
            lengths = _lengths(text)
            _index = lengths, _checkpoints(lengths)
        self._lengths, self._checkpoints = _index
        self._anchor = (0, 0)  # (line, its offset): the last line found, where reading goes on
        self._n = self._real_lines = len(self._lengths)  # _real_lines: as str.splitlines counts
        # After a final newline (or in an empty text) the editor shows one more, empty line.
        if editor and (not text or text[-1] in "\n\r"):  # as window.editor_lines decides
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
        if index >= self._real_lines:
            return ""
        start = self._offset(index)
        return self.text[start : start + self._lengths[index]]

    def __iter__(self) -> Iterator[str]:
        text, at = self.text, 0
        for length in self._lengths:
            yield text[at : at + length]
            at += length
        if self._n > self._real_lines:
            yield ""

    def _offset(self, line: int) -> int:
        """Offset of a real line's first character."""
        at, offset = self._anchor
        if not at <= line < at + CHECKPOINT_LINES:
            at = line // CHECKPOINT_LINES * CHECKPOINT_LINES
            offset = self._checkpoints[at // CHECKPOINT_LINES]
        offset += sum(self._lengths[at:line])
        self._anchor = (line, offset)
        return offset

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
        if line >= self._real_lines:
            return len(self.text)
        line = max(0, line)
        return self._offset(line) + min(max(0, column), self._lengths[line])

    def splice(self, start: tuple[int, int], end: tuple[int, int], new: str) -> str:
        """The text with (start, end) replaced by `new` — exactly what pygls'
        `TextDocument._apply_incremental_change` builds (including how it treats ranges past the
        end, or reversed), as three slices instead of a string per line."""
        (s_line, s_col), (e_line, e_col) = start, end
        text, n = self.text, self._real_lines
        if s_line == n:
            return text + new
        if s_line > n or s_line > e_line:  # (LSP positions are never negative)
            return text  # pygls writes every line unchanged and drops the edit
        head = text[: self.split_offset(s_line, s_col)]
        if e_line >= n:
            return head + new  # pygls drops everything after the start
        return head + new + text[self.split_offset(e_line, e_col):]

    def without_editor_line(self) -> DocumentLines:
        """The same lines without the editor's extra empty last line (sharing the index)."""
        if self._n == self._real_lines:
            return self
        return DocumentLines(self.text, _index=(self._lengths, self._checkpoints))

    @property
    def nbytes(self) -> int:
        """Memory of the index itself (the text is the document's own string)."""
        return (self._lengths.itemsize * len(self._lengths)
                + self._checkpoints.itemsize * len(self._checkpoints))


def _checkpoints(lengths: array[int]) -> array[int]:
    """Offsets of every CHECKPOINT_LINES-th line, and the end."""
    out, total, step = array("q", [0]), 0, CHECKPOINT_LINES
    for k in range(0, len(lengths), step):
        total += sum(lengths[k : k + step])
        out.append(total)
    return out
