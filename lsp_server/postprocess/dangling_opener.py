"""Rule: drop trailing lines that open a block whose body is not there."""

from __future__ import annotations

from lsp_server.postprocess.situation import (
    BLOCK_OPENERS,
    Situation,
    following_lines,
    indent_width,
    widths,
)


def dangling_opener(text: str, sit: Situation) -> str:
    """Drop trailing lines that open a block (or bracket) whose body is not there.

    After a cut, a suggestion can end in `for x in xs:` with the following code at the same
    depth: accepting it breaks the file. Not for a lone line on an empty line, where the user
    may well type the body next, nor for the line the cursor is on, which only gets finished.
    """
    lines = text.split("\n")
    if len(lines) < 2 and not sit.before_code:
        return text
    following = following_lines(sit, 1)
    line_widths = widths(lines, sit)
    first = 0 if sit.before_code else 1
    end = len(lines)
    while end > first:
        last = lines[end - 1]
        if not last.strip():
            end -= 1
            continue
        if not last.rstrip().endswith(BLOCK_OPENERS):
            break
        if following and indent_width(following[0]) > line_widths[end - 1]:
            break  # the code after the cursor is its body
        end -= 1
    return "\n".join(lines[:end]) if end < len(lines) else text
