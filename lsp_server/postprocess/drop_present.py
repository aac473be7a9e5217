"""Rule: never offer text that already follows the cursor."""

from __future__ import annotations

from lsp_server.postprocess.situation import Situation


def drop_present(text: str, sit: Situation) -> str:
    """A suggestion equal to the start of the text after the cursor changes nothing: ''."""
    return "" if sit.suffix.startswith(text) else text
