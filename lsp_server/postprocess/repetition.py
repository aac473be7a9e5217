"""Rule: cut a degenerate decode that repeats one line."""

from __future__ import annotations

from lsp_server.postprocess.situation import Situation


def repetition(text: str, sit: Situation) -> str:
    """Cut a loop: the same non-trivial line three times in a row is a degenerate decode."""
    lines = text.split("\n")
    for i in range(2, len(lines)):
        if lines[i].strip() and lines[i] == lines[i - 1] == lines[i - 2]:
            return "\n".join(lines[: i - 1])
    return text
