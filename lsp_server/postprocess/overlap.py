"""Where generated text starts re-typing the code after the cursor (shared by three rules).

`suffix_overlap` cuts there, `body_already_there` leaves such text to it, and the early stop
ends the decode once the overlap is sure.
"""

from __future__ import annotations

from lsp_server.postprocess.situation import Situation, following_lines, indent_width, widths

# A line this long is distinctive enough that the model writing it again means it is re-typing
# the code after the cursor; a shorter one (`else:`, `return x`, `}`) needs the next line too.
DISTINCTIVE_LINE_CHARS = 12
# The model often skips a line of the following code and re-types the ones after it: a generated
# line equal to one of this many following lines marks the end of the new text.
OVERLAP_LOOKAHEAD_LINES = 4


def _retypes_suffix(lines: list[str], widths: list[int], i: int, following: list[str]) -> bool:
    """Whether generated line `i` starts a re-typing of the code that follows the cursor."""
    target = following[0].strip()
    if widths[i] != indent_width(following[0]):
        return False
    line = lines[i].strip()
    if line == target:
        if len(target) >= DISTINCTIVE_LINE_CHARS:
            return True
        return _next_matches(lines, i, following)
    # The model's variant of the next line (`x += "_" * n` for the existing `x += "_"`).
    return len(target) >= DISTINCTIVE_LINE_CHARS and line.startswith(target)


def _next_matches(lines: list[str], i: int, following: list[str]) -> bool:
    """The generated text ends at line `i`, or its next line is the following code's next one."""
    rest = [ln.strip() for ln in lines[i + 1 :] if ln.strip()]
    return not rest or (len(following) > 1 and rest[0] == following[1].strip())


def _retypes_later_line(lines: list[str], widths: list[int], i: int,
                        following: list[str]) -> bool:
    """Whether generated line `i` (not the first) re-types a later line of the following code.

    The model often skips the line right after the hole and goes on with the ones after it. A
    later line is a weaker signal than the next one (`return False` appears everywhere), so it
    takes a long line or two lines in a row.
    """
    line = lines[i].strip()
    if i == 0 or widths[i] != indent_width(following[0]) or line != following[0].strip():
        return False
    return len(line) >= 2 * DISTINCTIVE_LINE_CHARS or _next_matches(lines, i, following)


def overlap_at(text: str, sit: Situation) -> int | None:
    """Index of the first generated line that re-types the code after the cursor, if any."""
    following = following_lines(sit)
    lines = text.split("\n")
    if not following or not text:
        return None
    line_widths = widths(lines, sit)
    first = 0 if not sit.line_prefix.strip() else 1  # line 0 continues a line with code on it
    for i in range(first, len(lines)):
        if not lines[i].strip():
            continue
        if _retypes_suffix(lines, line_widths, i, following) or any(
            _retypes_later_line(lines, line_widths, i, following[j:])
            for j in range(1, min(OVERLAP_LOOKAHEAD_LINES, len(following)))
        ):
            return i
    return None
