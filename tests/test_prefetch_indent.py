"""Where the line after an accepted block opener is prefetched: one indentation step deeper, as
the file writes it."""

from __future__ import annotations

from lsp_server.pipelines.completion import _indent_unit


def test_the_step_is_read_from_the_file_or_is_four_spaces() -> None:
    assert _indent_unit("def f():\n    if x:\n        y = 1\n    for a in b:", "    ") == "    "
    assert _indent_unit("def f():\n  if x:\n    y = 1\n  for a in b:", "  ") == "  "
    assert _indent_unit("def f():\n\tif x:", "\t") == "\t"
    assert _indent_unit("for a in b:", "") == "    "  # nothing to tell by
