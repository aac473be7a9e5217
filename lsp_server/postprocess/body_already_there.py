"""Rule: above existing code, stop where the model re-writes the code that follows."""

from __future__ import annotations

from lsp_server.postprocess.overlap import overlap_at
from lsp_server.postprocess.situation import BLOCK_OPENERS, Situation, indent_width


def body_already_there(text: str, sit: Situation) -> str:
    """Inserting lines above existing code: stop where the model re-writes what follows.

    - The first line opens a block and the code after the cursor is already indented deeper:
      that code is the block's body, so the suggestion is the opener line alone.
    - A later line at the following code's indentation starting with the same word (a second
      `return`, another `if`) is the model's own version of that code: cut before it.
    """
    if not sit.before_code or overlap_at(text, sit) is not None:
        return text  # the model's own copy of the following code marks the end: suffix_overlap
    following = sit.line_prefix + sit.line_suffix
    lines = text.split("\n")
    first_width = len(sit.line_prefix.expandtabs(4)) + indent_width(lines[0])
    if indent_width(following) > first_width and lines[0].rstrip().endswith(BLOCK_OPENERS):
        return lines[0]
    word = following.split()[0] if following.split() else ""
    for i in range(1, len(lines)):
        parts = lines[i].split()
        if parts and parts[0] == word and indent_width(lines[i]) == indent_width(following):
            return "\n".join(lines[:i])
    return text
