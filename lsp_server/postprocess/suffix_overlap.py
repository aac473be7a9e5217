"""Rule: drop the tail that re-types what already follows the cursor."""

from __future__ import annotations

from lsp_server.postprocess.overlap import DISTINCTIVE_LINE_CHARS, overlap_at
from lsp_server.postprocess.situation import Situation, following_lines


def suffix_overlap(text: str, sit: Situation) -> str:
    """Drop the tail that re-types what already follows the cursor.

    FIM models that finish the hole often go on to write the code after it again (and then
    more): the first line that re-types the following code ends the suggestion.
    """
    if not text or not sit.suffix.strip():
        return text
    lines = text.split("\n")
    at = overlap_at(text, sit)
    if at is not None:
        return "\n".join(lines[:at])
    # The end of the line equal to the start of the text after the cursor on this line.
    tail = sit.line_suffix.rstrip()
    if tail and len(lines) == 1:
        first = lines[0]
        for n in range(len(tail), 0, -1):
            if first.endswith(tail[:n]):
                return first[: len(first) - n]
    return text


def suffix_overlap_stop(text: str, sit: Situation) -> bool:
    """Early stop: the complete lines already re-type the following code, and surely so."""
    if not sit.multiline or "\n" not in text:
        return False
    done = text[: text.rfind("\n")]  # complete lines only: the last one may still grow
    lines = done.split("\n")
    at = overlap_at(done, sit)
    if at is None:
        return False
    # A match on the last complete line is only sure when it is a distinctive copy of the
    # very next line; a short or later line needs the line after it, not yet generated.
    following = following_lines(sit, 1)
    sure = (len(lines[at].strip()) >= DISTINCTIVE_LINE_CHARS
            and lines[at].strip() == following[0].strip())
    return len(lines) - at >= 2 or sure
