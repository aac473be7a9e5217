"""starcoder-lsp: local, private, fast AI code completion over LSP."""

from __future__ import annotations

__version__ = "0.1.0"
