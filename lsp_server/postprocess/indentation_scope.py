"""Rule: a suggestion ends where it dedents out of the block it starts in."""

from __future__ import annotations

from lsp_server.postprocess.situation import (
    BLOCK_OPENERS,
    CONTINUATIONS,
    INDENT_STEP,
    Situation,
    following_lines,
    indent_width,
    widths,
)


def indentation_scope(text: str, sit: Situation) -> str:
    """Cut where a later line dedents below the block the suggestion starts in.

    With code after the cursor, that code continues the outer blocks, so the suggestion stays in
    its own block (a dedent is the model writing its own version of what follows). At the end of
    a file nothing follows: the suggestion may close blocks, but not go back to the top level
    from inside one (there the model moves on to test code and prose).
    """
    lines = text.split("\n")
    if len(lines) <= 1:
        return text
    head = sit.line_prefix
    block = widths(lines, sit)[0]
    if head.strip() and head.rstrip().endswith(BLOCK_OPENERS):
        block += 1  # a block was opened: its body is deeper than the opener line
    following = following_lines(sit, 1)
    floor = block if following else min(block, 1)
    outer = indent_width(following[0]) if following else 0
    kept = [lines[0]]
    blank_run = 0
    for line in lines[1:]:
        width, stripped = indent_width(line), line.strip()
        if stripped and width < floor:
            if stripped.lstrip("})] ").startswith(CONTINUATIONS) and (
                width == floor - 1  # pairs with the opener the cursor line ends in
                or (width >= floor - INDENT_STEP and (not following
                                                      or outer >= width + INDENT_STEP))
            ):
                pass  # `else:` one level out, and the code after the cursor sits inside it
            elif stripped.startswith(("}", ")", "]")) and width >= outer:
                kept.append(line)  # closes what was opened before the cursor: the end
                break
            else:
                break
        blank_run = blank_run + 1 if not stripped else 0
        if blank_run >= 2:  # two blank lines: the model moved on to the next top-level thing
            break
        kept.append(line)
    return "\n".join(kept)


def indentation_scope_stop(text: str, sit: Situation) -> bool:
    """Early stop: the scope already ends before the last complete line, so more cannot stay."""
    return (sit.multiline and text.count("\n") >= 2
            and indentation_scope(text, sit).count("\n") < text.count("\n") - 1)
