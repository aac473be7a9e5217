"""Rule: a suggestion of only whitespace is no suggestion."""

from __future__ import annotations

from lsp_server.postprocess.situation import Situation


def drop_empty(text: str, sit: Situation) -> str:
    """Whitespace alone is nothing to accept: '' (no suggestion)."""
    return "" if not text.strip() else text
