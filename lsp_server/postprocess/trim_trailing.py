"""Rule: no trailing blank lines or spaces."""

from __future__ import annotations

from lsp_server.postprocess.situation import Situation


def trim_trailing(text: str, sit: Situation) -> str:
    """Trailing blank lines and spaces are never what the user wants to accept."""
    return "\n".join(line.rstrip() for line in text.rstrip().split("\n"))
