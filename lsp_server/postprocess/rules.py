"""Turning raw FIM output into a suggestion a user can accept with Tab.

Each rule is a small pure function of (text, situation) so it can be pinned by unit tests,
including the cases where it must not fire. `finish` applies them in order and logs (debug) which
rule dropped or changed a suggestion.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

log = logging.getLogger(__name__)

BLOCK_OPENERS = (":", "{", "(", "[", "=>", "->", " do", " then")


@dataclass(frozen=True)
class Situation:
    """What surrounds the cursor, as the rules need it."""

    line_prefix: str  # text of the cursor line before the cursor
    line_suffix: str  # text of the cursor line after the cursor (no newline)
    suffix: str  # everything after the cursor, as the model saw it
    previous_line: str = ""  # the last non-blank line above the cursor line

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


def _indent_width(line: str) -> int:
    return len(line.expandtabs(4)) - len(line.expandtabs(4).lstrip())


def duplicated_indentation(text: str, sit: Situation) -> str:
    """Drop indentation the model typed again when the cursor already sits at the right depth.

    With the cursor after `    ` on the first line of a body, a model sometimes writes
    `    return x`, which would land at twice the depth. Fires only when the cursor's indentation
    is exactly what the line above calls for (one level deeper after an opener, else the same).
    """
    head = sit.line_prefix
    if not head or head.strip() or not text[:1].isspace() or text.startswith("\n"):
        return text
    prev = sit.previous_line
    if not prev.strip():
        return text
    want = _indent_width(prev) + (4 if prev.rstrip().endswith(BLOCK_OPENERS) else 0)
    if len(head.expandtabs(4)) != want:
        return text
    first, sep, rest = text.partition("\n")
    return first.lstrip(" \t") + sep + rest


def single_line(text: str, sit: Situation) -> str:
    """Keep only the first line when the cursor is inside a line."""
    return text.split("\n", 1)[0] if not sit.multiline else text


def indentation_scope(text: str, sit: Situation) -> str:
    """Cut where a later line dedents below the block the cursor is in (the model wandered off)."""
    lines = text.split("\n")
    if len(lines) <= 1:
        return text
    head = sit.line_prefix
    continuation = ("else", "elif", "except", "finally", "}", ")", "]", "case", "catch")
    if head.strip():
        floor = _indent_width(head)
        if head.rstrip().endswith(BLOCK_OPENERS):
            floor += 1  # a block was opened: its body is deeper than the opener line
    else:  # cursor in leading whitespace: the block is where the first generated line sits
        floor = len(head.expandtabs(4)) + _indent_width(lines[0])
    kept = [lines[0]]
    blank_run = 0
    for line in lines[1:]:
        width = _indent_width(line)
        dedent = bool(line.strip()) and width < floor
        if dedent and not (width == floor - 1 and line.strip().startswith(continuation)):
            break
        blank_run = blank_run + 1 if not line.strip() else 0
        if blank_run >= 2:  # two blank lines: the model moved on to the next top-level thing
            break
        kept.append(line)
    return "\n".join(kept)


def suffix_overlap(text: str, sit: Situation) -> str:
    """Drop the tail that re-types what already follows the cursor."""
    suffix = sit.suffix
    if not text or not suffix.strip():
        return text
    # Whole lines the model repeated from the start of the suffix.
    lines = text.split("\n")
    following = [ln for ln in suffix.split("\n") if ln.strip()][:8]
    for i in range(1, len(lines)):
        rest = [ln for ln in lines[i:] if ln.strip()]
        if rest and len(rest) <= len(following) and all(
            a.strip() == b.strip() for a, b in zip(rest, following, strict=False)
        ):
            return "\n".join(lines[:i])
    # The end of the line equal to the start of the text after the cursor on this line.
    tail = sit.line_suffix.rstrip()
    if tail:
        first = lines[0]
        for n in range(len(tail), 0, -1):
            if first.endswith(tail[:n]) and len(lines) == 1:
                return first[: len(first) - n]
    return text


def trim_trailing(text: str, sit: Situation) -> str:
    """Trailing blank lines and spaces are never what the user wants to accept."""
    return "\n".join(line.rstrip() for line in text.rstrip().split("\n"))


def repetition(text: str, sit: Situation) -> str:
    """Cut a loop: the same non-trivial line three times in a row is a degenerate decode."""
    lines = text.split("\n")
    for i in range(2, len(lines)):
        if lines[i].strip() and lines[i] == lines[i - 1] == lines[i - 2]:
            return "\n".join(lines[: i - 1])
    return text


def body_already_there(text: str, sit: Situation) -> str:
    """Inserting lines above existing code: stop where the model re-writes what follows.

    - The first line opens a block and the code after the cursor is already indented deeper:
      that code is the block's body, so the suggestion is the opener line alone.
    - A later line at the following code's indentation starting with the same word (a second
      `return`, another `if`) is the model's own version of that code: cut before it.
    """
    if not sit.before_code:
        return text
    following = sit.line_prefix + sit.line_suffix
    lines = text.split("\n")
    first_width = len(sit.line_prefix.expandtabs(4)) + _indent_width(lines[0])
    if _indent_width(following) > first_width and lines[0].rstrip().endswith(BLOCK_OPENERS):
        return lines[0]
    word = following.split()[0] if following.split() else ""
    for i in range(1, len(lines)):
        parts = lines[i].split()
        if parts and parts[0] == word and _indent_width(lines[i]) == _indent_width(following):
            return "\n".join(lines[:i])
    return text


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
    second would close nothing. Brackets opened inside the suggestion are tracked too.
    """
    depth = _open_brackets(sit.line_prefix)
    for i, step in _brackets(text):
        if step < 0 and depth == 0:
            return text[:i].rstrip(" \t")
        depth += step
    return text


RULES = (duplicated_indentation, single_line, indentation_scope, body_already_there, repetition,
         suffix_overlap, balance_brackets, trim_trailing)


def finish(raw: str, sit: Situation) -> str:
    """Apply every rule; '' means no suggestion."""
    text = raw
    for rule in RULES:
        new = rule(text, sit)
        if new != text:
            log.debug("postprocess %s: %r -> %r", rule.__name__, text, new)
        text = new
    if not text.strip():
        log.debug("postprocess: empty suggestion dropped (raw %r)", raw)
        return ""
    if sit.suffix.startswith(text):
        log.debug("postprocess: suggestion equals the text after the cursor, dropped")
        return ""
    if sit.before_code:
        text = whole_lines(text, sit)
    return text


def whole_lines(text: str, sit: Situation) -> str:
    """End lines inserted above existing code with a newline and the cursor's indentation, so the
    code that followed the cursor stays on its own line, where it was."""
    return text + "\n" + sit.line_prefix


def should_stop(text: str, sit: Situation) -> bool:
    """Early stop during generation: the suggestion is already as long as `finish` would keep."""
    if not sit.multiline:
        return "\n" in text
    if text.count("\n") < 2:
        return False
    return indentation_scope(text, sit).count("\n") < text.count("\n") - 1
