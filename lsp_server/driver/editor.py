"""Positions and edits as an editor computes them: UTF-16 columns, and an inline item applied.

Benchmarks score the document an editor would hold after accepting a suggestion, so the item's
range (or the cursor, without one) is applied here exactly as LSP defines it.
"""

from __future__ import annotations

import re

from lsprotocol import types

_EOL = re.compile(r"\r\n|\r|\n")  # LSP's line terminators (str.splitlines knows more)


def _utf16_to_index(line: str, units: int) -> int:
    """Code-point index of a UTF-16 column (clamped to the line, as LSP requires)."""
    n = 0
    for i, ch in enumerate(line):
        if n >= units:
            return i
        n += 2 if ord(ch) > 0xFFFF else 1
    return len(line)


def offset_at(text: str, line: int, character: int) -> int:
    """String offset of an LSP position (UTF-16 columns) in `text`."""
    starts = [0] + [m.end() for m in _EOL.finditer(text)]
    if line >= len(starts):
        return len(text)
    start = starts[line]
    end = _EOL.search(text, start)
    line_text = text[start : end.start() if end else len(text)]
    return start + _utf16_to_index(line_text, character)


def position_at(text: str, offset: int) -> tuple[int, int]:
    """LSP (line, UTF-16 column) of a string offset — e.g. the end of a FIM prefix."""
    before = text[:offset]
    starts = [0] + [m.end() for m in _EOL.finditer(before)]
    head = before[starts[-1] :]
    return len(starts) - 1, len(head.encode("utf-16-le")) // 2


def item_text(item: types.InlineCompletionItem) -> str:
    """The text an inline item inserts (a plain string or a snippet's value)."""
    text = item.insert_text
    return text if isinstance(text, str) else text.value


def apply_inline(doc: str, line: int, character: int, item: types.InlineCompletionItem) -> str:
    """The document after accepting `item` requested at (line, character).

    Without a range the item inserts at the cursor; with one it replaces that range (which may be
    empty, or cover text on the cursor line that the suggestion retypes).
    """
    if item.range is None:
        start = end = offset_at(doc, line, character)
    else:
        start = offset_at(doc, item.range.start.line, item.range.start.character)
        end = offset_at(doc, item.range.end.line, item.range.end.character)
    return doc[:start] + item_text(item) + doc[end:]
