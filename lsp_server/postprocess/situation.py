"""What the rules know about the cursor (`Situation`) and the indentation helpers they share.

Kept apart from the rules so that every rule module depends on this one and on nothing else but
`overlap`, and the pipeline order is the only thing tying rules together.
"""

from __future__ import annotations

from dataclasses import dataclass

BLOCK_OPENERS = (":", "{", "(", "[", "=>", "->", " do", " then")
# Lines that continue a block statement one level out (`else:`, `} catch (e) {`).
CONTINUATIONS = ("else", "elif", "except", "finally", "case", "catch", "default")
# Columns per indentation level when judging "one level out" (tabs count as 4 too).
INDENT_STEP = 4
# How far up `previous_line` is looked for (the service looks as far over its document lines).
PREVIOUS_LINE_LOOKBACK = 50


@dataclass(frozen=True)
class Situation:
    """What surrounds the cursor, as the rules need it."""

    line_prefix: str  # text of the cursor line before the cursor
    line_suffix: str  # text of the cursor line after the cursor (no newline)
    suffix: str  # everything after the cursor, as the model saw it
    previous_line: str = ""  # the last non-blank line above the cursor line

    @classmethod
    def between(cls, before: str, after: str) -> Situation:
        """The situation of a cursor with all of `before` above/left of it and `after` after it
        (as the model sees it): for callers that hold text, not editor lines."""
        lines = before.split("\n")
        above = next((ln for ln in reversed(lines[-PREVIOUS_LINE_LOOKBACK - 1 : -1])
                      if ln.strip()), "")
        return cls(lines[-1], after.split("\n", 1)[0], after, above)

    @property
    def before_code(self) -> bool:
        """Only indentation before the cursor and code after it: new lines go *above* that code."""
        return not self.line_prefix.strip() and bool(self.line_suffix.strip())

    @property
    def multiline(self) -> bool:
        """Finish the line when text follows the cursor; offer a block at an empty/opened line."""
        if self.before_code:
            return True
        if self.line_suffix.strip() and self.line_suffix.strip() not in (")", "]", "}", "):"):
            return False
        head = self.line_prefix.rstrip()
        return not head or head.endswith(BLOCK_OPENERS) or not self.line_prefix.strip()

    @property
    def indent(self) -> str:
        return self.line_prefix[: len(self.line_prefix) - len(self.line_prefix.lstrip())]


def indent_width(line: str) -> int:
    """Columns of leading whitespace, tabs counted as 4."""
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def following_lines(sit: Situation, limit: int = 8) -> list[str]:
    """The first non-blank lines of code after the cursor's insertion point, as whole lines.

    Above existing code (`before_code`) the cursor line itself is the first of them; otherwise
    the rest of the cursor line is not a line of its own and is left out.
    """
    lines = sit.suffix.split("\n")
    if sit.before_code:
        lines[0] = sit.line_prefix + lines[0]
    else:
        lines = lines[1:]
    return [ln for ln in lines if ln.strip()][:limit]


def widths(lines: list[str], sit: Situation) -> list[int]:
    """Indentation of each generated line in the file (the first one continues the cursor line)."""
    head = sit.line_prefix
    first = (len(head.expandtabs(4)) + indent_width(lines[0]) if not head.strip()
             else indent_width(head))
    return [first, *(indent_width(ln) for ln in lines[1:])]
