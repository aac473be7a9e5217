"""Finding code to explain: the block around the cursor, and same-file definitions a snippet uses.

Indentation and brace based (no grammar needed), so it works for every language StarCoder knows:
a block starts at a line that opens one (`def`, `class`, `function`, `fn`, `func`, ... or a line
ending in `:` or `{`) and runs while the lines are indented deeper (or until the brace closes).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

BLOCK_START = re.compile(
    r"^\s*(?:(?:export|pub(?:\([^)]*\))?|public|private|protected|static|async|override|final|"
    r"abstract|inline|virtual|default)\s+)*"
    r"(?:def|class|function|fn|func|fun|sub|impl|struct|enum|trait|interface|module|"
    r"procedure|method)\b"
)
# C-family signatures: `int main(void) {`, `public String name() {`, `const f = (a) => {`.
C_SIGNATURE = re.compile(r"^\s*[\w<>\[\],.*&: ]+\([^;]*\)\s*(?:=>\s*)?[\w<>\[\]:, ]*\{\s*$")
DEFINITION = re.compile(
    r"^(?:\s*(?:export\s+|pub\s+|async\s+)*(?:def|class|function|fn|func|struct|enum|trait|"
    r"interface|type|const|let|var)\s+([A-Za-z_][A-Za-z0-9_]*)|([A-Za-z_][A-Za-z0-9_]*)\s*[:=])"
)
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _indent(line: str) -> int:
    expanded = line.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def _is_definition(line: str) -> bool:
    """A line that starts a function, class or similar unit worth explaining."""
    if BLOCK_START.match(line):
        return True
    head = line.strip()
    control = ("if ", "if(", "for ", "for(", "while", "switch", "else", "try", "catch", "do ")
    return bool(C_SIGNATURE.match(line)) and not head.startswith(control)


def block_end(lines: Sequence[str], start: int) -> int:
    """One past the last line of the block that starts at `start`."""
    base = _indent(lines[start])
    braces = lines[start].count("{") - lines[start].count("}")
    end = start + 1
    last = start + 1
    while end < len(lines):
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
    """(start, end) lines of the innermost function/class/block around `line`, if any."""
    if not lines:
        return None
    line = max(0, min(line, len(lines) - 1))
    # The cursor may sit on the opener itself.
    here = line
    while here >= 0 and not lines[here].strip():
        here -= 1
    if here < 0:
        return None
    if _is_definition(lines[here]):
        return here, block_end(lines, here)
    level = _indent(lines[here])
    for i in range(here - 1, -1, -1):
        text = lines[i]
        if text.strip() and _indent(text) < level:
            if _is_definition(text):
                end = block_end(lines, i)
                if end > line:
                    return i, end
            level = _indent(text)
    return None


def used_definitions(lines: Sequence[str], start: int, end: int, limit: int = 12) -> list[str]:
    """Signature lines of same-file definitions (outside the snippet) that the snippet uses."""
    used = set(IDENT.findall("".join(lines[start:end])))
    found: list[str] = []
    seen: set[str] = set()
    for i, text in enumerate(lines):
        if start <= i < end:
            continue
        m = DEFINITION.match(text)
        if not m:
            continue
        name = m.group(1) or m.group(2)
        if name in used and name not in seen and _indent(text) <= 4:
            seen.add(name)
            found.append(text.rstrip())
            if len(found) >= limit:
                break
    return found
