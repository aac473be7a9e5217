"""The range an instruction edit rewrites, chosen as a user expects, and bounded in size.

- A selection inside one line edits exactly the selected text (rename `a + b` to `math.fsum(...)`
  without touching the rest of the line) — unless it spans the line's whole code, which is then
  edited as a whole line.
- A selection over several lines edits those lines whole: editors select from wherever the mouse
  went, and half a first line is never what was meant. A selection ending at column 0 of a line
  does not include that line (what shift+down selects).
- Nothing selected: the innermost function/class/block around the cursor (`blocks.enclosing_block`),
  else the cursor's line.

Whole-line ranges are trimmed of blank lines at their edges and end *before* the last line's
break, so the lines around them are never at risk and the range's end is always a real position.
A range larger than `defaults.EDIT_MAX_SELECTION_CHARS` is refused, never cut: a partial rewrite
would silently leave the rest. Columns are code points of the line (the protocol converts from
and to UTF-16); the cost is bounded by the cap, not by the document.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from lsp_server import defaults
from lsp_server.context.blocks import enclosing_block

# What str.splitlines ends a line with (pygls' lines are cut the same way), longest first.
LINE_BREAKS = ("\r\n", "\n", "\r", "\v", "\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")

RefusalKind = Literal["empty_selection", "too_large", "empty_reply", "prose", "too_long",
                      "other_code", "unchanged"]
_NOTHING_HERE = "Nothing to edit here: select some code, or place the cursor inside a function."


@dataclass(frozen=True)
class Refusal:
    """Why no edit is made; `message` is shown to the user as is."""

    kind: RefusalKind
    message: str


@dataclass(frozen=True)
class EditRange:
    """What an edit replaces, and what the prompt and the post-processing need to know about it."""

    start: tuple[int, int]  # (line, column), columns in code points
    end: tuple[int, int]
    text: str  # the document's exact text in [start, end)
    whole_lines: bool  # from column 0 to the end of a line (before its line break)
    indent: str  # whitespace every non-blank line starts with (whole lines; "" otherwise)
    eol: str  # the line break new lines get: the one the range (or its neighbourhood) uses
    before: str = ""  # lines above the range, for the prompt (LF line breaks)
    after: str = ""  # lines below it
    line_before: str = ""  # for a part of a line: the line's text before and after it
    line_after: str = ""

    @property
    def code(self) -> str:
        """The text as the model sees it: LF line breaks, the common indentation removed."""
        bodies = [split_eol(line)[0] for line in self.text.splitlines(True)]
        if not self.whole_lines:
            return "\n".join(bodies)
        cut = len(self.indent)
        return "\n".join(body[cut:] if body.strip() else "" for body in bodies)


def split_eol(line: str) -> tuple[str, str]:
    """(the line's text, its line break or "")."""
    for brk in LINE_BREAKS:
        if line.endswith(brk):
            return line[: -len(brk)], brk
    return line, ""


def common_indent(bodies: Sequence[str]) -> str:
    """The longest whitespace prefix shared by every non-blank line (tabs and spaces kept apart)."""
    prefix: str | None = None
    for body in bodies:
        stripped = body.lstrip(" \t")
        if not stripped.strip():
            continue
        lead = body[: len(body) - len(stripped)]
        if prefix is None:
            prefix = lead
        else:
            n = 0
            while n < len(prefix) and n < len(lead) and prefix[n] == lead[n]:
                n += 1
            prefix = prefix[:n]
        if not prefix:
            return ""
    return prefix or ""


def edit_range(lines: Sequence[str], start: tuple[int, int], end: tuple[int, int], *,
               max_chars: int = defaults.EDIT_MAX_SELECTION_CHARS) -> EditRange | Refusal:
    """The range to edit for a selection [start, end) of `lines` (keepends, as pygls cuts them);
    an empty selection means the block around the cursor."""
    n = len(lines)
    while n and not lines[n - 1]:  # an editor's empty last line holds nothing to edit
        n -= 1
    if n == 0:
        return Refusal("empty_selection", "The document is empty: there is no code to edit.")
    if end < start:
        start, end = end, start
    if start == end:
        if start[0] >= n:  # below the last line: no code there
            return Refusal("empty_selection", _NOTHING_HERE)
        return _around_cursor(lines, n, start[0], max_chars)
    s_line, s_col = min(start[0], n - 1), start[1]
    e_line, e_col = end
    if e_line >= n:
        e_line, e_col = n - 1, len(lines[n - 1])
    if e_line > s_line and e_col == 0:  # ends at the start of a line: that line is not selected
        e_line, e_col = e_line - 1, len(lines[e_line - 1])
    if e_line > s_line and s_col >= len(split_eol(lines[s_line])[0]):
        s_line, s_col = s_line + 1, 0  # starts after the first line's text: only its break
    if e_line == s_line:
        body = split_eol(lines[s_line])[0]
        s_col, e_col = min(s_col, len(body)), min(e_col, len(body))
        code_from = len(body) - len(body.lstrip())
        code_to = len(body.rstrip())
        if not (s_col <= code_from and e_col >= code_to):
            return _part_of_line(lines, n, s_line, s_col, e_col)
    return _whole_lines(lines, n, s_line, e_line + 1, max_chars, "The selection")


def _around_cursor(lines: Sequence[str], n: int, line: int, max_chars: int) -> EditRange | Refusal:
    block = enclosing_block(lines, line)
    if block is not None:
        return _whole_lines(lines, n, block[0], min(block[1], n), max_chars,
                            "The block around the cursor")
    if lines[line].strip():
        return _whole_lines(lines, n, line, line + 1, max_chars, "The cursor's line")
    return Refusal("empty_selection", _NOTHING_HERE)


def _part_of_line(lines: Sequence[str], n: int, line: int, s_col: int, e_col: int
                  ) -> EditRange | Refusal:
    body, brk = split_eol(lines[line])
    text = body[s_col:e_col]
    if not text.strip():
        return Refusal("empty_selection", "The selection holds no code: select the code to edit.")
    return EditRange((line, s_col), (line, e_col), text, False, "", brk or _eol_near(lines, n, line),
                     _context_above(lines, line), _context_below(lines, n, line + 1),
                     body[:s_col], body[e_col:])


def _whole_lines(lines: Sequence[str], n: int, first: int, stop: int, max_chars: int,
                 what: str) -> EditRange | Refusal:
    while first < stop and not lines[first].strip():
        first += 1
    while stop > first and not lines[stop - 1].strip():
        stop -= 1
    if first >= stop:
        return Refusal("empty_selection", "The selection holds no code: select the code to edit.")
    size, taken = 0, []
    for i in range(first, stop):  # stops at the cap: a whole 4 MB file selected costs no more
        size += len(lines[i])
        if size > max_chars:
            return Refusal("too_large",
                           f"{what} has more than {max_chars:,} characters ({stop - first:,} "
                           f"lines): select a smaller part to edit.")
        taken.append(lines[i])
    last_body, _ = split_eol(taken[-1])
    taken[-1] = last_body
    bodies = [split_eol(t)[0] for t in taken]
    breaks = [b for b in (split_eol(t)[1] for t in taken[:-1]) if b in ("\r\n", "\n", "\r")]
    # The most used break (ties: the first seen; Counter keeps insertion order).
    eol = Counter(breaks).most_common(1)[0][0] if breaks else _eol_near(lines, n, stop - 1)
    return EditRange((first, 0), (stop - 1, len(last_body)), "".join(taken), True,
                     common_indent(bodies), eol, _context_above(lines, first),
                     _context_below(lines, n, stop))


def _eol_near(lines: Sequence[str], n: int, line: int) -> str:
    """The line break of `line`, else of the nearest line that has one, else LF."""
    for i in (line, line - 1, line + 1):
        if 0 <= i < n:
            brk = split_eol(lines[i])[1]
            if brk in ("\r\n", "\n", "\r"):
                return brk
    return "\n"


def _context_above(lines: Sequence[str], first: int) -> str:
    picked: list[str] = []
    size = 0
    for i in range(first - 1, max(-1, first - 1 - defaults.EDIT_CONTEXT_LINES_BEFORE), -1):
        body = split_eol(lines[i])[0]
        size += len(body) + 1
        if size > defaults.EDIT_CONTEXT_CHARS:
            break
        picked.append(body)
    return "\n".join(reversed(picked)).strip("\n")


def _context_below(lines: Sequence[str], n: int, stop: int) -> str:
    picked: list[str] = []
    size = 0
    for i in range(stop, min(n, stop + defaults.EDIT_CONTEXT_LINES_AFTER)):
        body = split_eol(lines[i])[0]
        size += len(body) + 1
        if size > defaults.EDIT_CONTEXT_CHARS:
            break
        picked.append(body)
    return "\n".join(picked).strip("\n")
