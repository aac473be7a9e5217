"""Rule: inside a line, only the first generated line is a suggestion."""

from __future__ import annotations

from lsp_server.postprocess.situation import Situation


def single_line(text: str, sit: Situation) -> str:
    """Keep only the first line when the cursor is inside a line."""
    return text.split("\n", 1)[0] if not sit.multiline else text


def single_line_stop(text: str, sit: Situation) -> bool:
    """Early stop: inside a line, the first newline ends what this rule keeps."""
    return not sit.multiline and "\n" in text
