"""Rule: cut at a closing bracket that closes nothing the cursor line opened."""

from __future__ import annotations

from collections.abc import Iterator

from lsp_server.postprocess.situation import Situation

OPENERS, CLOSERS = "([{", ")]}"


def _brackets(text: str) -> Iterator[tuple[int, int]]:
    """(index, +1/-1) for each bracket outside string literals (a rough, language-neutral scan;
    a string ends at its quote or at the end of the line)."""
    quote, escaped = "", False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote or ch == "\n":
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif ch in OPENERS:
            yield i, 1
        elif ch in CLOSERS:
            yield i, -1


def _open_brackets(text: str) -> int:
    """Net unclosed brackets in `text`."""
    depth = 0
    for _, step in _brackets(text):
        depth = max(0, depth + step)
    return depth


def balance_brackets(text: str, sit: Situation) -> str:
    """Cut at a closing bracket that closes more than is open before the cursor on this line.

    E.g. after `return fib(n-1) + fib(n` the model may write `-2))`: one `)` closes `fib(`, the
    second would close nothing. On a new line, what the line above left open counts (`min(a,`
    then `b)`). Brackets opened inside the suggestion are tracked too. A closer that starts a line
    (a dict's `}` under its entries, a call's `)`) closes what the prefix opened lines ago:
    `indentation_scope` has judged that line by its indentation.
    """
    # On a new line (only indentation before the cursor), what the line above left open is open.
    depth = _open_brackets(sit.line_prefix if sit.line_prefix.strip() else sit.previous_line)
    for i, step in _brackets(text):
        if step < 0 and depth == 0:
            nl = text.rfind("\n", 0, i)
            head = text[nl + 1 : i] if nl >= 0 else sit.line_prefix + text[:i]
            if not head.strip():
                continue  # a closer starting a line: indentation_scope judged that line
            return text[:i].rstrip(" \t")
        depth += step
    return text
