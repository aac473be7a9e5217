"""Finding code to explain: the block around the cursor, and same-file definitions a snippet uses.

Indentation and brace based (no grammar needed), so it works for every language StarCoder knows:
a block starts at a line that opens one (`def`, `class`, `function`, `fn`, `func`, ... or a line
ending in `:` or `{`) and runs while the lines are indented deeper (or until the brace closes).

Runs on the event loop for every cursor move (VS Code asks for code actions each time), over any
text a user can open: each pattern is linear in the line (single character classes, no two
adjacent quantifiers that can share a character), lines longer than `defaults.MATCH_LINE_CHARS` are
not matched at all, and scans stop after `defaults.BLOCK_SCAN_LINES` lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lsp_server import defaults

BLOCK_START = re.compile(
    r"^\s*(?:(?:export|pub(?:\([^)]*\))?|public|private|protected|static|async|override|final|"
    r"abstract|inline|virtual|default)\s+)*"
    r"(?:def|class|function|fn|func|fun|sub|impl|struct|enum|trait|interface|module|"
    r"procedure|method)\b"
)
# The parts of a C-family signature (`int main(void) {`, `public String name() {`,
# `const f = (a) => {`, `x = function(a) {`): what may precede the first `(`, and what may follow
# the last `)`.
_SIGNATURE_HEAD = re.compile(r"[\w<>\[\],.*&:= ]+")
_SIGNATURE_TAIL = re.compile(r"[\w<>\[\]:, ]*")
DEFINITION = re.compile(
    r"^(?:\s*(?:export\s+|pub\s+|async\s+)*(?:def|class|function|fn|func|struct|enum|trait|"
    r"interface|type|const|let|var)\s+([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*)\s*[:=])"
)
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def c_signature(line: str) -> bool:
    """Whether `line` is `head(params) [=>] [tail] {`, as the pattern
    `^\\s*[\\w<>\\[\\],.*&:= ]+\\([^;]*\\)\\s*(?:=>\\s*)?[\\w<>\\[\\]:, ]*\\{\\s*$` would say, in
    linear time (that pattern backtracks cubically: 1.2 s on a 2 KB line of spaces around `a()`).

    The head cannot contain `(` and the tail cannot contain `)` or `{`, so the first `(`, the last
    `)` and the final `{` are where the pieces meet; only the classes of the pieces are matched.
    """
    body = line.rstrip()
    if not body.endswith("{"):
        return False
    body = body[:-1]
    open_at, close_at = body.find("("), body.rfind(")")
    if open_at < 0 or close_at < open_at or ";" in body[open_at:close_at]:
        return False
    head, tail = body[:open_at], body[close_at + 1 :].lstrip()
    # `\s*` then one or more head characters: a head of whitespace only must end in a space.
    stripped = head.lstrip()
    if not (_SIGNATURE_HEAD.fullmatch(stripped) if stripped else head.endswith(" ")):
        return False
    if tail.startswith("=>"):
        tail = tail[2:].lstrip()
    return _SIGNATURE_TAIL.fullmatch(tail) is not None


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _is_definition(line: str) -> bool:
    """A line that starts a function, class or similar unit worth explaining."""
    if len(line) > defaults.MATCH_LINE_CHARS:  # generated or minified: no signature to name
        return False
    if BLOCK_START.match(line):
        return True
    head = line.strip()
    control = ("if ", "if(", "for ", "for(", "while", "switch", "else", "try", "catch", "do ")
    return c_signature(line) and not head.startswith(control)


def block_end(lines: Sequence[str], start: int,
              max_lines: int = defaults.BLOCK_SCAN_LINES) -> int:
    """One past the last line of the block that starts at `start` (looking at most `max_lines`
    lines past it: a longer block is cut there, as its explanation would be anyway)."""
    base = _indent(lines[start])
    braces = lines[start].count("{") - lines[start].count("}")
    end = start + 1
    last = start + 1
    stop = min(len(lines), start + 1 + max_lines)
    while end < stop:
        line = lines[end]
        if line.strip():
            if braces <= 0 and _indent(line) <= base:
                # A closing brace at the opener's level belongs to the block.
                if line.strip().startswith(("}", ")", "]", "end")):
                    last = end + 1
                break
            braces += line.count("{") - line.count("}")
            last = end + 1
        end += 1
    return last


def enclosing_block(lines: Sequence[str], line: int) -> tuple[int, int] | None:
    """(start, end) lines of the innermost function/class/block around `line`, if any.

    Looks at most `defaults.BLOCK_SCAN_LINES` lines above the cursor, and spends at most as many
    again on openers whose blocks end before the cursor.
    """
    if not lines:
        return None
    line = max(0, min(line, len(lines) - 1))
    top = max(0, line - defaults.BLOCK_SCAN_LINES)
    # The cursor may sit on the opener itself.
    here = line
    while here >= top and not lines[here].strip():
        here -= 1
    if here < top:
        return None
    if _is_definition(lines[here]):
        return here, block_end(lines, here)
    level = _indent(lines[here])
    misses = defaults.BLOCK_SCAN_LINES  # lines that block_end may scan for openers that miss
    for i in range(here - 1, top - 1, -1):
        text = lines[i]
        if level == 0:
            break  # nothing encloses a line at the left margin
        if not text.strip() or _indent(text) >= level:
            continue
        if _is_definition(text):
            end = block_end(lines, i)
            if end > line:
                return i, end
            misses -= here - i  # what that scan could have cost: it stopped before `here`
            if misses <= 0:
                return None
        level = _indent(text)
    return None


def used_definitions(lines: Sequence[str], start: int, end: int, limit: int = 12) -> list[str]:
    """Signature lines of same-file definitions (outside the snippet) that the snippet uses.

    Bounded for huge files: names come from the snippet's first `defaults.EXPLAIN_IDENT_SCAN_CHARS`
    characters (the explanation sees no more), definitions from the
    `defaults.EXPLAIN_DEFINITION_SCAN_LINES` lines around it.
    """
    text, size = [], 0
    for piece in lines[start:end]:
        text.append(piece)
        size += len(piece)
        if size >= defaults.EXPLAIN_IDENT_SCAN_CHARS:
            break
    used = set(IDENT.findall("".join(text)[: defaults.EXPLAIN_IDENT_SCAN_CHARS]))
    found: list[str] = []
    seen: set[str] = set()
    half = defaults.EXPLAIN_DEFINITION_SCAN_LINES // 2
    lo, hi = max(0, start - half), min(len(lines), end + half)
    for i in range(lo, hi):
        if start <= i < end:
            continue
        text_i = lines[i]
        if len(text_i) > defaults.MATCH_LINE_CHARS:
            continue
        m = DEFINITION.match(text_i)
        if not m:
            continue
        name = m.group(1) or m.group(2)
        if name in used and name not in seen and _indent(text_i) <= 4:
            seen.add(name)
            found.append(text_i.rstrip())
            if len(found) >= limit:
                break
    return found
