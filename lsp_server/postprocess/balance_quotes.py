"""Rule: cut a one-line suggestion at a string it opens but never closes."""

from __future__ import annotations

from lsp_server.postprocess.situation import Situation


def _open_string(line: str) -> int | None:
    """Index of the quote that opens a string still open at the end of `line`, else None.

    Language-neutral: `"`, `'` and backticks with backslash escapes; `#` or `//` outside a string
    starts a comment (an apostrophe in `# don't` is no string).
    """
    start: int | None = None
    escaped = False
    for i, ch in enumerate(line):
        if start is not None:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == line[start]:
                start = None
        elif ch in "\"'`":
            start = i
        elif ch == "#" or line.startswith("//", i):
            break
    return start


def balance_quotes(text: str, sit: Situation) -> str:
    """Cut a one-line suggestion at a string it opens but never closes.

    Accepting it would leave the rest of the line inside a string literal. Left alone: a string
    the user is already typing in (opened before the cursor), multi-line text and triple quotes,
    where a line may legitimately end inside a string.
    """
    if "\n" in text or any(q * 3 in sit.line_prefix + text for q in "\"'`"):
        return text
    if _open_string(sit.line_prefix) is not None:
        return text
    at = _open_string(sit.line_prefix + text)
    if at is None:
        return text
    return text[: at - len(sit.line_prefix)].rstrip(" \t")
