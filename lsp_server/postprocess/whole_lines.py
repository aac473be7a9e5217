"""Rule: lines inserted above existing code end with a newline, so that code keeps its line."""

from __future__ import annotations

from lsp_server.postprocess.situation import Situation


def whole_lines(text: str, sit: Situation) -> str:
    """End lines inserted above existing code with a newline and the cursor's indentation, so the
    code that followed the cursor stays on its own line, where it was."""
    return text + "\n" + sit.line_prefix


def lines_above_code(text: str, sit: Situation) -> str:
    """`whole_lines` for a suggestion placed above code (`before_code`); other text unchanged."""
    return whole_lines(text, sit) if text and sit.before_code else text
