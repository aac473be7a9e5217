"""Rule: drop indentation the model typed again when the cursor already sits at the right depth."""

from __future__ import annotations

from lsp_server.postprocess.situation import BLOCK_OPENERS, Situation, indent_width


def duplicated_indentation(text: str, sit: Situation) -> str:
    """Drop indentation the model typed again when the cursor already sits at the right depth.

    With the cursor after `    ` on the first line of a body, a model sometimes writes
    `    return x`, which would land at twice the depth. Fires only when the cursor's indentation
    is exactly what the line above calls for (one level deeper after an opener, else the same).
    """
    head = sit.line_prefix
    if not head or head.strip() or not text[:1].isspace() or text.startswith("\n"):
        return text
    prev = sit.previous_line
    if not prev.strip():
        return text
    want = indent_width(prev) + (4 if prev.rstrip().endswith(BLOCK_OPENERS) else 0)
    if len(head.expandtabs(4)) != want:
        return text
    first, sep, rest = text.partition("\n")
    return first.lstrip(" \t") + sep + rest
