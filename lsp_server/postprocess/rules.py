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
# Lines that continue a block statement one level out (`else:`, `} catch (e) {`).
CONTINUATIONS = ("else", "elif", "except", "finally", "case", "catch", "default")
# Columns per indentation level when judging "one level out" (tabs count as 4 too).
INDENT_STEP = 4


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


def _following_lines(sit: Situation, limit: int = 8) -> list[str]:
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


def _widths(lines: list[str], sit: Situation) -> list[int]:
    """Indentation of each generated line in the file (the first one continues the cursor line)."""
    head = sit.line_prefix
    first = (len(head.expandtabs(4)) + _indent_width(lines[0]) if not head.strip()
             else _indent_width(head))
    return [first, *(_indent_width(ln) for ln in lines[1:])]


# A line this long is distinctive enough that the model writing it again means it is re-typing
# the code after the cursor; a shorter one (`else:`, `return x`, `}`) needs the next line too.
DISTINCTIVE_LINE_CHARS = 12


def _retypes_suffix(lines: list[str], widths: list[int], i: int, following: list[str]) -> bool:
    """Whether generated line `i` starts a re-typing of the code that follows the cursor."""
    target = following[0].strip()
    if widths[i] != _indent_width(following[0]):
        return False
    line = lines[i].strip()
    if line == target:
        if len(target) >= DISTINCTIVE_LINE_CHARS:
            return True
        return _next_matches(lines, i, following)
    # The model's variant of the next line (`x += "_" * n` for the existing `x += "_"`).
    return len(target) >= DISTINCTIVE_LINE_CHARS and line.startswith(target)


def _next_matches(lines: list[str], i: int, following: list[str]) -> bool:
    """The generated text ends at line `i`, or its next line is the following code's next one."""
    rest = [ln.strip() for ln in lines[i + 1 :] if ln.strip()]
    return not rest or (len(following) > 1 and rest[0] == following[1].strip())


def _retypes_later_line(lines: list[str], widths: list[int], i: int,
                        following: list[str]) -> bool:
    """Whether generated line `i` (not the first) re-types a later line of the following code.

    The model often skips the line right after the hole and goes on with the ones after it. A
    later line is a weaker signal than the next one (`return False` appears everywhere), so it
    takes a long line or two lines in a row.
    """
    line = lines[i].strip()
    if i == 0 or widths[i] != _indent_width(following[0]) or line != following[0].strip():
        return False
    return len(line) >= 2 * DISTINCTIVE_LINE_CHARS or _next_matches(lines, i, following)


# The model often skips a line of the following code and re-types the ones after it: a generated
# line equal to one of this many following lines marks the end of the new text.
OVERLAP_LOOKAHEAD_LINES = 4


def _overlap_at(text: str, sit: Situation) -> int | None:
    """Index of the first generated line that re-types the code after the cursor, if any."""
    following = _following_lines(sit)
    lines = text.split("\n")
    if not following or not text:
        return None
    widths = _widths(lines, sit)
    first = 0 if not sit.line_prefix.strip() else 1  # line 0 continues a line with code on it
    for i in range(first, len(lines)):
        if not lines[i].strip():
            continue
        if _retypes_suffix(lines, widths, i, following) or any(
            _retypes_later_line(lines, widths, i, following[j:])
            for j in range(1, min(OVERLAP_LOOKAHEAD_LINES, len(following)))
        ):
            return i
    return None


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
    block = _widths(lines, sit)[0]
    if head.strip() and head.rstrip().endswith(BLOCK_OPENERS):
        block += 1  # a block was opened: its body is deeper than the opener line
    following = _following_lines(sit, 1)
    floor = block if following else min(block, 1)
    outer = _indent_width(following[0]) if following else 0
    kept = [lines[0]]
    blank_run = 0
    for line in lines[1:]:
        width, stripped = _indent_width(line), line.strip()
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


def suffix_overlap(text: str, sit: Situation) -> str:
    """Drop the tail that re-types what already follows the cursor.

    FIM models that finish the hole often go on to write the code after it again (and then
    more): the first line that re-types the following code ends the suggestion.
    """
    if not text or not sit.suffix.strip():
        return text
    lines = text.split("\n")
    at = _overlap_at(text, sit)
    if at is not None:
        return "\n".join(lines[:at])
    # The end of the line equal to the start of the text after the cursor on this line.
    tail = sit.line_suffix.rstrip()
    if tail and len(lines) == 1:
        first = lines[0]
        for n in range(len(tail), 0, -1):
            if first.endswith(tail[:n]):
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
    if not sit.before_code or _overlap_at(text, sit) is not None:
        return text  # the model's own copy of the following code marks the end: suffix_overlap
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


def dangling_opener(text: str, sit: Situation) -> str:
    """Drop trailing lines that open a block (or bracket) whose body is not there.

    After a cut, a suggestion can end in `for x in xs:` with the following code at the same
    depth: accepting it breaks the file. Not for a lone line on an empty line, where the user
    may well type the body next, nor for the line the cursor is on, which only gets finished.
    """
    lines = text.split("\n")
    if len(lines) < 2 and not sit.before_code:
        return text
    following = _following_lines(sit, 1)
    widths = _widths(lines, sit)
    first = 0 if sit.before_code else 1
    end = len(lines)
    while end > first:
        last = lines[end - 1]
        if not last.strip():
            end -= 1
            continue
        if not last.rstrip().endswith(BLOCK_OPENERS):
            break
        if following and _indent_width(following[0]) > widths[end - 1]:
            break  # the code after the cursor is its body
        end -= 1
    return "\n".join(lines[:end]) if end < len(lines) else text


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
    second would close nothing. Brackets opened inside the suggestion are tracked too. A closer
    that starts a later line (a dict's `}` under its entries) closes what the prefix opened
    lines ago: `indentation_scope` has judged that line by its indentation.
    """
    depth = _open_brackets(sit.line_prefix)
    for i, step in _brackets(text):
        if step < 0 and depth == 0:
            nl = text.rfind("\n", 0, i)
            if nl >= 0 and not text[nl + 1 : i].strip():
                continue  # a closer starting a later line: indentation_scope judged that line
            return text[:i].rstrip(" \t")
        depth += step
    return text


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


RULES = (duplicated_indentation, single_line, indentation_scope, body_already_there, repetition,
         suffix_overlap, dangling_opener, balance_brackets, balance_quotes, trim_trailing)


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
    if "\n" not in text:
        return False
    done = text[: text.rfind("\n")]  # complete lines only: the last one may still grow
    lines = done.split("\n")
    at = _overlap_at(done, sit)
    if at is not None:
        # A match on the last complete line is only sure when it is a distinctive copy of the
        # very next line; a short or later line needs the line after it, not yet generated.
        following = _following_lines(sit, 1)
        sure = (len(lines[at].strip()) >= DISTINCTIVE_LINE_CHARS
                and lines[at].strip() == following[0].strip())
        if len(lines) - at >= 2 or sure:
            return True
    return text.count("\n") >= 2 and \
        indentation_scope(text, sit).count("\n") < text.count("\n") - 1
