"""A notebook cell's context: the cells above it, in order, as the code before the cursor.

Editors send each cell as its own document, but to the model a notebook is one program: the
imports and definitions of earlier cells are what the current cell uses. So the completion is made
in a virtual document of the earlier cells (code cells of the same language as they are, markdown
cells as comments, other languages left out), a blank line after each, then the current cell.
Later cells are left out: the suffix is the current cell's own rest, short and stable while typing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lsp_server.context.languages import comment

MARKDOWN = "markdown"


@dataclass(frozen=True)
class Cell:
    order: int  # the cell's place in its notebook
    language: str
    lines: Sequence[str]  # with their line endings


def _as_code(cell: Cell, language: str) -> list[str]:
    if cell.language == language:
        body = list(cell.lines)
    elif cell.language == MARKDOWN:
        body = [comment(language, line.rstrip("\r\n")).rstrip() + "\n" for line in cell.lines]
    else:
        return []
    if not any(line.strip() for line in body):
        return []
    if not body[-1].endswith(("\n", "\r")):
        body[-1] += "\n"
    return [*body, "\n"]


def with_earlier_cells(cells: Sequence[Cell], current: Cell) -> tuple[list[str], int]:
    """The current cell's lines after those of the cells before it, and how many lines were put
    before it (the offset of its first line)."""
    before: list[str] = []
    for cell in sorted((c for c in cells if c.order < current.order), key=lambda c: c.order):
        before += _as_code(cell, current.language)
    return [*before, *current.lines], len(before)
